"""A move as a picture: every phase of one move on one time axis, drawn as SVG.

The phases come from what the hooks recorded, read as an operator reads them (``GET
/api/v1/history`` and ``/api/v1/decisions`` of every node): the alert (from its ``startsAt``, when
Prometheus saw the failure, to the decision's arrival), the decision, each step of the move
(release on the source, fence, acquire on the target) and, under the source's release and the
target's acquire, the steps of those nodes' own journals (each service stopped or started, the
volume, the VIP).  A failed step is marked.  No library is needed at run time: the SVG is text.

``gardien history GROUP --svg FILE`` writes it; the web console shows the same picture.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_FAILED_STATES = frozenset({"failed", "undone"})


@dataclass(frozen=True)
class Bar:
    """One phase: what, where, from when to when (Unix time), and how it ended."""

    label: str
    node: str | None
    start: float
    end: float
    state: str
    """``done``, ``failed``, ``skipped``, ``undone``, ``running`` (not finished), or ``info``
    (the alert and decision phases)."""
    depth: int = 0
    """0: a phase of the move; 1: a step of a node's own journal under it."""

    @property
    def failed(self) -> bool:
        return self.state in _FAILED_STATES


@dataclass(frozen=True)
class MoveTimeline:
    group: str
    move: str
    """The move's name across the cluster (``node2#7``)."""
    title: str
    bars: tuple[Bar, ...]
    status: str

    @property
    def start(self) -> float:
        return min(b.start for b in self.bars)

    @property
    def end(self) -> float:
        return max(b.end for b in self.bars)


def _step_bars(record: dict[str, Any], depth: int, now: float) -> list[Bar]:
    bars = []
    for step in record.get("steps", []):
        if step.get("started") is None:
            continue
        end = step["finished"] if step.get("finished") is not None else now
        state = step["state"] if step.get("finished") is not None else "running"
        bars.append(Bar(step["description"], step.get("node"), step["started"], end, state, depth))
    return bars


def _part_of(record: dict[str, Any], move: dict[str, Any], key: str) -> bool:
    """Is ``record`` (of its ``node``'s journal) the release or acquire of the move ``key``?"""
    trigger = record.get("trigger_detail") or {}
    if record.get("kind") not in ("release", "acquire"):
        return False
    if record["node"] == move["node"]:
        return trigger.get("kind") == "move" and trigger.get("parent") == move["id"]
    return trigger.get("kind") == "peer_move" and trigger.get("move_key") == key


def build(
    move: dict[str, Any],
    records: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    now: float,
) -> MoveTimeline:
    """The timeline of ``move`` (a history entry with its ``node``), from every node's journal
    entries ``records`` (each with its ``node``) and the deciding node's ``decisions``."""
    key = f"{move['node']}#{move['id']}"
    bars: list[Bar] = []
    decision = next(
        (d for d in decisions if (d.get("details") or {}).get("move_id") == move["id"]), None
    )
    if decision is not None:
        # its time runs from the alert's arrival to the move's start (the outcome that carries
        # it is recorded once the move has ended)
        took = float((decision.get("details") or {}).get("decision_seconds") or 0.0)
        arrived = float(move["started"]) - took
        alert = decision.get("alert") or {}
        if alert.get("startsAt"):
            fired = datetime.fromisoformat(alert["startsAt"]).timestamp()
            name = (alert.get("labels") or {}).get("alertname", "alert")
            bars.append(Bar(f"{name}: pending, firing, delivered", None, fired, arrived, "info"))
        bars.append(Bar("decision", move["node"], arrived, float(move["started"]), "info"))
    parts = [r for r in records if _part_of(r, move, key)]
    actions = [s.get("action") for s in move.get("steps", []) if s.get("started") is not None]
    for step, action in zip(_step_bars(move, 0, now), actions, strict=True):
        bars.append(step)
        for record in parts:
            if record["node"] == step.node and record["kind"] == action:
                bars += _step_bars(record, 1, now)
    title = (
        f"{move['group']}: {move.get('source') or '-'} -> {move.get('target') or '-'} "
        f"(move {key}, {move.get('status') or 'unfinished'})"
    )
    return MoveTimeline(move["group"], key, title, tuple(bars), move.get("status") or "running")


def pick(
    entries: list[dict[str, Any]], group: str | None, key: str | None
) -> dict[str, Any] | None:
    """The move ``key`` (``node2#7``) among history ``entries``, else the newest move of
    ``group``; None when there is none."""
    moves = [e for e in entries if e.get("kind") == "move"]
    if key is not None:
        return next((m for m in moves if f"{m['node']}#{m['id']}" == key), None)
    return max((m for m in moves if m["group"] == group), key=lambda m: m["started"], default=None)


# -- drawing -------------------------------------------------------------------------------------

_ROW = 22
_LABELS = 330
_WIDTH = 980
_COLOURS = {
    "done": "#3a7d44",
    "failed": "#c0392b",
    "undone": "#d68910",
    "skipped": "#95a5a6",
    "running": "#2e86c1",
    "info": "#7d6fa8",
}


def _tick(span: float) -> float:
    """The axis' step: 1, 2 or 5 times a power of ten, at most 10 steps over ``span``."""
    power = 10.0 ** math.floor(math.log10(max(span, 1e-3) / 10))
    return next(m * power for m in (1, 2, 5, 10) if span / (m * power) <= 10)


def svg(timeline: MoveTimeline) -> str:
    """The picture: a row per bar, one time axis in seconds from the first bar's start."""
    t0, span = timeline.start, max(timeline.end - timeline.start, 0.001)
    scale = (_WIDTH - _LABELS - 110) / span  # room for the last bar's duration
    height = 60 + _ROW * len(timeline.bars) + 40
    title = html.escape(timeline.title)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{title}</title>",
        f'<text x="10" y="20" font-size="14" font-weight="bold">{title}</text>',
    ]
    axis_y = 40 + _ROW * len(timeline.bars) + 10
    tick = _tick(span)
    n = 0
    while n * tick <= span + 1e-9:
        x = _LABELS + n * tick * scale
        out.append(f'<line x1="{x:.1f}" y1="34" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd"/>')
        out.append(
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle">{n * tick:g} s</text>'
        )
        n += 1
    for i, bar in enumerate(timeline.bars):
        y = 40 + i * _ROW
        x = _LABELS + (bar.start - t0) * scale
        width = max((bar.end - bar.start) * scale, 2.0)
        where = f" ({bar.node})" if bar.node else ""
        label = html.escape(f"{'    ' * bar.depth}{bar.label}{where}")
        took = bar.end - bar.start
        out.append(
            f'<text x="{10 + 14 * bar.depth}" y="{y + 14}" xml:space="preserve">{label}</text>'
        )
        out.append(
            f'<rect class="bar {html.escape(bar.state)}" data-state="{html.escape(bar.state)}" '
            f'data-depth="{bar.depth}" x="{x:.1f}" y="{y + 3}" width="{width:.1f}" '
            f'height="{_ROW - 6}" fill="{_COLOURS.get(bar.state, "#555")}">'
            f"<title>{label.strip()}: {took:.2f} s, {html.escape(bar.state)}</title></rect>"
        )
        out.append(
            f'<text x="{x + width + 4:.1f}" y="{y + 14}" fill="#333">{took:.2f} s'
            f"{' FAILED' if bar.failed else ''}</text>"
        )
    total = timeline.end - t0
    out.append(
        f'<text x="10" y="{height - 8}">total {total:.2f} s, from the first phase to the last; '
        f"{sum(1 for b in timeline.bars if b.failed)} failed step(s)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
