"""The exporter's WSGI application: ``/metrics``, ``/-/healthy``, ``/-/reload`` and a landing page.

The config in force, its runner and the outcome of the last reload are swapped together under a
lock; a scrape takes all three at its start, so a reload never mixes two configs in one answer.
A config that fails to load keeps the previous one in force.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.collector import ExporterCollector, ReloadStatus
from exporter.collectors.base import NodeCollector
from exporter.runner import ScrapeRunner, probe_targets
from gardien import __version__
from gardien.config import ClusterConfig, load_config
from gardien.errors import ConfigError
from gardien.web.exposition import metrics_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

CollectorFactory = Callable[[ClusterConfig], Sequence[NodeCollector]]

_SCRAPE_TIMEOUT_HEADER = "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"
_MIN_BUDGET = 0.05


@dataclass(frozen=True)
class _InForce:
    config: ClusterConfig
    runner: ScrapeRunner


class Exporter:
    """Holds the config in force and serves it; :meth:`reload` swaps it for the file's."""

    def __init__(self, config_file: Path, collectors: CollectorFactory) -> None:
        self._config_file = config_file
        self._collectors = collectors
        self._lock = threading.Lock()
        self._in_force = self._load()  # a bad config at start is fatal: ConfigError propagates
        self._status = ReloadStatus(successful=True, last_success=time.time())
        self.serving_metrics: Collector | None = None
        """The web server's collector (its refused connections), added to every scrape."""

    @property
    def config(self) -> ClusterConfig:
        with self._lock:
            return self._in_force.config

    def _load(self) -> _InForce:
        config = load_config(self._config_file)
        targets = probe_targets(config)
        runner = ScrapeRunner(targets, self._collectors(config))
        log.info(
            "config %s: cluster %s, %d probes, %d groups",
            self._config_file,
            config.cluster,
            len(targets),
            len(config.groups),
        )
        return _InForce(config, runner)

    def reload(self) -> str | None:
        """Load the config file again; return None when applied, else why it was not."""
        try:
            fresh = self._load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload failed, keeping the previous config: %s", problem)
            with self._lock:
                self._status = ReloadStatus(False, self._status.last_success)
            return "\n".join(exc.problems)
        with self._lock:
            old, self._in_force = self._in_force, fresh
            self._status = ReloadStatus(True, time.time())
        old.runner.close()
        log.info("config reloaded from %s", self._config_file)
        return None

    def close(self) -> None:
        with self._lock:
            self._in_force.runner.close()

    def scrape_budget(self, environ: WSGIEnvironment, config: ClusterConfig) -> float:
        """Prometheus' scrape timeout minus the margin, or the configured default budget."""
        margin = config.exporter.scrape_timeout_margin
        header = environ.get(_SCRAPE_TIMEOUT_HEADER)
        if header is None:
            return config.exporter.default_scrape_timeout
        try:
            timeout = float(header)
        except ValueError:
            log.warning("ignoring unparsable scrape timeout header %r", header)
            return config.exporter.default_scrape_timeout
        return max(_MIN_BUDGET, timeout - margin)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "Healthy.\n")
        if path == "/-/reload":
            return self._reload_endpoint(method, start_response)
        if path == "/":
            return self._landing(start_response)
        return _text(start_response, "404 Not Found", "Not found.\n")

    def _reload_endpoint(self, method: str, start_response: StartResponse) -> Iterable[bytes]:
        if method not in ("POST", "PUT"):
            return _text(
                start_response,
                "405 Method Not Allowed",
                "Only POST or PUT requests allowed.\n",
                [("Allow", "POST, PUT")],
            )
        error = self.reload()
        if error is None:
            return _text(start_response, "200 OK", "Config reloaded.\n")
        return _text(
            start_response,
            "500 Internal Server Error",
            f"Config reload failed; the previous config stays in force:\n{error}\n",
        )

    def _metrics(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            in_force, status = self._in_force, self._status
            in_force.runner.hold()  # a reload now closes this runner only after this scrape
        try:
            budget = self.scrape_budget(environ, in_force.config)
            collectors: list[Collector] = [
                ExporterCollector(in_force.config, in_force.runner, budget, status)
            ]
            if self.serving_metrics is not None:
                collectors.append(self.serving_metrics)

            def families() -> Iterator[Metric]:
                for collector in collectors:
                    yield from collector.collect()

            # prometheus_client's answer (content negotiation, gzip, name[] filtering), written
            # whole before returning
            return metrics_app(families)(environ, start_response)
        finally:
            in_force.runner.release()

    def _landing(self, start_response: StartResponse) -> Iterable[bytes]:
        config = self.config
        probes = len(probe_targets(config))
        body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>gardien exporter</title></head>
<body>
<h1>gardien exporter</h1>
<p>Cluster <b>{html.escape(config.cluster)}</b>: {len(config.groups)} groups,
{len(config.services)} services, {probes} probes. Version {html.escape(__version__)}.</p>
<ul>
<li><a href="metrics">Metrics</a></li>
<li><a href="-/healthy">Health</a></li>
</ul>
<p>Reload the config with <code>POST /-/reload</code> or SIGHUP.</p>
</body></html>
"""
        return _text(start_response, "200 OK", body, content_type="text/html; charset=utf-8")


def _text(
    start_response: StartResponse,
    status: str,
    body: str,
    headers: Sequence[tuple[str, str]] = (),
    content_type: str = "text/plain; charset=utf-8",
) -> Iterable[bytes]:
    data = body.encode()
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(data))), *headers],
    )
    return [data]
