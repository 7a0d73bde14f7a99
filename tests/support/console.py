"""The web console in a real browser: Debian's headless Chromium driven by Selenium, kept to the
hooks it is pointed at, and a group with a real service for it to watch.

Chromium resolves no name (``--host-resolver-rules``), sends whatever is not for loopback (or for
the test's own namespaces, when it runs in one: :class:`BrowserIn`) to a proxy on the discard
port of loopback (refused), and runs none of its background services; every request it made is
read back from its performance log (:func:`requested_urls`), so a test can check that it loaded
nothing but the hooks' pages.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.exporter import free_port

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"  # given: Selenium Manager (which downloads) never runs
PAGE = "console test OK"

_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root, in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--proxy-server=http://127.0.0.1:9",
)
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def _direct(networks: Sequence[ipaddress.IPv4Network]) -> list[str]:
    """The flags that let Chromium reach ``networks`` (and nothing else) directly."""
    patterns = [
        ".".join(n.network_address.exploded.split(".")[: n.prefixlen // 8]) + ".*" for n in networks
    ]
    return [
        "--host-resolver-rules=MAP * ~NOTFOUND, " + ", ".join(f"EXCLUDE {p}" for p in patterns),
        "--proxy-bypass-list=" + ";".join(str(n) for n in networks),
    ]


_CLONE_NEWNET = 0x40000000


def steady(driver: WebDriver, read: Callable[[WebDriver], T]) -> T:
    """What ``read`` finds on the page, read again when a refresh replaced an element under it."""
    found: tuple[T] = wait(driver, lambda d: (read(d),))
    return found[0]


def text_of(driver: WebDriver, css: str) -> str:
    return str(steady(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).text))


def attribute_of(driver: WebDriver, css: str, name: str) -> str:
    return str(steady(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).get_attribute(name)))


def _enter_netns(pid: int) -> None:
    """Move the calling thread (only it: a network namespace is a thread's) into the network
    namespace of process ``pid``; what it starts from then on is born there."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the network namespace of {pid}")
    finally:
        os.close(fd)


class BrowserIn:
    """Chromium and its driver in the network namespace of a test's node (a failover cluster's
    client: the only place its hooks are reached from).  One thread entered that namespace and
    makes every call to the driver, so the driver's port and Chromium's connections are there;
    :meth:`__call__` runs a function of the driver on it."""

    def __init__(self, pid: int, direct: Sequence[ipaddress.IPv4Network]) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser-netns")
        self._thread.submit(_enter_netns, pid).result()
        self._browser = chromium(direct=(LOOPBACK, *direct))
        self.driver = self._thread.submit(self._browser.__enter__).result()

    def __call__(self, action: Callable[[WebDriver], T]) -> T:
        return self._thread.submit(action, self.driver).result()

    def close(self) -> None:
        try:
            self._thread.submit(self._browser.__exit__, None, None, None).result()
        finally:
            self._thread.shutdown()


@contextlib.contextmanager
def browser_in(pid: int, direct: Sequence[ipaddress.IPv4Network]) -> Iterator[BrowserIn]:
    """Chromium in the network namespace of process ``pid``, reaching ``direct`` besides its
    namespace's loopback (where its driver listens)."""
    browser = BrowserIn(pid, direct)
    try:
        yield browser
    finally:
        browser.close()


@contextlib.contextmanager
def chromium(
    width: int = 1280,
    height: int = 1000,
    direct: Sequence[ipaddress.IPv4Network] = (LOOPBACK,),
) -> Iterator[WebDriver]:
    """One headless Chromium that reaches only ``direct`` (whole octets), quit at the end."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*_FLAGS, *_direct(direct), f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: WebDriver) -> list[str]:
    """Every URL Chromium requested since the last call (its performance log, drained)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def log_in(driver: WebDriver, hook: str, token: str) -> None:
    """Open the console of the hook at URL ``hook`` as an operator would: the refusal's link,
    then the form."""
    driver.get(f"{hook}/ui/")
    driver.find_element(By.LINK_TEXT, "Log in to the gardien console").click()
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    wait(driver, lambda d: d.find_elements(By.ID, "overview"))


def wait(driver: WebDriver, condition: Any, timeout: float = 20) -> Any:
    """Selenium's bounded wait (polls every 0.2 s); an element replaced by a refresh while the
    condition read it is read again at the next poll."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    ).until(condition)


def web_group(folder: Path) -> dict[str, Any]:
    """A group running one real service on loopback: a Python HTTP server whose page the hook's
    ``http`` probe checks; its pid file (``web.pid`` in ``folder``) is where a test kills it.
    No restart in place: a failure moves it."""
    (folder / "www").mkdir(exist_ok=True)
    (folder / "www" / "index.html").write_text(PAGE + "\n")
    port = free_port()
    start = (
        f"echo $$ > {folder}/web.pid; "
        f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1 --directory {folder}/www"
    )
    service = {
        "name": "web",
        "start": ["sh", "-c", start],
        "process": {"pidfile": str(folder / "web.pid")},
        "probes": [
            {"http": {"url": f"http://127.0.0.1:{port}/", "expect_regex": PAGE, "timeout": 1}}
        ],
        "start_timeout": "10s",
        "stop_timeout": "5s",
    }
    return {"nodes": ["node1", "node2"], "services": [service]}


def stop_web(folder: Path) -> None:
    """Kill the web service of :func:`web_group` if it runs: a hook that stops leaves the services
    it started running (as ``KillMode=process`` does), so the test that made them ends them."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((folder / "web.pid").read_text()), signal.SIGKILL)
