"""CPU of one whole scrape of an exporter and of a hook, in process: what a Prometheus scrape costs
a node beyond the probes' own checks (serving, the runner's hand-offs, rendering).

    python3 -m benchmarks.scrape_cost --scrapes 300     # from a checkout's root, as root; no lab

The exporter serves a config of five groups (each an http probe of one Apache on loopback and a
process probe of its pid file, two groups with a second process-probed service; volumes absent,
VIPs absent on ``lo``) and a network section pinging four loopback addresses, through its real
web server; a client on this process's main thread scrapes it back to back over loopback with
Prometheus' ``Accept`` (OpenMetrics preferred) and ``Accept-Encoding: gzip``, ten milliseconds
apart.  CPU is this process's (``getrusage(RUSAGE_SELF)``, every thread) minus the client's own
thread time.  The hook row is one hook of the same five groups (no services running), its
``/metrics`` asked through Flask's test client in the main thread (whose time then counts).
``--journal N`` gives the hook a journal of ``N`` entries first, spread over the five groups and
the last 30 days (the newest an hour and a half old: an idle cluster with a history): each move
journaled as the mover writes it (its plan, its steps, the local acquire inside it), then the
releases for the peer's moves, restarts in place that worked and that did not, freezes.
``--only exporter|hook`` measures one row.  ``--profile`` prints the functions that took the most
CPU (yappi, when installed).

To compare two commits, run it from each checkout (``git worktree add /tmp/before REV``) one
after the other: ``python3 -m`` imports gardien from the directory it runs in.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prometheus_client

import gardien.config  # noqa: F401 - first: import order of the config/probes cycle
from exporter.daemon import node_collectors
from exporter.server import Exporter
from failover_hook.app import create_app
from failover_hook.daemon import build_hook
from failover_hook.journal import Journal
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import Action, Plan, Step, StepState
from failover_hook.trigger import Trigger, TriggerKind
from gardien.config import load_config
from gardien.web import WebServer, load_web_config
from tests.probes.conftest import free_port, running_apache

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PAUSE = 0.01


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cluster(base: Path, services: list[list[dict[str, Any]]]) -> Path:
    groups = {
        f"g{i}": {
            "nodes": ["n1", "n2"],
            "volume": {
                "device": f"/dev/absent{i}",
                "mountpoint": str(base / f"absent{i}"),
                "fstype": "ext4",
            },
            "vip": {"address": f"127.0.9.{i + 1}/32", "interface": "lo"},
            "services": group,
        }
        for i, group in enumerate(services)
    }
    config = {
        "cluster": "bench",
        "nodes": {"n1": {"address": "127.0.0.1"}, "n2": {"address": "127.0.0.2"}},
        "network": {
            "interface": "lo",
            "internal": ["127.0.0.1", "127.0.0.2"],
            "external": ["127.0.0.3", "127.0.0.4"],
        },
        "groups": groups,
    }
    path = base / "cluster.json"
    path.write_text(json.dumps(config))
    return path


def exporter_services(url: str, pidfile: Path) -> list[list[dict[str, Any]]]:
    def service(name: str, probes: list[dict[str, Any]]) -> dict[str, Any]:
        process = {"pidfile": str(pidfile), "min_children": 1}
        return {"name": name, "start": ["true"], "stop": ["true"], "process": process,
                "probes": probes}  # fmt: skip

    http = [{"http": {"url": url, "expect_regex": "UP"}}]
    return [
        [service(f"web{i}", http), *([service(f"extra{i}", [])] if i < 2 else [])] for i in range(5)
    ]


def measure(scrape: Callable[[], bytes], scrapes: int, in_client: bool) -> dict[str, float]:
    """CPU and wall time per scrape; ``in_client``: the scraped app runs in the client's own
    thread (the hook through Flask's test client), so that thread's time counts."""
    for _ in range(10):
        scrape()
    walls = []
    began_cpu, began_thread = cpu(), time.thread_time()
    for _ in range(scrapes):
        started = time.monotonic()
        scrape()
        walls.append(time.monotonic() - started)
        time.sleep(PAUSE)
    spent = cpu() - began_cpu
    client = 0.0 if in_client else time.thread_time() - began_thread
    return {
        "cpu_ms": (spent - client) / scrapes * 1000,
        "wall_median_ms": statistics.median(walls) * 1000,
    }


def exporter_row(base: Path, scrapes: int) -> tuple[dict[str, float], int]:
    with running_apache(base, "bench-scrape", {"health": "status: UP\n"}) as web:
        inst = web.inst
        url = f"http://{inst.address}:{inst.port}/health"
        path = cluster(base, exporter_services(url, inst.pidfile))
        exporter = Exporter(path, lambda c: node_collectors(c, base / "state"))
        port = free_port("127.0.0.1")
        server = WebServer(exporter, f"127.0.0.1:{port}", load_web_config(None))
        exporter.serving_metrics = server.metrics
        server.start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {
            "Accept": PROMETHEUS_ACCEPT,
            "Accept-Encoding": "gzip",
            "X-Prometheus-Scrape-Timeout-Seconds": "0.9",
        }

        def scrape() -> bytes:
            conn.request("GET", "/metrics", headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"scrape answered {response.status}: {body[:200]!r}")
            return body

        try:
            return measure(scrape, scrapes, in_client=False), len(scrape())
        finally:
            server.stop()
            exporter.close()


HISTORY_DAYS = 30


def _journal_entry(journal: Journal, group: str, n: int) -> int:
    """The ``n``-th entry of ``group``'s history, written as the hook writes it (see the
    module); how many entries that wrote (a move: two)."""
    done = Outcome(Status.DONE, f"done {group}", group)
    kind = ("move", "release", "restart", "declined", "freeze")[n % 5]
    if kind == "move":
        detail = f"volume /dev/absent, vip 127.0.9.1/32, start svc of {group}"
        plan = Plan(group, "n2", "n1", (
            Step("n2", Action.RELEASE, group, local=False, detail=detail),
            Step("n2", Action.FENCE, group, local=False, only_if_failed=0),
            Step("n1", Action.ACQUIRE, group, local=True, detail=detail),
        ), TriggerKind.ALERT)  # fmt: skip
        move = journal.begin_move(plan)
        for idx, state in enumerate((StepState.DONE, StepState.SKIPPED, StepState.DONE)):
            journal.step_started(move, idx)
            if idx == 2:  # the local acquire journals its own entry, inside the move's
                steps = [f"make sure no other node holds {group}", "start svc"]
                acquire = journal.begin_local(group, "n1", "acquire", steps, Trigger.step_of(move))
                for step in range(len(steps)):
                    journal.step_finished(acquire, step, StepState.DONE, "ok")
                journal.finish(acquire, done)
            journal.step_finished(move, idx, state, "ok")
        journal.finish(move, done)
        return 2
    if kind == "release":
        entry = journal.begin_local(
            group, "n1", "release", ["stop svc"], Trigger.for_peer_move(f"n2#{n}")
        )
        journal.step_finished(entry, 0, StepState.DONE, "stopped")
        journal.finish(entry, done)
    elif kind in {"restart", "declined"}:
        steps = ["stop svc", "start svc"] if kind == "restart" else []
        entry = journal.begin_local(
            group, "n1", "restart", steps, Trigger(TriggerKind.ALERT), services=["svc"]
        )
        for step in range(len(steps)):
            journal.step_finished(entry, step, StepState.DONE, "ok")
        journal.finish(entry, done if steps else Outcome(Status.REFUSED, "not restarted", group))
    else:
        journal.record_freeze(group, n % 10 < 5, Trigger(TriggerKind.API, by="token"), done)
    return 1


def write_history(state_dir: Path, groups: list[str], entries: int) -> None:
    """``entries`` entries (one more if a move ends it) over ``groups``, each in turn, then
    spread over the last ``HISTORY_DAYS``."""
    journal = Journal.in_state_dir(state_dir)
    written = turn = 0
    while written < entries:
        written += _journal_entry(journal, groups[turn % len(groups)], turn // len(groups))
        turn += 1
    journal.close()
    with sqlite3.connect(state_dir / "journal.db") as db:  # each entry and its steps, aged
        (count,) = db.execute("SELECT MAX(id) FROM moves").fetchone()
        step = HISTORY_DAYS * 86400 / count
        newest = time.time() - 5400
        db.execute("UPDATE moves SET started = ? - (? - id) * ?, finished = ? - (? - id) * ? + 2",
                   (newest, count, step) * 2)  # fmt: skip
        aged = "SET started = m.started + idx * 0.5, finished = m.started + idx * 0.5 + 0.4"
        db.execute(f"UPDATE steps {aged} FROM (SELECT id, started FROM moves) AS m"
                   " WHERE steps.move_id = m.id")  # fmt: skip


def hook_row(base: Path, scrapes: int, journal: int = 0) -> tuple[dict[str, float], int]:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # as the daemon
    services = [[{"name": f"svc{i}", "start": ["true"], "stop": ["true"]}] for i in range(5)]
    if journal:
        write_history(base / "hook", [f"g{i}" for i in range(5)], journal)
    hook = build_hook(load_config(cluster(base, services)), "n1", base / "hook", dry_run=True)
    client = create_app(hook).test_client()

    def scrape() -> bytes:
        response = client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
        if response.status_code != 200:
            raise SystemExit(f"hook scrape answered {response.status_code}")
        return bytes(response.data)

    return measure(scrape, scrapes, in_client=True), len(scrape())


def profiled(run: Callable[[], object], scrapes: int, top: int) -> None:
    try:
        import yappi  # type: ignore[import-untyped]  # noqa: PLC0415 - optional, --profile only
    except ImportError:
        raise SystemExit("--profile needs yappi (pip install yappi)") from None
    yappi.set_clock_type("cpu")
    yappi.start()
    run()
    yappi.stop()
    stats = yappi.get_func_stats()
    stats.sort("ttot")
    print("| function | CPU per scrape, own | with callees | calls per scrape |")
    print("|---|---:|---:|---:|")
    for entry in list(stats)[:top]:
        where = f"{Path(entry.module).name}:{entry.lineno} {entry.name}"
        print(
            f"| {where} | {entry.tsub / scrapes * 1000:.3f} ms | "
            f"{entry.ttot / scrapes * 1000:.3f} ms | {entry.ncall / scrapes:.1f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--profile", choices=("exporter", "hook"))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--journal", type=int, default=0, help="entries in the hook's journal")
    parser.add_argument("--only", choices=("exporter", "hook"))
    args = parser.parse_args()
    rows: dict[str, Callable[[Path, int], tuple[dict[str, float], int]]] = {
        "exporter": exporter_row,
        "hook": lambda base, scrapes: hook_row(base, scrapes, args.journal),
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if args.profile:
            row = rows[args.profile]
            profiled(lambda: row(base, args.scrapes), args.scrapes, args.top)
            return 0
        print("| what | CPU per scrape | wall median | answer |")
        print("|---|---:|---:|---:|")
        for what, row in rows.items():
            if args.only not in {None, what}:
                continue
            found, size = row(base, args.scrapes)
            name = f"{what} /metrics" + (
                f", journal of {args.journal}" if what == "hook" and args.journal else ""
            )
            print(
                f"| {name} | {found['cpu_ms']:.2f} ms | {found['wall_median_ms']:.2f} ms | "
                f"{size} bytes |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
