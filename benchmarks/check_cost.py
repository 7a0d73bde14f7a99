"""CPU of each probe kind and node collector of one node's exporter, at the exporter's cadence.

Run on a node (in its namespaces, as its exporter runs), with the exporter's config and state
folder; benchmarks/idle_cost.py runs it on the lab's node1 after its measurement window:

    python3 -m benchmarks.check_cost --config.file cluster.yml --state-dir DIR --interval 0.25

For each probe kind (every probe of that kind in the config, as the exporter builds them) and each
node collector, one runner of the exporter's (:class:`exporter.runner.ScrapeRunner`) holding that
part alone is scraped every ``--interval`` seconds for ``--seconds``, with the budget the lab's
exporter gets (Prometheus' scrape timeout, 0.9 of the interval, minus the margin, a quarter of it):
CPU is this process's ``getrusage`` over the part's window, self and reaped children, every thread
(a probe's helper threads and the children it runs included), and runs are counted where the
runner starts them (a probe with ``every`` runs less often than it is scraped).  Each part is alone
in the process, so the hand-offs between parts and the serving and writing of a whole scrape are
not in any row; nor is the runner's own cost of one scrape shared: each row pays it.  The last
row holds every part in one runner, as the exporter does, and writes each scrape's answer (its
families, OpenMetrics, gzip): the exporter's whole work but for serving it over HTTP.  Prints one
JSON object per part.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import gardien.config  # noqa: F401 - first: import order of the config/probes cycle
from exporter.collector import ExporterCollector, ReloadStatus
from exporter.daemon import node_collectors
from exporter.runner import ProbeTarget, ScrapeRunner, probe_targets
from gardien.config import ClusterConfig, load_config
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import build_probe
from gardien.web.exposition import answer

OPENMETRICS = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class _Counted:
    """A probe that counts its runs (the runner starts a run only when one is due)."""

    def __init__(self, probe: Probe[ProbeParams]) -> None:
        self._probe = probe
        self.params = probe.params
        self.runs = 0

    def run(self, budget: float | None) -> ProbeResult:
        self.runs += 1
        return self._probe.run(budget)


class Scraped(Protocol):
    def scrape(self, budget: float) -> object: ...


def scraped(
    runner: Scraped, interval: float, seconds: float, counted: Sequence[_Counted] = ()
) -> tuple[float, int, float]:
    """Scrape ``runner`` every ``interval`` for ``seconds`` (after two scrapes of warm-up, whose
    runs ``counted`` forget): CPU seconds spent, scrapes made and the wall time they spanned."""
    budget = max(0.05, 0.9 * interval - min(0.25, 0.25 * interval))
    for _ in range(2):
        runner.scrape(budget)
        time.sleep(interval)
    for probe in counted:
        probe.runs = 0
    began, began_cpu, scrapes = time.monotonic(), cpu_seconds(), 0
    next_at = began
    while time.monotonic() - began < seconds:
        runner.scrape(budget)
        scrapes += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return cpu_seconds() - began_cpu, scrapes, time.monotonic() - began


def window(targets: Sequence[ProbeTarget], seconds: float) -> float:
    """``seconds``, or longer, up to 60 s, to hold two runs of the probe with the longest
    ``every``."""
    longest = max((t.spec.params.every or 0.0 for t in targets), default=0.0)
    return min(60.0, max(seconds, 2.2 * longest))


def measure_probes(
    kind: str, targets: Sequence[ProbeTarget], interval: float, seconds: float
) -> None:
    counted: list[_Counted] = []

    def build(kind: str, params: ProbeParams) -> Probe[ProbeParams]:
        counted.append(_Counted(build_probe(kind, params)))
        return counted[-1]  # type: ignore[return-value]

    runner = ScrapeRunner(targets, [], build=build)
    spent, _, wall = scraped(runner, interval, window(targets, seconds), counted)
    runner.close()
    report(f"{kind} probes", len(targets), spent, sum(c.runs for c in counted), wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config.file", dest="config_file", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    config = load_config(args.config_file)
    by_kind: dict[str, list[ProbeTarget]] = defaultdict(list)
    for target in probe_targets(config):
        by_kind[target.spec.kind].append(target)
    for kind, targets in sorted(by_kind.items()):
        measure_probes(kind, targets, args.interval, args.seconds)
    for collector in node_collectors(config, args.state_dir):
        runner = ScrapeRunner([], [collector])
        spent, scrapes, wall = scraped(runner, args.interval, args.seconds)
        runner.close()
        report(f"{collector.name} collector", 1, spent, scrapes, wall)
    measure_whole(config, args)
    return 0


def measure_whole(config: ClusterConfig, args: argparse.Namespace) -> None:
    """Every part in one runner, as the exporter holds them, and each scrape's answer written as
    Prometheus asks for it (OpenMetrics, gzip): the exporter's work but for serving it."""
    runner = ScrapeRunner(probe_targets(config), node_collectors(config, args.state_dir))
    status = ReloadStatus(successful=True, last_success=time.time())

    class _Answered:
        """The runner as the exporter scrapes it: its families, then the answer."""

        def scrape(self, budget: float) -> None:
            families = ExporterCollector(config, runner, budget, status).collect()
            answer(families, OPENMETRICS, "gzip", "")

    seconds = window(probe_targets(config), args.seconds)
    spent, scrapes, wall = scraped(_Answered(), args.interval, seconds)
    runner.close()
    report("all parts in one runner, answers written", 1, spent, scrapes, wall)


def report(part: str, count: int, spent: float, runs: int, wall: float) -> None:
    print(
        json.dumps(
            {
                "part": part,
                "count": count,
                "cpu_percent": 100 * spent / wall,
                "runs_per_second": runs / wall,
                "cpu_ms_per_run": 1000 * spent / runs if runs else 0.0,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
