"""The web console in a real browser: Debian's headless Chromium driven by Selenium, kept to the
loopback hooks it is pointed at, and a group with a real service for it to watch.

Chromium resolves no name (``--host-resolver-rules``), sends whatever is not for 127.0.0.0/8 to a
proxy on the discard port of loopback (refused), and runs none of its background services; every
request it made is read back from its performance log (:func:`requested_urls`), so a test can
check that it loaded nothing but the hooks' pages.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.hooks import HookPair

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
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.*",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.0/8",
)


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[WebDriver]:
    """One headless Chromium, quit at the end."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*_FLAGS, f"--window-size={width},{height}"):
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


def log_in(driver: WebDriver, pair: HookPair, node: str = "node1") -> None:
    """Open ``node``'s console as an operator would: the refusal's link, then the form."""
    driver.get(pair.url(node, "/ui/"))
    driver.find_element(By.LINK_TEXT, "Log in to the gardien console").click()
    driver.find_element(By.ID, "token").send_keys(pair.token)
    driver.find_element(By.ID, "login").click()
    wait(driver, lambda d: d.find_elements(By.ID, "overview"))


def wait(driver: WebDriver, condition: Any, timeout: float = 20) -> Any:
    """Selenium's bounded wait (polls every 0.2 s)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_group(folder: Path) -> dict[str, Any]:
    """A group running one real service on loopback: a Python HTTP server whose page the hook's
    ``http`` probe checks; its pid file (``web.pid`` in ``folder``) is where a test kills it.
    No restart in place: a failure moves it."""
    (folder / "www").mkdir(exist_ok=True)
    (folder / "www" / "index.html").write_text(PAGE + "\n")
    port = _free_port()
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
