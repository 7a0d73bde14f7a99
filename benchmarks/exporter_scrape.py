"""Scrape cost of ``gardien exporter`` next to Debian's prometheus-blackbox-exporter.

Both probe the same loopback HTTP targets, each answering after ~100 ms (a threaded server in its
own process).  gardien runs N probes in one scrape; blackbox gets one ``/probe`` request per
target, all in parallel, as Prometheus sends them.  Measured per scrape: wall time, CPU time of
the exporter process (psutil, before/after the batch), and the exporter's RSS after the batch.

    python3 benchmarks/exporter_scrape.py [--probes 1 10 50] [--scrapes 20]

Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.exporter import ExporterProcess, free_port, samples

TARGET_DELAY = 0.1
SCRAPE_TIMEOUT = 10.0


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(TARGET_DELAY)
        body = b"OK\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TargetServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops SYNs of parallel probes (1 s retry)
    daemon_threads = True


def _serve_targets(port: int) -> None:
    _TargetServer(("127.0.0.1", port), _SlowHandler).serve_forever()


@dataclass
class Row:
    tool: str
    probes: int
    wall: list[float]
    cpu_per_scrape: float
    rss: int
    uss: int
    slowest_probe: list[float]


def _wait_http(url: str, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server of {url} exited")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


def _measure(tool: str, probes: int, pid: int, scrape: Callable[[], float], scrapes: int) -> Row:
    process = psutil.Process(pid)
    for _ in range(3):  # warm up: imports, connection pools, JIT-free but lazy paths
        scrape()
    slowest: list[float] = []
    walls: list[float] = []
    before = process.cpu_times()
    for _ in range(scrapes):
        started = time.perf_counter()
        slowest.append(scrape())
        walls.append(time.perf_counter() - started)
    after = process.cpu_times()
    cpu = (after.user + after.system) - (before.user + before.system)
    memory = process.memory_full_info()
    return Row(tool, probes, walls, cpu / scrapes, memory.rss, memory.uss, slowest)


def _gardien_config(folder: Path, urls: list[str]) -> Path:
    lines = ["cluster: bench", "nodes: {node1: {address: 127.0.0.1}}", "groups:", "  g:"]
    lines += ["    nodes: [node1]", "    services:"]
    for i, url in enumerate(urls):
        lines.append(f"      - {{name: s{i}, probes: [{{http: {{url: '{url}', timeout: 5s}}}}]}}")
    path = folder / f"gardien-{len(urls)}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_gardien(folder: Path, urls: list[str], scrapes: int) -> Row:
    exporter = ExporterProcess(_gardien_config(folder, urls), log_level="info")
    try:
        exporter.wait_ready()

        def scrape() -> float:
            response = exporter.scrape(SCRAPE_TIMEOUT)
            success = samples(response.text, "gardien_probe_success")
            if len(success) != len(urls) or not all(success.values()):
                raise RuntimeError(f"gardien probes failed: {success}")
            return max(samples(response.text, "gardien_probe_duration_seconds").values())

        return _measure("gardien exporter", len(urls), exporter.process.pid, scrape, scrapes)
    finally:
        exporter.stop()


@contextmanager
def blackbox(folder: Path) -> Iterator[tuple[str, int]]:
    config = folder / "blackbox.yml"
    config.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
        "    http:\n      preferred_ip_protocol: ip4\n"
    )
    port = free_port()
    process = subprocess.Popen(
        ["prometheus-blackbox-exporter", f"--config.file={config}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/-/healthy", lambda: process.poll() is None)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def bench_blackbox(base: str, pid: int, urls: list[str], scrapes: int) -> Row:
    pool = ThreadPoolExecutor(max_workers=len(urls))
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=len(urls))
    session.mount("http://", adapter)

    def probe(url: str) -> float:
        response = session.get(
            f"{base}/probe",
            params={"module": "http_2xx", "target": url},
            headers={"X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)},
            timeout=SCRAPE_TIMEOUT,
        )
        values = samples(response.text, "probe_success")
        if list(values.values()) != [1]:
            raise RuntimeError(f"blackbox probe of {url} failed")
        return next(iter(samples(response.text, "probe_duration_seconds").values()))

    def scrape() -> float:
        return max(pool.map(probe, urls))

    try:
        return _measure("prometheus-blackbox-exporter 0.23", len(urls), pid, scrape, scrapes)
    finally:
        pool.shutdown()


def _table(rows: list[Row]) -> str:
    out = [
        "| exporter | probes | scrape wall median (max) | slowest probe median "
        "| wall / slowest probe | CPU per scrape | RSS (USS) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        wall = statistics.median(row.wall)
        slowest = statistics.median(row.slowest_probe)
        out.append(
            f"| {row.tool} | {row.probes} | {wall * 1000:.0f} ms ({max(row.wall) * 1000:.0f}) "
            f"| {slowest * 1000:.0f} ms | {wall / slowest:.2f}x "
            f"| {row.cpu_per_scrape * 1000:.1f} ms "
            f"| {row.rss / 2**20:.1f} MiB ({row.uss / 2**20:.1f}) |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("prometheus-blackbox-exporter") is None:
        print("prometheus-blackbox-exporter is not installed", file=sys.stderr)
        return 1
    port = free_port()
    targets = multiprocessing.Process(target=_serve_targets, args=(port,), daemon=True)
    targets.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="gardien-bench-") as tmp:
            folder = Path(tmp)
            _wait_http(f"http://127.0.0.1:{port}/", targets.is_alive)
            with blackbox(folder) as (base, pid):
                for n in args.probes:
                    urls = [f"http://127.0.0.1:{port}/t{i}" for i in range(n)]
                    rows.append(bench_gardien(folder, urls, args.scrapes))
                    rows.append(bench_blackbox(base, pid, urls, args.scrapes))
                    print(_table(rows[-2:]).splitlines()[-2:], file=sys.stderr)
    finally:
        targets.terminate()
        targets.join(timeout=5)
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
