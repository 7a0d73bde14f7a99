"""The screenshots of docs/console.md, taken through the browser the console's tests drive.

Two real hooks on loopback (tests/support/hooks.py), one group running a real service; the
script kills the service, sends the alert as Alertmanager would, waits for the move, then
photographs the overview and the move's timeline on the group page.  Run from the repository
root (root, Debian's chromium and chromium-driver installed):

    PYTHONPATH=. python3 scripts/console_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from selenium.webdriver.common.by import By

from gardien.polling import wait_until
from tests.support.console import chromium, log_in, stop_web, wait, web_group
from tests.support.hooks import HookPair, alert, payload

SEEN_BEFORE = 4.0
"""Seconds from the failure to the alert's delivery: a probe's failure, the rule's ``for`` and
Alertmanager's wait, shortened."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gardien-console-") as folder:
        tmp = Path(folder)
        (tmp / "web").mkdir()
        groups = {
            "web": web_group(tmp / "web"),
            "reports": {"nodes": ["node1", "node2"]},
            "billing": {"nodes": ["node2", "node1"]},
        }
        pair = HookPair(tmp, groups=groups, hook={"settle": 0, "cooldown": "5m"})
        pair.start()
        try:
            for node, group in (("node1", "web"), ("node1", "reports"), ("node2", "billing")):
                pair.post(node, f"/api/v1/groups/{group}/acquire").raise_for_status()
            os.kill(int((tmp / "web" / "web.pid").read_text()), signal.SIGKILL)
            # as Prometheus would: the failure seen a few seconds before the delivery
            seen = datetime.now(UTC) - timedelta(seconds=SEEN_BEFORE)
            body = payload(alert(group="web", node="node1", starts_at=seen.isoformat()))
            for hook in pair.addresses:
                pair.send(hook, body).raise_for_status()
            if not wait_until(lambda: pair.held("node2", "web"), 60):
                raise SystemExit(f"web did not move: {pair.log('node2')}")
            pair.post("node2", "/api/v1/groups/billing/freeze").raise_for_status()
            with chromium(width=1280, height=720) as driver:
                log_in(driver, pair.url("node1", ""), pair.token)
                wait(driver, lambda d: d.find_element(By.ID, "group-web").text.count("moved"))
                driver.save_screenshot(str(args.out / "console-overview.png"))
                driver.get(pair.url("node1", "/ui/groups/web"))
                figure = driver.find_element(By.CSS_SELECTOR, "figure.timeline")
                figure.screenshot(str(args.out / "console-timeline.png"))
        finally:
            pair.stop()
            stop_web(tmp / "web")
    print(f"written: {args.out / 'console-overview.png'}, {args.out / 'console-timeline.png'}")


if __name__ == "__main__":
    main()
