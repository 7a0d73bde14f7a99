"""The ``gardien exporter`` daemon: load, listen, reload on SIGHUP, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import inspect
import logging
import queue
import signal
from functools import partial
from pathlib import Path
from types import FrameType

from exporter.collectors import collector_classes
from exporter.collectors.base import NodeCollector
from exporter.server import Exporter
from gardien import exitcodes
from gardien.config import ClusterConfig, default_config_path
from gardien.errors import ConfigError, GardienError
from gardien.memory import limit_malloc_arenas
from gardien.web import WebServer, load_web_config, node_listen_address

log = logging.getLogger(__name__)


def node_collectors(config: ClusterConfig, state_dir: Path) -> list[NodeCollector]:
    """One instance of every registered node collector; those with a ``state_dir`` get it."""
    built = []
    for cls in collector_classes().values():
        wants_state = "state_dir" in inspect.signature(cls).parameters
        built.append(cls(config, state_dir=state_dir) if wants_state else cls(config))  # type: ignore[call-arg]
    return built


def run(args: argparse.Namespace) -> int:
    limit_malloc_arenas()
    web_config = load_web_config(args.web_config_file)
    config_file = args.config_file or default_config_path()
    exporter = Exporter(config_file, partial(node_collectors, state_dir=args.state_dir))
    try:
        listen = args.listen_address or node_listen_address(
            exporter.config, exporter.config.exporter.port
        )
    except ConfigError:
        exporter.close()
        raise
    server = WebServer(exporter, listen, web_config)
    exporter.serving_metrics = server.metrics
    events: queue.SimpleQueue[str] = queue.SimpleQueue()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        events.put("reload" if signum == signal.SIGHUP else "stop")

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        server.start()
    except OSError as exc:
        exporter.close()
        raise GardienError(f"cannot listen on {listen}: {exc}") from exc
    try:
        while events.get() != "stop":
            log.info("SIGHUP: reloading %s", config_file)
            exporter.reload()
    finally:
        log.info("stopping")
        server.stop()
        exporter.close()
    return exitcodes.OK
