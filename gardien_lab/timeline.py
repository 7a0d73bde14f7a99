"""What happened after a fault, from the sources an operator would read: Prometheus (the probe
going to 0, the alert firing), Alertmanager, and each hook's decisions and journaled move steps.

Used by ``lab demo``, the lab tests (to explain a failure) and the lab benchmark.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from gardien_lab import agents, monitoring
from gardien_lab.services import secrets_dir
from gardien_lab.topology import NODES, Lab, on


@dataclass(frozen=True, order=True)
class Event:
    time: float
    source: str
    what: str


def _auth_header(lab: Lab) -> str:
    """curl ``-H @FILE`` file with the hook's bearer token (the token never goes into argv)."""
    path = secrets_dir(lab) / "hook-auth.header"
    if not path.exists():
        token = (secrets_dir(lab) / "token").read_text().strip()
        path.touch(mode=0o600)
        path.write_text(f"Authorization: Bearer {token}\n")
    return str(path)


def hook_get(lab: Lab, node: str, path: str) -> dict[str, Any] | None:
    """GET a hook API path from ``mon``; None when the hook does not answer."""
    url = f"{agents.hook_url(lab, node)}{path}"
    done = on(
        lab,
        "mon",
        ["curl", "-fsS", "-m", "5", "-H", f"@{_auth_header(lab)}", url],
        check=False,
        timeout=10,
    )
    if done.returncode != 0:
        return None
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


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
        decisions = hook_get(lab, node, "/api/v1/decisions") or {}
        for d in decisions.get("decisions", []):
            if d.get("group") == group and float(d.get("time", 0)) >= since:
                events.append(
                    Event(float(d["time"]), f"hook {node}", f"decision: {d.get('message')}")
                )
        history = hook_get(lab, node, f"/api/v1/history?group={group}") or {}
        for move in history.get("moves", []):
            if float(move.get("started") or 0) < since:
                continue
            for step in move.get("steps", []):
                if step.get("finished"):
                    where = f" on {step['node']}" if step.get("node") else ""
                    events.append(
                        Event(
                            float(step["finished"]),
                            f"hook {node}",
                            f"step {step['description']}{where}: {step['state']}",
                        )
                    )
            if move.get("finished"):
                events.append(
                    Event(
                        float(move["finished"]),
                        f"hook {node}",
                        f"move {move.get('source')} -> {move.get('target')}: "
                        f"{move.get('status')} {move.get('message') or ''}".rstrip(),
                    )
                )
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
