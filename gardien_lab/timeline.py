"""What happened after a fault, from the sources an operator would read: Prometheus (the probe
going to 0, the alert firing), Alertmanager, and each hook's decisions and journaled move steps.

Used by ``lab demo``, the lab tests (to explain a failure) and the lab benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from failover_hook.freeze import FREEZE_KINDS
from gardien_lab import hookapi, monitoring
from gardien_lab.topology import NODES, Lab


@dataclass(frozen=True, order=True)
class Event:
    time: float
    source: str
    what: str


def _first_sample(series: list[dict[str, Any]], wanted: float, after: float) -> float | None:
    times = [
        float(t)
        for s in series
        for t, v in s.get("values", [])
        if float(t) >= after and math.isclose(float(v), wanted)
    ]
    return min(times) if times else None


def prometheus_events(
    lab: Lab, group: str, service: str | None, since: float, until: float, *, node: str = ""
) -> list[Event]:
    """First failure of ``service`` on ``node`` (the one holding the group: the other node's
    exporter reports its services down all the time) and first firing alerts about ``group``."""
    span = {"start": f"{since - 2:.3f}", "end": f"{until:.3f}", "step": "0.5"}
    events = []
    if service:
        promql = f'gardien_service_up{{service="{service}",node="{node}"}}'
        down = monitoring.query(lab, promql, **span)
        first = _first_sample(down, 0.0, since)
        if first is not None:
            events.append(Event(first, "prometheus", f"{service} seen down (gardien_service_up 0)"))
    firing = monitoring.query(lab, f'ALERTS{{alertstate="firing",group="{group}"}}', **span)
    seen: set[str] = set()
    for series in firing:
        name = series["metric"].get("alertname", "?")
        first = _first_sample([series], 1.0, since)
        if first is not None and name not in seen:
            seen.add(name)
            node = series["metric"].get("node", "")
            events.append(Event(first, "prometheus", f"alert {name} firing {node}".rstrip()))
    return events


def hook_events(lab: Lab, group: str, since: float) -> list[Event]:
    """Decisions about ``group`` and the steps of its moves, from every hook that answers."""
    events = []
    for node in NODES:
        source = f"hook {node}"
        for d in hookapi.decisions(lab, node):
            if d.outcome.group == group and d.time >= since:
                events.append(Event(d.time, source, f"decision: {d.outcome.message}"))
        for move in hookapi.history(lab, node, group):
            if move.started < since:
                continue
            for step in move.steps:
                if step.finished:
                    where = f" on {step.node}" if step.node else ""
                    what = f"step {step.description}{where}: {step.state}"
                    events.append(Event(step.finished, source, what))
            if move.kind in FREEZE_KINDS:  # an operator's, written finished, without steps
                events.append(Event(move.started, source, f"{move.kind}: {move.message}"))
            elif move.finished:
                what = f"move {move.source} -> {move.target}: {move.status} {move.message or ''}"
                events.append(Event(move.finished, source, what.rstrip()))
    return events


def collect(
    lab: Lab, group: str, service: str | None, since: float, until: float, *, node: str = ""
) -> list[Event]:
    """Every event about ``group`` after ``since``; ``service`` on ``node`` is the one broken."""
    return sorted(
        prometheus_events(lab, group, service, since, until, node=node)
        + hook_events(lab, group, since)
    )


def format_events(events: list[Event], t0: float) -> str:
    return "\n".join(f"  +{e.time - t0:7.2f} s  {e.source:12} {e.what}" for e in sorted(events))
