"""Lab: a crash recovered by restart in place, from the fault to the service answering again.

The lab with every group service restartable in place (``restart: {attempts: N, window: 10m}``,
docs/config.md "Restart in place"); for each group, a trial kills the service on the node that
holds it and polls from the client (every 0.1 s) until the group answers correctly on its VIP
again, still from that node.  Phases, from the sources an operator reads:

* detection: fault -> first ``gardien_service_up == 0`` sample in Prometheus;
* alerting: -> ``GardienGroupFailed`` firing;
* decision: -> the holder's restart entry started (Alertmanager, its hook's decision);
* restart: -> that entry finished (the failed service and its dependants stopped and started,
  each start waiting for its probes);
* answering: fault -> the client sees the correct answer on the VIP (the total).

Between trials the hooks' journals are emptied (the restarts of the window with them).

    sudo python3 -m benchmarks.lab_restart [--runs 5] [--groups php4 mysql1] [--lab bench]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchmarks.failover_rows import Row, answered_at
from benchmarks.lab_failover import CASES, first_sample, records, signals
from gardien_lab import lifecycle, monitoring, scenario, services
from gardien_lab.demo import wait_scraped
from gardien_lab.topology import Lab

PHASES = ("detection", "alerting", "decision", "restart")


def trial(lab: Lab, group: str, service: str) -> dict[str, float] | None:
    """One crash of ``service`` on the node holding ``group``, until it answers there again."""
    source = scenario.placement(lab)[group][0]
    spec = services.lab_groups(lab)[group]
    symptom, alert = signals("crash", group, service, source)
    if not scenario.wait_for(lambda: monitoring.query(lab, f"{symptom} == 1"), 60):
        print(f"  {group}: not seen healthy before the fault", file=sys.stderr)
        return None
    t0 = time.time()
    CASES[group][2]["crash"](lab, source)
    restarted = answered_at(
        lambda: (
            scenario.placement(lab)[group] == [source]
            and any(r["kind"] == "restart" and r["finished"] for r in records(lab, group, t0))
            and services.answers_from_client(lab, spec)
        ),
        120,
    )
    if not restarted:
        print(f"  {group}: not answering from {source} within 120 s", file=sys.stderr)
        return None
    time.sleep(3)  # the last samples
    span = {"start": f"{t0 - 2:.3f}", "end": f"{time.time():.3f}", "step": "0.1"}
    detected = first_sample(monitoring.query(lab, symptom, **span), "0", t0)
    alerted = first_sample(monitoring.query(lab, alert, **span), "1", t0)
    entry = next((r for r in records(lab, group, t0) if r["kind"] == "restart"), None)
    if detected is None or alerted is None or entry is None or entry["status"] != "done":
        print(f"  {group}: incomplete: {detected} {alerted} {entry}", file=sys.stderr)
        return None
    marks = [t0, detected, alerted, float(entry["started"]), float(entry["finished"])]
    result = {phase: b - a for phase, a, b in zip(PHASES, marks, marks[1:], strict=False)}
    result["answering"] = restarted - t0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", default="bench")
    parser.add_argument("--groups", nargs="*", default=["php4", "mysql1"], choices=list(CASES))
    parser.add_argument("--for", dest="group_failed_for", default=Lab.group_failed_for)
    parser.add_argument("--scrape-interval", default=Lab.scrape_interval)
    parser.add_argument("--evaluation-interval", default=Lab.evaluation_interval)
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    args = parser.parse_args()
    lab = Lab(
        name=args.lab,
        group_failed_for=args.group_failed_for,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
        restart_attempts=1000,
    )
    print(f"restart in place on lab {lab.name!r}: {lab.timing}", flush=True)
    lifecycle.up(lab)
    rows: list[Row] = []
    try:
        if not wait_scraped(lab, 90):
            raise SystemExit("Prometheus does not scrape every target")
        for group in args.groups:
            kind, service, _faults = CASES[group]
            row = Row(group, kind, "crash, restarted", "gardien")
            rows.append(row)
            for i in range(args.runs):
                scenario.restore(lab)
                measured = trial(lab, group, service)
                print(f"{group} restart #{i + 1}: {json.dumps(measured)}", flush=True)
                if measured:
                    row.trials.append(measured)
    finally:
        if not args.keep:
            lifecycle.down(lab)
    print("| group (kind) | failure | runs | " + " | ".join((*PHASES, "answering")) + " |")
    print("|---|---|---|" + "---|" * (len(PHASES) + 1))
    for row in rows:
        cells: list[Any] = [
            f"{row.median(p):.2f} ({row.max(p):.2f})" if row.median(p) is not None else "-"
            for p in (*PHASES, "answering")
        ]
        print(f"| {row.group} ({row.kind}) | {row.failure} | {len(row.trials)} | "
              + " | ".join(cells) + " |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
