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
``--profile`` prints the functions that took the most CPU (yappi, when installed).

To compare two commits, run it from each checkout (``git worktree add /tmp/before REV``) one
after the other: ``python3 -m`` imports gardien from the directory it runs in.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
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


def hook_row(base: Path, scrapes: int) -> tuple[dict[str, float], int]:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # as the daemon
    services = [[{"name": f"svc{i}", "start": ["true"], "stop": ["true"]}] for i in range(5)]
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if args.profile:
            row = exporter_row if args.profile == "exporter" else hook_row
            profiled(lambda: row(base, args.scrapes), args.scrapes, args.top)
            return 0
        print("| what | CPU per scrape | wall median | answer |")
        print("|---|---:|---:|---:|")
        for name, row in (("exporter /metrics", exporter_row), ("hook /metrics", hook_row)):
            found, size = row(base, args.scrapes)
            print(
                f"| {name} | {found['cpu_ms']:.2f} ms | {found['wall_median_ms']:.2f} ms | "
                f"{size} bytes |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
