"""The VIP's duplicate address check: how long an ARP answer takes, and what each setting costs.

Two test nodes on one switch (network namespaces of tests/support/netns.py, addresses of its test
supernet only).  node B holds an address, as a node that still has the VIP would.

* **answer latency**: node A asks for B's address ``--probes`` times (``arping -0``, 10 ms apart),
  each answer's time as arping prints it; with ``--load N``, N busy loops run meanwhile (bounded
  by the run), and once more with B's every process stopped (SIGSTOP: its kernel answers).
* **each setting**: the check as the VIP runs it (``arping -0 -c C -W W -w D``), ``--trials``
  times for a free address (the wall time every acquire pays) and for B's address (the answer
  must be seen every time).

    sudo python3 -m benchmarks.arp_check [--probes 2000] [--trials 20] [--load 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from failover_hook.resources.vip import DAD_ARGS
from tests.support.netns import Node, nodes

SETTINGS = {
    "shipped (failover_hook/resources/vip.py)": DAD_ARGS,
    "3 probes 0.1 s apart, deadline 0.3 s": ("-0", "-c", "3", "-W", "0.1", "-w", "0.3"),
    "2 probes 50 ms apart, deadline 0.1 s": ("-0", "-c", "2", "-W", "0.05", "-w", "0.1"),
    "1 probe, 50 ms": ("-0", "-c", "1", "-W", "0.05", "-w", "0.05"),
}
_TIME = re.compile(r"time=([\d.]+) (usec|msec|sec)")
_SCALE = {"usec": 1e-6, "msec": 1e-3, "sec": 1.0}


def answer_times(a: Node, address: str, probes: int) -> list[float]:
    """Seconds each answer took, as arping measured it (unanswered probes are left out)."""
    done = a.run(
        ["arping", "-0", "-c", str(probes), "-W", "0.01", "-i", "eth0", address],
        check=False,
        timeout=probes * 0.05 + 30,
    )
    return [float(v) * _SCALE[unit] for v, unit in _TIME.findall(done.stdout)]


def check(a: Node, address: str, args: tuple[str, ...]) -> tuple[float, bool]:
    """One check as the VIP runs it: wall time, and whether an answer came."""
    started = time.monotonic()
    done = a.run(["arping", *args, "-i", "eth0", address], check=False, timeout=10)
    return time.monotonic() - started, done.returncode == 0 and "bytes from" in done.stdout


@contextlib.contextmanager
def busy(loops: int, seconds: float) -> Iterator[None]:
    """``loops`` processes spinning for at most ``seconds`` (ended on exit)."""
    spin = f"import time; end = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(loops)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": ordered[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--load", type=int, default=2, help="busy loops while measuring")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with nodes("a", "b") as (switch, (a, b)), busy(args.load, 600):
        held = str(switch.next_address())
        free = str(switch.next_address())
        b.run(["ip", "addr", "add", f"{held}/24", "dev", "eth0"])
        b_sleeper = b.popen(["sleep", "600"])
        latencies = answer_times(a, held, args.probes)
        b_all = [b.pid, *b.processes()]
        for pid in b_all:  # nothing of B's runs; its kernel answers
            os.kill(pid, signal.SIGSTOP)
        try:
            stopped = answer_times(a, held, min(args.probes, 500))
        finally:
            for pid in b_all:
                os.kill(pid, signal.SIGCONT)
        b_sleeper.kill()
        b_sleeper.wait(timeout=10)
        results["answers"] = {
            "asked": args.probes,
            "answered": len(latencies),
            **{k: round(v * 1e3, 3) for k, v in percentiles(latencies).items()},
        }
        results["answers, B stopped"] = {
            "asked": min(args.probes, 500),
            "answered": len(stopped),
            **{k: round(v * 1e3, 3) for k, v in percentiles(stopped).items()},
        }
        for name, setting in SETTINGS.items():
            free_runs = [check(a, free, setting) for _ in range(args.trials)]
            held_runs = [check(a, held, setting) for _ in range(args.trials)]
            results[name] = {
                "args": " ".join(setting),
                "free: wall median s": round(statistics.median(t for t, _ in free_runs), 3),
                "free: wall max s": round(max(t for t, _ in free_runs), 3),
                "free: false answers": sum(1 for _, seen in free_runs if seen),
                "held: answers seen": f"{sum(1 for _, seen in held_runs if seen)}/{args.trials}",
            }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
