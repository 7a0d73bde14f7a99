"""The console in Chromium watching a group with real resources fail and move: real hooks inside
the two nodes of the failover cluster (:mod:`tests.support.failover_cluster`: a loop-mounted
volume, a VIP, Apache on the volume), the browser in the cluster's client namespace.

Apache's process group is killed (a crash); the page shows the group failing with the reason,
the alert reaches both hooks from the client, and the page, refreshed in place, shows the group
moved to node2 and healthy there; the operator then moves it back from the group's page (the dry
run, then the confirmation).  The volume, the VIP and the page on the VIP are checked on the
nodes themselves.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from failover_hook import processes
from gardien.polling import wait_until
from tests.support.console import (
    attribute_of,
    browser_in,
    log_in,
    requested_urls,
    text_of,
    wait,
)
from tests.support.failover_cluster import GROUP, PAGE
from tests.support.hooks import NODE_HOOK_PORT, alert, node_hooks, payload
from tests.support.netns import TEST_SUPERNET, have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.skipif(
        not Path("/usr/bin/chromedriver").exists(), reason="chromium-driver is not installed"
    ),
]


def test_a_crashed_apache_is_shown_failing_then_moved_and_moved_back_by_hand() -> None:
    with node_hooks() as hooks:
        c = hooks.c
        hooks.configure(confirm=True)  # no restart in place: a failure moves the group, confirmed
        hooks.start("node1")
        hooks.start("node2")
        acquired = hooks.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")
        assert acquired["status"] == "done", acquired
        url = f"http://{c.address('node1')}:{NODE_HOOK_PORT}"
        with browser_in(c.client.pid, [TEST_SUPERNET]) as browser:
            browser(lambda d: log_in(d, url, hooks.token))
            assert browser(active_on) == "node1"
            browser(lambda d: d.execute_script("window.notReloaded = true"))
            master = int(c.on_volume("node1", "www/run/httpd.pid").read_text())
            os.killpg(os.getpgid(master), signal.SIGKILL)
            assert wait_until(lambda: processes.state(master) in (None, "Z"), 10)

            def failing(d: WebDriver) -> bool:
                row = d.find_element(By.ID, f"group-{GROUP}")
                return row.get_attribute("data-healthy") == "no" and "apache-web" in row.text

            browser(lambda d: wait(d, failing, 30))
            failed = payload(alert(group=GROUP, node="node1"))
            for name in ("node1", "node2"):
                hooks.api("POST", name, "/api/v1/alerts", failed)

            def moved(d: WebDriver) -> bool:
                row = d.find_element(By.ID, f"group-{GROUP}")
                return active_on(d) == "node2" and row.get_attribute("data-healthy") == "yes"

            browser(lambda d: wait(d, moved, 60))
            assert browser(lambda d: d.execute_script("return window.notReloaded")) is True
            last = browser(lambda d: text_of(d, f"#group-{GROUP}"))
            assert f"moved {GROUP} node1 -> node2" in last
            assert c.mounted("node2") and c.has_vip("node2")
            assert not c.mounted("node1") and not c.has_vip("node1")
            assert PAGE in (c.page() or "")
            # back by hand from the group's page: the dry run, then the move
            browser(lambda d: d.get(f"{url}/ui/groups/{GROUP}"))
            browser(lambda d: d.find_element(By.ID, "migrate-node1").click())
            preview = browser(lambda d: wait(d, lambda d: d.find_elements(By.ID, "plan"))[0].text)
            assert f"move {GROUP} node2 -> node1" in preview
            assert c.mounted("node2") and not c.mounted("node1")  # the preview moved nothing
            browser(lambda d: d.find_element(By.ID, "confirm").click())
            done = browser(
                lambda d: wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.outcome"))[0].text
            )
            assert f"moved {GROUP} node2 -> node1" in done
            urls = browser(requested_urls)
        assert [u for u in urls if not u.startswith(f"{url}/")] == []
        assert c.mounted("node1") and c.has_vip("node1")
        assert not c.mounted("node2") and not c.has_vip("node2")
        assert PAGE in (c.page() or "")  # served from node1 again, on the VIP
        [back] = [m for m in hooks.history("node1", GROUP) if m["trigger"] == "manual by token"]
        assert back["status"] == "done"


def active_on(driver: WebDriver) -> str:
    return attribute_of(driver, f"#group-{GROUP}", "data-active")
