"""Start the real ``gardien exporter`` as a process and read what it exports (tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from gardien.polling import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExporterProcess:
    """``gardien exporter`` started as its own process on a free loopback port."""

    def __init__(
        self, config: Path, args: Sequence[str] = (), scheme: str = "http", log_level: str = "debug"
    ) -> None:
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.log = config.with_suffix(".log")
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gardien.cli", "--log.level", log_level, "exporter",
             "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{self.port}",
             "--state-dir", str(config.parent / "state"), *args],
            stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, **request_args: Any) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited {self.process.returncode}:\n{self.output()}")
            try:
                requests.get(f"{self.url}/-/healthy", timeout=1, **request_args)
            except requests.ConnectionError:
                return False
            return True

        if not wait_until(answers, 20):
            raise AssertionError(f"exporter not ready within 20 s:\n{self.output()}")

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def scrape(
        self,
        scrape_timeout: float = 2.0,
        extra_headers: Mapping[str, str] | None = None,
        **request_args: Any,
    ) -> requests.Response:
        """GET /metrics as Prometheus does, with its scrape timeout header."""
        headers = {
            "X-Prometheus-Scrape-Timeout-Seconds": str(scrape_timeout),
            **(extra_headers or {}),
        }
        return requests.get(
            f"{self.url}/metrics", headers=headers, timeout=scrape_timeout + 10, **request_args
        )

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; the exit status (-9 when it had to be killed)."""
        returncode = stop_process_group(self.process)
        self._log_file.close()
        return returncode


def stop_process_group(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to a daemon started in its own session, SIGKILL after 10 s; its exit status."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of one metric in the text exposition, keyed by their label set."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[frozenset(sample.labels.items())] = sample.value
    return found


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())
