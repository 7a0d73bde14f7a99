"""Lab: idle cost of every gardien process, Prometheus and Alertmanager, nothing failing.

Brings the lab up (``gardien lab``, its intervals: scrape every 250 ms), waits until Prometheus
scrapes every exporter and hook and ``--settle`` seconds more, then measures each daemon over
``--seconds`` (found through the lab's process records, :func:`gardien_lab.topology.running`):

* CPU: ``utime + stime`` of /proc/PID/stat (self) and ``cutime + cstime`` (the children it reaped:
  smbclient, wbinfo, getent...), as a percentage of one core;
* RSS at the end (VmRSS of /proc/PID/status);
* children started per second: every thread's ``task/TID/children`` polled every ``--poll``
  seconds, each (pid, start time) counted once, so a child living shorter than that may be
  missed (the kernel keeps no per-process fork counter; ``getent`` lives ~1 ms).

The budgets of issue 14 are printed beside: exporter + hook of a node at most 2 % of a core at 1 s
intervals (5 % below 1 s: ``--scrape-interval``, ``--evaluation-interval``), exporter RSS at
most 45 MiB.  Then each probe kind and node collector of node1's exporter alone, at the lab's
interval, for ``--part-seconds`` each (benchmarks/check_cost.py, in node1's namespaces, the lab
still up): runs per second, CPU per run and CPU; then all of them in one runner with each
scrape's answer written, beside the exporter's total (the difference is serving it over HTTP).

``--peers`` then measures the peers the same way, each configuration on a lab of its own
(benchmarks/peers/, nothing failing, after ``--settle`` seconds): keepalived, and Pacemaker +
Corosync with 1 s monitors and with the agents' default monitors; one row per node and
configuration, the sum over the tool's daemons on that node (children/s: the processes they
started during the window, each counted once).  ``--tools`` picks the tools (``--tools keepalived
pacemaker``: the peers alone).

    sudo python3 -m benchmarks.idle_cost [--seconds 60] [--lab idle] [--keep]
    sudo python3 -m benchmarks.idle_cost --peers
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.peers import idle as peers_idle
from benchmarks.peers import teardown
from benchmarks.peers.failover import TOOLS as PEERS
from benchmarks.peers.lab import NODES as PEER_NODES
from gardien.node import liveness
from gardien.types import parse_duration
from gardien_lab import lifecycle
from gardien_lab.demo import wait_scraped
from gardien_lab.topology import NODES, Lab, running

TICK = os.sysconf("SC_CLK_TCK")
DAEMONS = [(node, name) for node in NODES for name in ("exporter", "hook")] + [
    ("mon", "prometheus"),
    ("mon", "alertmanager"),
]
CPU_BUDGET = 2.0
"""Percent of one core for a node's exporter + hook at the lab's 1 s intervals."""
FAST_CPU_BUDGET = 5.0
"""Percent of one core for the same at the speed issue's sub-second intervals."""
RSS_BUDGET = 45.0
"""MiB of the exporter's RSS."""


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(self, reaped children) CPU of ``pid`` in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return utime + stime, cutime + cstime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Watched:
    machine: str
    name: str
    pid: int
    start: tuple[int, int] = (0, 0)
    children: set[tuple[int, int]] = field(default_factory=set)
    seconds: float = 0.0
    """The window :func:`measure` watched it over."""

    @property
    def ident(self) -> tuple[int, int]:
        """(pid, start time), as in :attr:`children`."""
        master = liveness.read(self.pid)
        return (self.pid, master.started if master else 0)

    def poll_children(self) -> None:
        master = liveness.read(self.pid)
        if master is not None:
            self.children.update((p.pid, p.started) for p in liveness.tree(master))


def measure(watched: list[Watched], seconds: float, poll: float) -> dict[str, dict[str, float]]:
    for w in watched:
        w.start = cpu_ticks(w.pid)
    started = time.monotonic()
    end = started + seconds
    while time.monotonic() < end:
        for w in watched:
            w.poll_children()
        time.sleep(poll)
    elapsed = time.monotonic() - started
    found = {}
    for w in watched:
        w.seconds = elapsed
        own, children = cpu_ticks(w.pid)
        found[f"{w.machine} {w.name}"] = {
            "self": 100 * (own - w.start[0]) / TICK / elapsed,
            "children": 100 * (children - w.start[1]) / TICK / elapsed,
            "rss": rss_mib(w.pid),
            "forks": len(w.children) / elapsed,
        }
    return found


def table(found: dict[str, dict[str, float]]) -> str:
    lines = [
        "| process | CPU self | CPU children | CPU total | RSS | children/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, f in found.items():
        lines.append(
            f"| {label} | {f['self']:.2f} % | {f['children']:.2f} % "
            f"| {f['self'] + f['children']:.2f} % | {f['rss']:.1f} MiB | {f['forks']:.1f} |"
        )
    return "\n".join(lines)


def budgets(found: dict[str, dict[str, float]], scrape_interval: float) -> str:
    """Each node's exporter + hook against issue 14's budgets (when gardien was measured): the
    CPU budget of 1 s intervals, or of the speed issue's shorter ones."""
    cpu_budget = CPU_BUDGET if scrape_interval >= 1 else FAST_CPU_BUDGET
    lines = []
    for node in NODES:
        if f"{node} exporter" not in found:
            continue
        total = sum(
            found[f"{node} {n}"]["self"] + found[f"{node} {n}"]["children"]
            for n in ("exporter", "hook")
        )
        rss = found[f"{node} exporter"]["rss"]
        lines.append(
            f"{node}: exporter + hook {total:.2f} % of a core (budget {cpu_budget} %), "
            f"exporter RSS {rss:.1f} MiB (budget {RSS_BUDGET:.0f} MiB)"
        )
    return "\n".join(lines)


def node_total(watched: list[Watched], found: dict[str, dict[str, float]]) -> dict[str, float]:
    """One node's processes summed up; children/s counts each child once (pacemakerd's tree
    holds the other daemons) and not the watched daemons themselves."""
    own = {w.ident for w in watched}
    children = set().union(*(w.children for w in watched)) - own
    rows = [found[f"{w.machine} {w.name}"] for w in watched]
    total = {k: sum(r[k] for r in rows) for k in ("self", "children", "rss")}
    total["forks"] = len(children) / max(w.seconds for w in watched)
    return total


def measure_peers(tools: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Every configuration of ``tools`` on a peers lab of its own, one row per node."""
    found: dict[str, dict[str, float]] = {}
    for tool, monitors in peers_idle.CONFIGS:
        if tool not in tools:
            continue
        label = peers_idle.label(tool, monitors)
        with teardown.lab() as lab:
            PEERS[tool].start(lab, monitors)
            time.sleep(args.settle)
            by_node = {
                node: [
                    Watched(node, f"{comm} {pid}", pid)
                    for comm, pid in peers_idle.daemons(lab, node)
                ]
                for node in PEER_NODES
            }
            per_process = measure(
                [w for ws in by_node.values() for w in ws], args.seconds, args.poll
            )
        for node, watched in by_node.items():
            found[f"{node} {label} ({len(watched)} processes)"] = node_total(watched, per_process)
    return found


def measure_lab(lab: Lab, args: argparse.Namespace) -> dict[str, dict[str, float]] | None:
    if not wait_scraped(lab, 90):
        print("Prometheus does not scrape every target", file=sys.stderr)
        return None
    time.sleep(args.settle)
    watched = []
    for machine, name in DAEMONS:
        pid = running(lab, machine, name)
        if pid is None:
            print(f"{machine} {name} does not run", file=sys.stderr)
            return None
        watched.append(Watched(machine, name, pid))
    return measure(watched, args.seconds, args.poll)


def measure_gardien(args: argparse.Namespace) -> dict[str, dict[str, float]] | None:
    lab = Lab(
        name=args.lab,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
    )
    print(
        f"gardien on lab {lab.name!r}: scrape every {lab.scrape_interval}, rules every "
        f"{lab.evaluation_interval}",
        file=sys.stderr,
        flush=True,
    )
    lifecycle.up(lab)
    try:
        found = measure_lab(lab, args)
        if found is not None and args.part_seconds:
            print(parts_table(lab, args, found["node1 exporter"]), flush=True)
        return found
    finally:
        if not args.keep:
            lifecycle.down(lab)


def parts_table(lab: Lab, args: argparse.Namespace, exporter: dict[str, float]) -> str:
    """Each probe kind and collector of node1's exporter alone at the lab's interval
    (benchmarks/check_cost.py, in node1's namespaces), then all of them in one runner with the
    answers written, beside the whole exporter measured in the window (``exporter``)."""
    argv = [
        *lab.prefix_argv("node1"),
        sys.executable, "-m", "benchmarks.check_cost",
        "--config.file", str(lab.dir / "cluster.yml"),
        "--state-dir", str(lab.dir / "node1" / "state"),
        "--interval", str(parse_duration(lab.scrape_interval)),
        "--seconds", str(args.part_seconds),
    ]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, check=True, timeout=1800
    )
    parts = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    lines = [
        f"node1 exporter by part, each alone at the lab's interval ({lab.scrape_interval}):",
        "| part | count | runs/s | CPU per run | CPU (% of a core) |",
        "|---|---:|---:|---:|---:|",
    ]
    *each, whole_runner = parts
    for part in each:
        lines.append(
            f"| {part['part']} | {part['count']} | {part['runs_per_second']:.2f} "
            f"| {part['cpu_ms_per_run']:.2f} ms | {part['cpu_percent']:.2f} % |"
        )
    exporter_total = exporter["self"] + exporter["children"]
    lines += [
        f"| the parts, summed (each pays a runner's scrape) | | | "
        f"| {sum(part['cpu_percent'] for part in each):.2f} % |",
        f"| {whole_runner['part']} | | {whole_runner['runs_per_second']:.2f} "
        f"| {whole_runner['cpu_ms_per_run']:.2f} ms | {whole_runner['cpu_percent']:.2f} % |",
        f"| the exporter as measured above, serving included | | | | {exporter_total:.2f} % |",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab", default="idle")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--poll", type=float, default=0.01)
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--scrape-interval", default=Lab.scrape_interval)
    parser.add_argument("--evaluation-interval", default=Lab.evaluation_interval)
    parser.add_argument(
        "--part-seconds", type=float, default=20.0,
        help="then each probe kind and collector of node1's exporter alone for this long (0: not)",
    )  # fmt: skip
    parser.add_argument("--peers", action="store_true", help="also keepalived and Pacemaker")
    parser.add_argument(
        "--tools", nargs="*", choices=("gardien", *PEERS),
        help="the tools measured (default: gardien; with --peers: all three)",
    )  # fmt: skip
    args = parser.parse_args()
    tools = args.tools or (["gardien", *PEERS] if args.peers else ["gardien"])
    found: dict[str, dict[str, float]] = {}
    if "gardien" in tools:
        gardien = measure_gardien(args)
        if gardien is None:
            return 1
        found |= gardien
    found |= measure_peers(tools, args)
    print(table(found))
    if lines := budgets(found, parse_duration(args.scrape_interval)):
        print(f"\n{lines}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
