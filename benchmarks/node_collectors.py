"""Cost of one scrape of the node collectors: wall time and CPU (this process plus its children).

    python3 benchmarks/node_collectors.py --scrapes 20      # from the repository root

network: N targets on loopback (127.0.0.x, always answering), one ICMP echo each per scrape.
vip: N groups with a VIP (absent) on ``lo``.  smart: N disks replayed by a stand-in ``smartctl``
printing a real JSON capture (tests/fixtures/smart-captures), re-read on every scrape.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import tempfile
import time
from pathlib import Path

import gardien.config  # first: import order of the config/probes cycle
from exporter.collectors.base import NodeCollector
from exporter.collectors.network import NetworkCollector
from exporter.collectors.smart import SmartCollector
from exporter.collectors.vip import VipCollector
from gardien.command_runner import DEFAULT_ENV, CommandRunner
from gardien.config import parse_config

CAPTURE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "smart-captures"
    / "smartctl-json"
    / "sat-null-TOSHIBA_HDWR160-sdc.json"
)


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(collector: NodeCollector, scrapes: int) -> tuple[float, float, float]:
    """Median and max wall time, and mean CPU, of one ``collect`` in seconds."""
    list(collector.collect(10))  # warm-up
    walls = []
    cpu_before = cpu()
    for _ in range(scrapes):
        started = time.perf_counter()
        list(collector.collect(10))
        walls.append(time.perf_counter() - started)
    return statistics.median(walls), max(walls), (cpu() - cpu_before) / scrapes


def config(**sections: object) -> gardien.config.ClusterConfig:
    data = {"cluster": "bench", "nodes": {"n1": {"address": "127.0.0.1"}}, **sections}
    return parse_config(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    bindir = Path(tempfile.mkdtemp(prefix="gardien-bench-"))
    smartctl = bindir / "smartctl"
    smartctl.write_text(f"#!/bin/sh\ncat {shlex.quote(str(CAPTURE))}\n")
    smartctl.chmod(0o755)
    runner = CommandRunner(env={**DEFAULT_ENV, "PATH": f"{bindir}:{DEFAULT_ENV['PATH']}"})
    print("| collector | objects | wall median (max) | CPU per scrape |")
    print("|---|---:|---:|---:|")
    for n in args.sizes:
        targets = [f"127.0.0.{i + 1}" for i in range(n)]
        network = {"interface": "lo", "internal": targets}
        groups = {
            f"g{i}": {"nodes": ["n1"], "vip": {"address": f"127.0.1.{i + 1}/8", "interface": "lo"}}
            for i in range(n)
        }
        disks = [{"device": f"/dev/bench{i}", "interval": 0.001} for i in range(n)]
        collectors: list[tuple[str, NodeCollector]] = [
            ("network", NetworkCollector(config(network=network))),
            ("vip", VipCollector(config(groups=groups), state_dir=bindir)),
        ]
        if CAPTURE.is_file():
            collectors.append(("smart", SmartCollector(config(disks=disks), runner=runner)))
        for name, collector in collectors:
            median, worst, per_scrape = measure(collector, args.scrapes)
            print(
                f"| {name} | {n} | {median * 1000:.1f} ms ({worst * 1000:.1f}) "
                f"| {per_scrape * 1000:.1f} ms |"
            )
    for path in bindir.iterdir():
        path.unlink()
    os.rmdir(bindir)


if __name__ == "__main__":
    main()
