"""Answer times of ``gardien hook`` and ``gardien exporter`` while slow clients hold connections,
next to Debian's prometheus-blackbox-exporter (Go's net/http) under the same load (issue 13).

For each number of slow connections (0, 100, 1,000 by default) each of the three servers gets that
many connections that sent a partial request (``GET /-/healthy HTTP/1.1`` and a Host header, never
the blank line) from many loopback source addresses, kept open: each one the server closes (its
header timeout) is opened again at once, as a slowloris attacker does.  Meanwhile, ``--rounds``
times, each on a fresh connection with a 10 s client timeout: ``/-/healthy`` of each, the hook's
status API (``/api/v1/status``, bearer token) and ``/metrics`` of each (the hook's with its token).
Reported: the median and the slowest answer of each call, and each daemon's RSS at the end of the
step (psutil).

    python3 benchmarks/slow_clients.py --rounds 20 --slow 0 100 1000
    python3 benchmarks/slow_clients.py --rounds 3 --baseline /path/to/older/checkout

``--baseline`` runs the two daemons from another checkout (one that served with cheroot, before
the event-loop front end), the slow clients and the calls from this one.

Only loopback addresses are used; every loop is bounded by --rounds and the client timeout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.exporter_scrape import blackbox
from tests.support import hooks as hooks_support
from tests.support.exporter import ExporterProcess
from tests.support.hooks import HookPair
from tests.support.slow_clients import PARTIAL, SlowClients

CLIENT_TIMEOUT = 10.0


def timed(call: Callable[[], requests.Response]) -> float:
    """Seconds until the answer (inf when it failed or timed out)."""
    started = time.perf_counter()
    try:
        ok = call().ok
    except requests.RequestException:
        return float("inf")
    return time.perf_counter() - started if ok else float("inf")


def cell(times: list[float]) -> str:
    worst = max(times)
    if worst == float("inf"):
        return f"{sum(t == float('inf') for t in times)} of {len(times)} unanswered"
    return f"{statistics.median(times) * 1000:.1f} ms ({worst * 1000:.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--slow", type=int, nargs="+", default=[0, 100, 1000])
    parser.add_argument("--baseline", type=Path, help="run the daemons from this checkout")
    args = parser.parse_args()
    if args.baseline is not None:  # the daemons' `python -m gardien.cli` imports from there
        hooks_support.REPO = args.baseline.resolve()
        os.environ["PYTHONPATH"] = str(hooks_support.REPO)
        os.chdir(hooks_support.REPO)
    if shutil.which("prometheus-blackbox-exporter") is None:
        print("prometheus-blackbox-exporter is not installed", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / "hook").mkdir()
        hooks = HookPair(folder / "hook")
        hooks.start("node1")
        stack.callback(hooks.stop)
        config = folder / "cluster.yml"
        config.write_text("cluster: t\nnodes: {node1: {address: 127.0.0.1}}\n")
        exporter = ExporterProcess(config, log_level="info")
        stack.callback(exporter.stop)
        exporter.wait_ready()
        box, box_pid = stack.enter_context(blackbox(folder))
        hook_pid = hooks.procs["node1"].pid
        auth = {"Authorization": f"Bearer {hooks.token}"}
        calls: dict[str, dict[str, Callable[[], requests.Response]]] = {
            "gardien hook": {
                "/-/healthy": lambda: requests.get(
                    hooks.url("node1", "/-/healthy"), timeout=CLIENT_TIMEOUT
                ),
                "status API": lambda: requests.get(
                    hooks.url("node1", "/api/v1/status"), headers=auth, timeout=CLIENT_TIMEOUT
                ),
                "/metrics": lambda: requests.get(
                    hooks.url("node1", "/metrics"), headers=auth, timeout=CLIENT_TIMEOUT
                ),
            },
            "gardien exporter": {
                "/-/healthy": lambda: requests.get(
                    f"{exporter.url}/-/healthy", timeout=CLIENT_TIMEOUT
                ),
                "/metrics": lambda: exporter.scrape(scrape_timeout=CLIENT_TIMEOUT - 1),
            },
            "prometheus-blackbox-exporter": {
                "/-/healthy": lambda: requests.get(f"{box}/-/healthy", timeout=CLIENT_TIMEOUT),
                "/metrics": lambda: requests.get(f"{box}/metrics", timeout=CLIENT_TIMEOUT),
            },
        }
        pids = {
            "gardien hook": hook_pid,
            "gardien exporter": exporter.process.pid,
            "prometheus-blackbox-exporter": box_pid,
        }
        targets = {
            "gardien hook": (hooks.addresses["node1"], hooks.port),
            "gardien exporter": ("127.0.0.1", exporter.port),
            "prometheus-blackbox-exporter": ("127.0.0.1", int(box.rsplit(":", 1)[1])),
        }
        for slow in args.slow:
            with ExitStack() as held:
                for target in targets.values():
                    held.enter_context(SlowClients(target, slow, PARTIAL))
                times: dict[tuple[str, str], list[float]] = {}
                for _ in range(args.rounds):
                    for daemon, daemon_calls in calls.items():
                        for name, call in daemon_calls.items():
                            times.setdefault((daemon, name), []).append(timed(call))
                for daemon, daemon_calls in calls.items():
                    rss = psutil.Process(pids[daemon]).memory_info().rss / 2**20
                    row = [cell(times[(daemon, name)]) for name in daemon_calls]
                    if "status API" not in daemon_calls:
                        row.insert(1, "")
                    rows.append(f"| {slow} | {daemon} | " + " | ".join(row) + f" | {rss:.1f} MiB |")
    print("| slow connections | server | /-/healthy median (max) | status API | /metrics | RSS |")
    print("|---:|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
