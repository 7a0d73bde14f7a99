"""``gardien lab demo``: bring the lab up, kill php4's Apache, watch php4 move to node2.

The timeline printed at the end comes from Prometheus, Alertmanager's webhook decisions and the
hooks' journals; the lab is left running for the reader to look around.
"""

from __future__ import annotations

import time

from gardien import exitcodes
from gardien.polling import wait_for, wait_until
from gardien_lab import faults, lifecycle, monitoring, services, timeline
from gardien_lab.topology import NODES, Lab, prometheus_url

GROUP = "php4"
SERVICE = "apache-php4"
MOVE_TIMEOUT = 120.0


def wait_scraped(lab: Lab, timeout: float = 60.0) -> bool:
    """Prometheus scrapes every exporter and hook (its first scrape comes ~5 s after start)."""

    def all_up() -> bool:
        series = monitoring.query(lab, "up")
        return len(series) >= 2 * len(NODES) and all(s["value"][1] == "1" for s in series)

    return wait_until(all_up, timeout, interval=1.0)


def wait_moved(lab: Lab, group: str, target: str, timeout: float) -> float | None:
    """Time at which ``group`` runs on ``target`` only and answers on its VIP; None at timeout."""
    spec = services.lab_groups(lab)[group]

    def answered() -> float | None:
        if services.where(lab, spec, NODES) == [target] and services.answers_from_client(lab, spec):
            return time.time()
        return None

    return wait_for(answered, timeout, interval=0.2)


def demo(lab: Lab) -> int:
    print("== bringing the lab up (idempotent) ...", flush=True)
    lifecycle.up(lab)
    print(lifecycle.format_status(lab, lifecycle.status(lab)), flush=True)
    if not wait_scraped(lab):
        print("!! Prometheus does not scrape every exporter and hook yet; going on anyway")
    spec = services.lab_groups(lab)[GROUP]
    source = services.where(lab, spec, NODES)
    if len(source) != 1:
        print(f"!! {GROUP} is on {source or 'no node'}; expected one node")
        return exitcodes.FAILURE
    target = next(n for n in spec.nodes if n != source[0])
    print(f"\n== fault: killing {GROUP}'s Apache on {source[0]} (SIGKILL of its process group)")
    t0 = time.time()
    faults.kill_apache(lab, source[0], GROUP)
    answered = wait_moved(lab, GROUP, target, MOVE_TIMEOUT)
    time.sleep(2)  # let Prometheus and the hooks record the last steps
    events = timeline.collect(lab, GROUP, SERVICE, t0, time.time(), node=source[0])
    if answered is not None:
        events.append(timeline.Event(answered, "client", f"page answers on the VIP from {target}"))
    print(f"\n== timeline (t0 = fault at {time.strftime('%H:%M:%S', time.localtime(t0))})")
    print(timeline.format_events(events, t0))
    if answered is None:
        print(f"\n!! {GROUP} did not answer from {target} within {MOVE_TIMEOUT:g} s")
    print("\n" + lifecycle.format_status(lab, lifecycle.status(lab)))
    print("\nThe lab keeps running. Look around:")
    print(f"  gardien lab exec mon -- curl -s '{prometheus_url(lab)}/api/v1/alerts'")
    print(f"  gardien lab exec {target} -- gardien status")
    print(f"  gardien lab exec {target} -- gardien history {GROUP}")
    print("  gardien lab exec client -- curl -s http://VIP/check.html")
    print("  gardien lab down    # removes everything")
    return exitcodes.OK if answered is not None else exitcodes.FAILURE
