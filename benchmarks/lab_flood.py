"""Lab: what a flood of node1's ports does to the probes of every group where it runs.

Brings the lab up (``gardien lab``, ``--scrape-interval`` / ``--evaluation-interval``, the lab's
by default), waits until Prometheus scrapes every exporter and hook and ``--settle`` seconds
more, then floods node1's exporter and hook ports for ``--seconds`` as tests/lab/test_flood.py
does (``gardien_lab.flood`` from a second address of ``mon`` on the cluster network: slow
connections that never finish their request and a stream of unauthenticated requests, bounded
in count and time).  Prints, from Prometheus, for each probe of each group on the node that
holds it: its longest run, the samples in which it failed and whether it timed out, over the
flood; and every alert that fired meanwhile.  Traffic stays inside the lab's namespaces.

    sudo python3 -m benchmarks.lab_flood [--seconds 60] [--lab flood] [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from gardien.types import parse_duration
from gardien_lab import agents, lifecycle, monitoring
from gardien_lab.demo import wait_scraped
from gardien_lab.scenario import placement
from gardien_lab.topology import Lab, on

ATTACKER_HOST = 66
"""The flooder's host number on the cluster network (a second address of ``mon``)."""


def flood(lab: Lab, seconds: float) -> float:
    """Node1's exporter and hook flooded for ``seconds``; how long the flood took."""
    source = str(lab.cluster.network_address + ATTACKER_HOST)
    attacker = f"{source}/{lab.cluster.prefixlen}"
    argv = [
        sys.executable, "-m", "gardien_lab.flood", "--supernet", str(lab.supernet),
        "--source", source, "--slow", "1000", "--threads", "8",
        "--seconds", str(seconds),
    ]  # fmt: skip
    for url in (agents.exporter_url(lab, "node1"), agents.hook_url(lab, "node1")):
        argv += ["--target", url.removeprefix("http://")]
    on(lab, "mon", ["ip", "addr", "replace", attacker, "dev", "eth0"])
    started = time.monotonic()
    try:
        subprocess.run(
            [*lab.prefix_argv("mon"), *argv], capture_output=True, timeout=seconds + 60, check=True
        )
    finally:
        on(lab, "mon", ["ip", "addr", "del", attacker, "dev", "eth0"], check=False)
    return time.monotonic() - started


def _by_probe(lab: Lab, promql: str) -> dict[tuple[str, str, str, str], float]:
    return {
        (m["node"], m["group"], m["service"], m["probe"]): float(r["value"][1])
        for r in monitoring.query(lab, promql)
        if (m := r["metric"]).get("group")
    }


def report(lab: Lab, window: str) -> str:
    holders = {group: nodes[0] for group, nodes in placement(lab).items() if len(nodes) == 1}
    longest = _by_probe(lab, f"max_over_time(gardien_probe_duration_seconds[{window}])")
    step = lab.scrape_interval
    failed = _by_probe(lab, f"count_over_time((gardien_probe_success == 0)[{window}:{step}])")
    samples = _by_probe(lab, f"count_over_time(gardien_probe_success[{window}:{step}])")
    timed_out = _by_probe(lab, f"max_over_time(gardien_probe_timed_out[{window}])")
    lines = [
        "| node | group | service | probe | longest run | failed samples | timed out |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for key in sorted(k for k in longest if holders.get(k[1]) == k[0]):
        lines.append(
            f"| {' | '.join(key)} | {longest[key]:.3f} s "
            f"| {failed.get(key, 0):.0f} of {samples.get(key, 0):.0f} "
            f"| {'yes' if timed_out.get(key) else 'no'} |"
        )
    fired = sorted(
        {
            f"{m['alertname']}{{{m.get('group', m.get('node', ''))}}}"
            for r in monitoring.query(
                lab, f'max_over_time(ALERTS{{alertstate="firing"}}[{window}])'
            )
            if (m := r["metric"])
        }
    )
    lines.append(f"\nalerts fired: {', '.join(fired) or 'none'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab", default="flood")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--scrape-interval", default=Lab.scrape_interval)
    parser.add_argument("--evaluation-interval", default=Lab.evaluation_interval)
    parser.add_argument("--for", dest="group_failed_for", default=Lab.group_failed_for)
    args = parser.parse_args()
    if not 0 < args.seconds <= 600:
        parser.error("--seconds: more than 0, at most 600")
    lab = Lab(
        name=args.lab,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
        group_failed_for=args.group_failed_for,
    )
    print(f"lab {lab.name!r}: {lab.timing}", file=sys.stderr, flush=True)
    lifecycle.up(lab)
    try:
        if not wait_scraped(lab, 90):
            print("Prometheus does not scrape every exporter and hook", file=sys.stderr)
            return 1
        time.sleep(args.settle)
        took = flood(lab, args.seconds)
        window = f"{int(took + 2 * parse_duration(lab.scrape_interval)) + 1}s"
        print(report(lab, window))
    finally:
        if not args.keep:
            lifecycle.down(lab)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
