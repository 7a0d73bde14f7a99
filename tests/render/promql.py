"""What the rules and dashboards query: their PromQL expressions and the metric names in them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gardien.render.rules import RECORDING_RULES

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GARDIEN = re.compile(r"\bgardien_[a-z0-9_]+\b")
_RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMETHEUS_OWN = {"up"}
"""Series Prometheus itself writes for every target."""


def rule_expressions(rules: dict[str, Any]) -> dict[str, str]:
    """Rule name (record or alert) -> expression."""
    return {r.get("alert") or r["record"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def panel_expressions(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Panel title -> its targets' expressions; the annotations as one more "panel"."""
    found = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dashboard["panels"]}
    annotations = [a["expr"] for a in dashboard["annotations"].get("list", []) if a.get("expr")]
    if annotations:
        found["(annotations)"] = annotations
    return found


def metric_names(expr: str) -> set[str]:
    """``gardien_*`` names (histogram series reduced to their family) and recorded names."""
    bare = _STRING.sub('""', expr)
    recorded = set(_RECORDED.findall(bare))
    raw = _RECORDED.sub("", bare)
    return {_family(n) for n in _GARDIEN.findall(raw)} | recorded


def _family(name: str) -> str:
    for suffix in _HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def documented_metrics(metrics_md: Path) -> set[str]:
    """The families of docs/metrics.md's tables (first column, each name in backquotes)."""
    names = set()
    for line in metrics_md.read_text().splitlines():
        if line.startswith("| `gardien_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`(gardien_[a-z0-9_]+)`", first_cell))
    return names


def unknown_names(expr: str, known: set[str]) -> set[str]:
    """Names in ``expr`` that are neither in ``known`` nor recorded by the rules."""
    return metric_names(expr) - known - set(RECORDING_RULES) - PROMETHEUS_OWN


def instantiate(expr: str, cluster: str) -> str:
    """A dashboard expression with Grafana's variables replaced, ready for Prometheus."""
    return (
        expr.replace("$cluster", cluster)
        .replace('=~"$node"', '=~".*"')
        .replace('=~"$group|"', '=~".*"')
        .replace('=~"$group"', '=~".*"')
        .replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
    )
