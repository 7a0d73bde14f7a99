"""Real Prometheus and Alertmanager (Debian packages) on loopback, and a webhook recorder, for the
render tests and the detection benchmark.  Every process is started in its own session and
stopped (TERM, then KILL) by ``stop``; storage lives in the caller's tmp folder."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.support.exporter import free_port, stop_process_group

DEADLINE = 30.0
"""Upper bound of every wait here; a test waiting longer has failed."""


def wait_for(
    check: Callable[[], Any], what: str, timeout: float = DEADLINE, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; its value is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class _Daemon:
    """A daemon in its own session, its output in a log file beside its config."""

    def __init__(self, argv: list[str], log: Path, ready_url: str) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            argv, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.ready_url = ready_url

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.log.stem} exited:\n{self.output()}")
            try:
                return requests.get(self.ready_url, timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(ready, f"{self.log.stem} ready")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.process)
        self._log_file.close()


class Alertmanager(_Daemon):
    def __init__(self, config: Path, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            ["prometheus-alertmanager", f"--config.file={config}",
             f"--storage.path={folder / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            folder / "alertmanager.log", f"{self.url}/-/ready",
        )  # fmt: skip

    def post(self, *label_sets: dict[str, str]) -> None:
        body = [{"labels": labels, "annotations": {"summary": "test"}} for labels in label_sets]
        answer = requests.post(f"{self.url}/api/v2/alerts", json=body, timeout=5)
        assert answer.status_code == 200, answer.text

    def alerts(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        answer.raise_for_status()
        alerts: list[dict[str, Any]] = answer.json()
        return alerts

    def alert(self, **labels: str) -> dict[str, Any] | None:
        """The alert whose labels include ``labels``, as Alertmanager reports it now."""
        for alert in self.alerts():
            if labels.items() <= alert["labels"].items():
                return alert
        return None


class Prometheus(_Daemon):
    def __init__(self, config: Path, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={folder / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            folder / "prometheus.log", f"{self.url}/-/ready",
        )  # fmt: skip

    def query(self, expr: str) -> dict[str, Any]:
        """The raw answer of an instant query (status, data or error)."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        result: dict[str, Any] = answer.json()
        return result

    def vector(self, expr: str) -> list[dict[str, Any]]:
        answer = self.query(expr)
        assert answer["status"] == "success", f"{expr}: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


class WebhookRecorder:
    """An HTTP server that records every POST (time of arrival, headers, JSON body)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[tuple[float, dict[str, str], dict[str, Any]]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with recorder._lock:
                    recorder.received.append((time.monotonic(), dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for _, _, body in self.received]

    def find(self, **labels: str) -> tuple[float, dict[str, str], dict[str, Any]] | None:
        """The first notification holding a firing alert with these labels."""
        with self._lock:
            for arrival, headers, body in self.received:
                for alert in body.get("alerts", []):
                    if alert["status"] == "firing" and labels.items() <= alert["labels"].items():
                        return arrival, headers, body
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
