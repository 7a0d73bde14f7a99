"""Lab: fault to service answering on the other node, split into phases.

On the two-node lab (``gardien lab``: real Apache/Samba, MariaDB, Tomcat, exporter, Prometheus,
Alertmanager, hooks), for each group kind x failure kind, a trial injects the fault on the node
holding the group and polls from the client machine (every 0.1 s) until the service answers
correctly on its VIP from the other node.  Phases come from the sources an operator reads:

* detection: fault -> first ``gardien_service_up == 0`` sample in Prometheus
  (``--scrape-interval``);
* alerting: -> the failover alert firing (Prometheus ``ALERTS``; rule ``for:`` included);
* decision: -> the target hook's move starting (webhook through Alertmanager + safety gates);
* release: -> the release on the source finished (stop services, VIP, unmount) or fencing;
* acquire: -> volume mounted and VIP up on the target;
* service start: -> the last service started and checked by the hook;
* answering: fault -> the client sees the correct answer on the VIP (the total).

Between trials every group goes back home and the hooks' journals are emptied (anti-flap).

``--peers`` also measures keepalived and Pacemaker (benchmarks/peers/: a lab of their own, the
same faults and client poller) after gardien, and prints one table of every row with the ratios
of gardien's answering medians to theirs; ``--tools`` picks the tools (``--tools keepalived
pacemaker``: the peers alone); ``--output json``: one JSON object per row and line (progress on
stderr).

    sudo python3 -m benchmarks.lab_failover [--runs 5] [--lab bench] [--for 2s] [--keep]
    sudo python3 -m benchmarks.lab_failover --peers [--output json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks import failover_rows
from benchmarks.failover_rows import Row, answered_at
from benchmarks.peers import failover as peers
from gardien_lab import faults, lifecycle, monitoring, scenario, services
from gardien_lab.demo import wait_scraped
from gardien_lab.hookapi import hook_get
from gardien_lab.topology import NODES, Lab

# group -> (kind label, service probed, fault by failure kind)
Fault = Callable[[Lab, str], object]
CASES: dict[str, tuple[str, str, dict[str, Fault]]] = {
    "php4": ("Apache + Samba", "apache-php4", {
        "crash": lambda lab, node: faults.kill_apache(lab, node, "php4"),
        "hang": lambda lab, node: faults.hang_apache(lab, node, "php4"),
    }),
    "mysql1": ("MariaDB", "mysql1", {
        "crash": lambda lab, node: faults.kill_service(lab, node, "mysql1"),
        "hang": lambda lab, node: faults.hang_service(lab, node, "mysql1"),
    }),
    "java": ("Tomcat", "tomcat", {
        "crash": lambda lab, node: faults.kill_service(lab, node, "java"),
        "hang": lambda lab, node: faults.hang_service(lab, node, "java"),
    }),
}  # fmt: skip

ISOLATION = "isolation"
"""Node isolation: the source node's public link down (its cluster link stays up); every group
of the node moves, the row follows one of them."""


def isolate(lab: Lab, node: str) -> None:
    faults.public_link(lab, node, up=False)


def signals(failure: str, group: str, service: str, source: str) -> tuple[str, str]:
    """PromQL of the first sample showing the fault and of the failover alert firing."""
    if failure == ISOLATION:
        return (
            f'gardien_network_link_up{{node="{source}"}}',
            f'ALERTS{{alertname="GardienNodeIsolated",alertstate="firing",node="{source}"}}',
        )
    return (
        f'gardien_service_up{{service="{service}",node="{source}"}}',
        f'ALERTS{{alertname="GardienGroupFailed",alertstate="firing",group="{group}",'
        f'node="{source}"}}',
    )


PHASES = ("detection", "alerting", "decision", "release", "acquire", "service start", "answering")
DECISION_SPLIT = ("delivery", "hook decision")
"""Decision split at the alert's arrival at the target's hook: delivery is Prometheus ->
Alertmanager -> webhook (from the alert firing), hook decision the hook's own time from the
alert's arrival to the move's start (``details.decision_seconds`` of its decision)."""


def first_sample(series: list[dict[str, Any]], wanted: str, after: float) -> float | None:
    times = [
        float(t)
        for s in series
        for t, v in s.get("values", [])
        if v == wanted and float(t) >= after
    ]
    return min(times) if times else None


def records(lab: Lab, group: str, since: float) -> list[dict[str, Any]]:
    """Journal records (moves, acquires, releases) of ``group`` started after ``since``."""
    found = []
    for node in NODES:
        history = hook_get(lab, node, f"/api/v1/history?group={group}") or {}
        found += [m for m in history.get("moves", []) if float(m.get("started") or 0) >= since]
    return found


def _finished(steps: list[dict[str, Any]], words: tuple[str, ...]) -> float | None:
    times = [
        float(s["finished"])
        for s in steps
        if s.get("finished")
        and s.get("state") == "done"
        and any(s["description"].startswith(w) for w in words)
    ]
    return max(times) if times else None


def _decision_seconds(lab: Lab, node: str, group: str, since: float) -> float | None:
    """The decision time ``node``'s hook reports for its first move of ``group`` after ``since``."""
    answer = hook_get(lab, node, "/api/v1/decisions") or {}
    for decision in answer.get("decisions", []):
        took = decision.get("details", {}).get("decision_seconds")
        if (
            decision.get("group") == group
            and str(decision.get("message", "")).startswith("moved")
            and float(decision["time"]) >= since
            and took is not None
        ):
            return float(took)
    return None


def trial(
    lab: Lab, group: str, service: str, failure: str, fault: Fault
) -> dict[str, float] | None:
    source = scenario.placement(lab)[group][0]
    target = next(n for n in services.lab_groups(lab)[group].nodes if n != source)
    spec = services.lab_groups(lab)[group]
    symptom, alert = signals(failure, group, service, source)
    up = f"{symptom} == 1"
    quiet = scenario.wait_for(
        lambda: (
            monitoring.query(lab, up)
            and not monitoring.query(
                lab, f'ALERTS{{alertstate="firing",group="{group}",failover="true"}}'
            )
        ),
        60,
    )
    if not quiet:  # a trial starting with the service seen down would measure nothing
        print(f"  {group}: not seen healthy before the fault", file=sys.stderr)
        return None
    t0 = time.time()
    fault(lab, source)
    answered = answered_at(
        lambda: (
            scenario.placement(lab)[group] == [target] and services.answers_from_client(lab, spec)
        ),
        180,
    )
    if not answered:
        print(f"  {group}: no answer from {target} within 180 s", file=sys.stderr)
        return None
    time.sleep(3)  # the last samples and journal rows
    span = {"start": f"{t0 - 2:.3f}", "end": f"{time.time():.3f}", "step": "0.1"}
    detected = first_sample(monitoring.query(lab, symptom, **span), "0", t0)
    alerted = first_sample(monitoring.query(lab, alert, **span), "1", t0)
    found = records(lab, group, t0)
    move = next((r for r in found if r["kind"] == "move"), None)
    acquire = next((r for r in found if r["kind"] == "acquire" and r["target"] == target), None)
    if detected is None or alerted is None or move is None or acquire is None:
        print(
            f"  {group}: incomplete: detected {detected} alerted {alerted} records {found}",
            file=sys.stderr,
        )
        return None
    released = _finished(move["steps"], ("release", "fence"))
    acquired = _finished(acquire["steps"], ("start volume", "start vip"))
    started = _finished(acquire["steps"], ("start service",))
    if released is None or acquired is None or started is None:
        print(f"  {group}: steps missing in {found}", file=sys.stderr)
        return None
    marks = [t0, detected, alerted, float(move["started"]), released, acquired, started]
    result = {phase: b - a for phase, a, b in zip(PHASES, marks, marks[1:], strict=False)}
    result["answering"] = answered - t0
    took = _decision_seconds(lab, target, group, t0)
    if took is not None:
        result[DECISION_SPLIT[0]] = float(move["started"]) - took - alerted
        result[DECISION_SPLIT[1]] = took
    return result


def migration(lab: Lab, group: str) -> dict[str, float] | None:
    """A planned move (``gardien migrate`` on the target, as an operator runs it) while the
    client polls the VIP every 0.1 s (each poll waits up to 2 s for its answer): the
    client-visible outage is the longest time between two good answers (an upper bound: the
    normal spacing is one poll interval plus a poll's own time, ~0.15 s)."""
    source = scenario.placement(lab)[group][0]
    target = next(n for n in services.lab_groups(lab)[group].nodes if n != source)
    spec = services.lab_groups(lab)[group]
    polls: list[tuple[float, bool]] = []  # (answer time, good)
    stop = threading.Event()

    def poll() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            good = services.answers_from_client(lab, spec)
            polls.append((time.time(), good))
            stop.wait(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(1)  # good answers before the move
        t0 = time.time()
        done = scenario.gardien_on(lab, target, "migrate", group, "--to", target, answer="y\n")
        command = time.time() - t0
        moved = scenario.wait_for(
            lambda: scenario.placement(lab)[group] == [target] and polls[-1][1], 60
        )
        time.sleep(0.5)
    finally:
        stop.set()
        poller.join()
    if done.returncode != 0 or not moved:
        print(f"  {group}: migrate failed: {done.stdout}{done.stderr}", file=sys.stderr)
        return None
    good = [t for t, ok in polls if ok]
    gaps = [b - a for a, b in itertools.pairwise(good) if b > t0]
    return {"migrate command": command, "client outage": max(gaps)}


TOOLS = (failover_rows.GARDIEN, *peers.TOOLS)


def gardien_rows(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    """gardien's rows, on its lab (up, trials, planned moves, down unless ``--keep``)."""
    lab = Lab(
        name=args.lab,
        group_failed_for=args.group_failed_for,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
    )
    say(f"gardien on lab {lab.name!r}: {lab.timing}")
    lifecycle.up(lab)
    rows: list[Row] = []
    try:
        if not wait_scraped(lab, 90):
            raise SystemExit("Prometheus does not scrape every target")
        for group in args.groups:
            kind, service, by_failure = CASES[group]
            for failure in args.failures:
                row = Row(group, kind, failure, failover_rows.GARDIEN)
                rows.append(row)
                fault = isolate if failure == ISOLATION else by_failure[failure]
                for i in range(args.runs):
                    for node in NODES:  # an isolation of the previous trial undone
                        faults.public_link(lab, node, up=True)
                    scenario.restore(lab)
                    measured = trial(lab, group, service, failure, fault)
                    say(f"{group} {failure} #{i + 1}: {json.dumps(measured)}")
                    if measured:
                        row.trials.append(measured)
        migrations(lab, args, say)
    finally:
        if not args.keep:
            lifecycle.down(lab)
    return rows


def migrations(lab: Lab, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    outages: dict[str, list[dict[str, float]]] = {}
    for group in args.groups if args.migrations else ():
        for i in range(args.migrations):
            scenario.restore(lab)
            measured = migration(lab, group)
            say(f"{group} migrate #{i + 1}: {json.dumps(measured)}")
            if measured:
                outages.setdefault(group, []).append(measured)
    for group, runs in outages.items():
        cells = [
            f"{statistics.median(r[k] for r in runs):.2f} ({max(r[k] for r in runs):.2f})"
            for k in ("client outage", "migrate command")
        ]
        say(f"| {group} ({CASES[group][0]}) | migrate | {len(runs)} | " + " | ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", default="bench")
    parser.add_argument("--groups", nargs="*", default=list(CASES))
    parser.add_argument("--failures", nargs="*", default=["crash", "hang", ISOLATION])
    parser.add_argument(
        "--migrations", type=int, default=0,
        help="also this many planned moves per group (gardien migrate), client outage measured",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    parser.add_argument(
        "--for", dest="group_failed_for", default=Lab.group_failed_for,
        help=f"GardienGroupFailed's for (the lab's: {Lab.group_failed_for})",
    )  # fmt: skip
    parser.add_argument(
        "--scrape-interval", default=Lab.scrape_interval,
        help=f"Prometheus' scrape interval (the lab's: {Lab.scrape_interval})",
    )  # fmt: skip
    parser.add_argument(
        "--evaluation-interval", default=Lab.evaluation_interval,
        help=f"Prometheus' rule evaluation interval (the lab's: {Lab.evaluation_interval})",
    )  # fmt: skip
    parser.add_argument(
        "--peers", action="store_true",
        help="also keepalived and Pacemaker (benchmarks/peers/), after gardien, one table",
    )  # fmt: skip
    parser.add_argument(
        "--tools", nargs="*", choices=TOOLS,
        help="the tools measured (default: gardien; with --peers: all three)",
    )  # fmt: skip
    parser.add_argument(
        "--peer-timeout", type=float, default=90.0,
        help="seconds a peer's trial waits for the answer (a row ends at the first in vain)",
    )  # fmt: skip
    parser.add_argument("--output", choices=("table", "json"), default="table")
    args = parser.parse_args()
    tools = args.tools or (list(TOOLS) if args.peers else [failover_rows.GARDIEN])
    out = sys.stderr if args.output == "json" else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    rows: list[Row] = []
    if failover_rows.GARDIEN in tools:
        rows += gardien_rows(args, say)
    chosen = [t for t in tools if t in peers.TOOLS]
    rows += peers.rows(chosen, args.failures, args.runs, args.peer_timeout, say)
    if args.output == "json":
        print(failover_rows.json_lines(rows, peers.COMPARED_WITH))
    else:
        print(failover_rows.table(rows, (*PHASES, *DECISION_SPLIT), peers.COMPARED_WITH))
    return 0


if __name__ == "__main__":
    sys.exit(main())
