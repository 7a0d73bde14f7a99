"""Prometheus scrape config for a cluster (``gardien render prometheus``).

Two jobs, ``gardien-exporter`` and ``gardien-hook``, one static target per node, each labelled
``node`` and ``cluster``: the daemons never label themselves, the rules match on these labels.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from gardien.config import ClusterConfig
from gardien.options import Option, command_line
from gardien.render.common import RULES_FILE, duration_option, prom_duration
from gardien.render.rules import EXPORTER_JOB, HOOK_JOB


@dataclass(frozen=True)
class PrometheusOptions:
    scrape_interval: float = field(
        default=1.0,
        metadata=duration_option(
            "--scrape-interval", "how often Prometheus scrapes the exporters and hooks"
        ),
    )
    """Detection time is about one scrape plus one evaluation: keep both short."""
    scrape_timeout: float = field(
        default=0.9,
        metadata=duration_option("--scrape-timeout", "how long one scrape may take"),
    )
    """The exporter bounds its probes by this (minus its margin), so a hung service answers
    "failed" within the scrape instead of failing the scrape."""
    evaluation_interval: float = field(
        default=1.0,
        metadata=duration_option("--evaluation-interval", "how often Prometheus evaluates rules"),
    )
    rule_files: tuple[str, ...] = field(
        default=(RULES_FILE,),
        metadata=command_line(
            Option(
                ("--rule-file",),
                action="append",
                metavar="PATH",
                help="rule file to load, repeatable",
                show_default=", ".join,
            )
        ),
    )
    alertmanagers: tuple[str, ...] = field(
        default=("127.0.0.1:9093",),
        metadata=command_line(
            Option(
                ("--alertmanager",),
                action="append",
                metavar="HOST:PORT",
                help="Alertmanager to send alerts to, repeatable",
                show_default=", ".join,
            )
        ),
    )
    scheme: str = field(
        default="http",
        metadata=command_line(
            Option(
                ("--scheme",),
                choices=("http", "https"),
                help="the exporters' scheme: https when they serve TLS through "
                "--web.config.file; the hooks' follows hook.tls_ca_file",
                show_default=str,
            )
        ),
    )
    """``https`` when the exporters run with a ``--web.config.file`` serving TLS (the hooks'
    scheme follows ``hook.tls_ca_file``)."""


def host_port(address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    """``10.0.0.1:19480`` or ``[fd00::1]:19480``."""
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{port}"


def hook_http_config(config: ClusterConfig) -> dict[str, Any]:
    """How Prometheus and Alertmanager call a hook: its bearer token (every path but
    /-/healthy wants it, /metrics included) and, with ``hook.tls_ca_file``, the CA of its
    certificate."""
    http: dict[str, Any] = {}
    if config.hook.token_file is not None:
        http["authorization"] = {"type": "Bearer", "credentials_file": str(config.hook.token_file)}
    if config.hook.tls_ca_file is not None:
        http["tls_config"] = {"ca_file": str(config.hook.tls_ca_file)}
    return http


def _job(config: ClusterConfig, name: str, port: int, scheme: str) -> dict[str, Any]:
    job: dict[str, Any] = {"job_name": name, "scheme": scheme}
    if name == HOOK_JOB:
        job["scheme"] = "https" if config.hook.tls_ca_file else scheme
        job.update(hook_http_config(config))
    job["static_configs"] = [
        {
            "targets": [host_port(node.address, port)],
            "labels": {"node": node_name, "cluster": config.cluster},
        }
        for node_name, node in config.nodes.items()
    ]
    return job


def render_prometheus(
    config: ClusterConfig, options: PrometheusOptions | None = None
) -> dict[str, Any]:
    """The prometheus.yml as data."""
    options = options or PrometheusOptions()
    return {
        "global": {
            "scrape_interval": prom_duration(options.scrape_interval),
            "scrape_timeout": prom_duration(options.scrape_timeout),
            "evaluation_interval": prom_duration(options.evaluation_interval),
        },
        "rule_files": list(options.rule_files),
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": list(options.alertmanagers)}]}]
        },
        "scrape_configs": [
            _job(config, EXPORTER_JOB, config.exporter.port, options.scheme),
            _job(config, HOOK_JOB, config.hook.port, options.scheme),
        ],
    }
