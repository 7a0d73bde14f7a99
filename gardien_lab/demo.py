"""``gardien lab demo``: bring the lab up, kill php4's Apache, watch php4 move to node2.

The timeline printed at the end comes from Prometheus, Alertmanager's webhook decisions and the
hooks' journals; the move's timeline picture (``gardien history GROUP --svg``) is written into
the lab's folder; the lab is left running for the reader to look around, in the web console too
(:mod:`gardien_lab.relay`).
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

from gardien import exitcodes
from gardien.polling import wait_for, wait_until
from gardien_lab import (
    clusterconfig,
    faults,
    hookapi,
    lifecycle,
    monitoring,
    relay,
    services,
    timeline,
)
from gardien_lab.topology import NODES, Lab, on, prometheus_url

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


def write_svg(lab: Lab, node: str, since: float) -> Path | str:
    """The timeline picture of ``node``'s newest move of the demo's group since ``since``, as
    ``gardien history GROUP --svg FILE --move NODE#ID`` draws it, in the lab's folder; or why
    there is none."""
    moves = [m for m in hookapi.history(lab, node, GROUP) if m.kind == "move"]
    move = max((m for m in moves if m.started >= since), key=lambda m: m.started, default=None)
    if move is None:
        return f"no move of {GROUP} journaled on {node}"
    path = lab.dir / f"demo-{GROUP}-{node}-{move.id}.svg"
    config = str(clusterconfig.config_path(lab))
    argv = [sys.executable, "-m", "gardien.cli", "history", GROUP, "--config.file", config]
    done = on(lab, node, [*argv, "--svg", str(path), "--move", f"{node}#{move.id}"], check=False)
    return path if done.returncode == 0 else f"gardien history --svg failed: {done.stderr.strip()}"


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
    picture = write_svg(lab, target, t0)
    print("\n" + lifecycle.format_status(lab, lifecycle.status(lab)))
    print(f"\nThe move's timeline picture: {picture}")
    port = relay.PORT
    print(f"\nThe web console: open {relay.console_url()} in a browser on this host")
    print(f"  log in with the token in {clusterconfig.token_file(lab)}")
    print(f"  from another host: ssh -N -L {port}:127.0.0.1:{port} root@{socket.gethostname()}")
    print("  then open the same URL there")
    print("\nThe lab keeps running. Look around:")
    print(f"  gardien lab exec mon -- curl -s '{prometheus_url(lab)}/api/v1/alerts'")
    print(f"  gardien lab exec {target} -- gardien status")
    print(f"  gardien lab exec {target} -- gardien history {GROUP}")
    print("  gardien lab exec client -- curl -s http://VIP/check.html")
    print("  gardien lab down    # removes everything")
    return exitcodes.OK if answered is not None else exitcodes.FAILURE
