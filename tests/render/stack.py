"""A whole monitoring path on loopback, all real processes: a probed HTTP service, ``gardien
exporter`` and ``gardien hook --dry-run`` for "nodes" at 127.0.0.1 and 127.0.0.2, Prometheus with
the rendered rules and scrape config, Alertmanager with the rendered routing.

The hooks run with ``--dry-run``: they decide and report, and never touch an address, a mount or
a process.  Used by the live tests and by benchmarks/detection_latency.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from gardien.config import ClusterConfig, load_config
from gardien.render.alertmanager import AlertmanagerOptions, render_alertmanager
from gardien.render.common import dump_yaml
from gardien.render.prometheus import PrometheusOptions, render_prometheus
from gardien.render.rules import RuleOptions, render_rules
from gardien.state import mark_held
from gardien_lab.freeze import freeze
from tests.render.daemons import Alertmanager, Prometheus, _Daemon, wait_for
from tests.support.exporter import free_port

ADDRESSES = {"n1": "127.0.0.1", "n2": "127.0.0.2"}
TOKEN = "stack-token"


class HttpService:
    """``python -m http.server`` in its own process group, so a test can crash or freeze it."""

    def __init__(self, folder: Path) -> None:
        www = folder / "www"
        www.mkdir(parents=True, exist_ok=True)
        (www / "health").write_text("HEALTH OK\n")
        self.www = www
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/health"
        self._log = (folder / "http.log").open("wb")
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(self.port),
             "--directory", str(self.www)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.process = process
        wait_for(self._answers, "the HTTP service")
        return process

    def restart(self) -> None:
        """Kill whatever state it is in, start again on the same port."""
        self._kill()
        self._start()

    def _answers(self) -> bool:
        try:
            return requests.get(self.url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def crash(self) -> None:
        """SIGKILL: the port refuses connections from now on."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def hang(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered."""
        freeze(self.process.pid, group=True)

    def _kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self._kill()
        self._log.close()


def cluster_config(
    folder: Path,
    service_url: str,
    *,
    extra: dict[str, Any] | None = None,
    probe_timeout: str = "500ms",
) -> dict[str, Any]:
    """Two nodes on loopback; group ``web`` (no volume, no VIP: held by the agent's record)."""
    (folder / "token").write_text(TOKEN + "\n")
    config: dict[str, Any] = {
        "cluster": "loop",
        "nodes": {name: {"address": address} for name, address in ADDRESSES.items()},
        "exporter": {"port": free_port()},
        "hook": {"port": free_port(), "token_file": "token", "cooldown": "1s"},
        "groups": {
            "web": {
                "nodes": ["n1", "n2"],
                "services": [{"name": "httpd", "probes": [
                    {"http": {"url": service_url, "expect_regex": "HEALTH OK",
                              "timeout": probe_timeout}}]}],
            },
        },
    }  # fmt: skip
    for key, value in (extra or {}).items():
        if key == "groups":
            config["groups"].update(value)
        else:
            config[key] = value
    return config


class Stack:
    """Start with :func:`running`; everything it started is stopped on exit."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        exporters: tuple[str, ...],
        rule_options: RuleOptions,
        am_options: AlertmanagerOptions,
        interval: float,
    ) -> None:
        self.folder = folder
        self.config_path = folder / "cluster.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.config: ClusterConfig = load_config(self.config_path)
        self.rule_options = rule_options
        self.am_options = am_options
        self.interval = interval
        self.exporter_nodes = exporters
        self.daemons: list[_Daemon] = []
        self.hooks: dict[str, str] = {}
        self.exporters: dict[str, str] = {}
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None

    def _gardien(self, name: str, args: list[str], ready_url: str) -> None:
        daemon = _Daemon(
            [sys.executable, "-m", "gardien.cli", "--log.level", "info", *args,
             "--config.file", str(self.config_path)],
            self.folder / f"{name}.log", ready_url,
        )  # fmt: skip
        self.daemons.append(daemon)
        daemon.wait_ready()

    def start(self) -> None:
        for node, address in ADDRESSES.items():
            state = self.folder / f"state-{node}"
            state.mkdir(exist_ok=True)
            if node == "n1":
                mark_held(state, "web", True)  # the group runs on n1
            hook = f"{address}:{self.config.hook.port}"
            self.hooks[node] = f"http://{hook}"
            self._gardien(f"hook-{node}", ["hook", "--node", node, "--state-dir", str(state),
                                           "--web.listen-address", hook, "--dry-run"],
                          f"http://{hook}/-/healthy")  # fmt: skip
            if node in self.exporter_nodes:
                exporter = f"{address}:{self.config.exporter.port}"
                self.exporters[node] = f"http://{exporter}"
                self._gardien(f"exporter-{node}", ["exporter", "--state-dir", str(state),
                                                   "--web.listen-address", exporter],
                              f"http://{exporter}/-/healthy")  # fmt: skip
        am_config = self.folder / "alertmanager.yml"
        am_config.write_text(dump_yaml(render_alertmanager(self.config, self.am_options)))
        self.alertmanager = Alertmanager(am_config, self.folder)
        self.daemons.append(self.alertmanager)
        self.alertmanager.wait_ready()
        rules = self.folder / "rules.yml"
        rules.write_text(dump_yaml(render_rules(self.config, self.rule_options)))
        options = PrometheusOptions(
            scrape_interval=self.interval,
            scrape_timeout=self.interval * 0.9,
            evaluation_interval=self.interval,
            rule_files=(str(rules),),
            alertmanagers=(f"127.0.0.1:{self.alertmanager.port}",),
        )
        prom_config = self.folder / "prometheus.yml"
        prom_config.write_text(dump_yaml(render_prometheus(self.config, options)))
        self.prometheus = Prometheus(prom_config, self.folder)
        self.daemons.append(self.prometheus)
        self.prometheus.wait_ready()

    def wait_scraped(self, *exprs: str, timeout: float = 60) -> None:
        """Wait until every expression returns a series (Prometheus scrapes ~5 s after start)."""
        assert self.prometheus is not None
        prometheus = self.prometheus
        for expr in exprs:
            wait_for(lambda e=expr: prometheus.vector(e), expr, timeout=timeout, interval=0.2)

    def decisions(self, node: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.hooks[node]}/api/v1/decisions",
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip
        answer.raise_for_status()
        decisions: list[dict[str, Any]] = answer.json()["decisions"]
        return decisions

    def scrape(self, url: str) -> str:
        answer = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                              timeout=10)  # fmt: skip
        answer.raise_for_status()
        return answer.text

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {d.log.name}\n{d.output()[-3000:]}" for d in self.daemons)


@contextlib.contextmanager
def running(
    folder: Path,
    config: dict[str, Any],
    *,
    exporters: tuple[str, ...] = ("n1",),
    rule_options: RuleOptions | None = None,
    am_options: AlertmanagerOptions | None = None,
    interval: float = 1.0,
) -> Iterator[Stack]:
    options = am_options or AlertmanagerOptions()
    stack = Stack(folder, config, exporters, rule_options or RuleOptions(), options, interval)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def first_decision(
    stack: Stack, group: str, since: float, timeout: float = 60
) -> tuple[str, dict[str, Any]]:
    """The first decision about ``group`` (wall time >= ``since``) on any hook: node and entry."""

    def check() -> tuple[str, dict[str, Any]] | None:
        found = [(entry["time"], node, entry) for node in stack.hooks
                 for entry in stack.decisions(node)
                 if entry.get("group") == group and entry["time"] >= since]  # fmt: skip
        if not found:
            return None
        _, node, entry = min(found, key=lambda f: f[0])
        return node, entry

    result: tuple[str, dict[str, Any]] = wait_for(check, f"a decision about {group}", timeout,
                                                  interval=0.02)  # fmt: skip
    return result


def now() -> float:
    return time.time()
