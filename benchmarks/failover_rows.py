"""What the failover benchmarks share: the client poller, and the rows it fills.

gardien's lab benchmark (benchmarks/lab_failover.py) and the peers' (benchmarks/peers/) measure
the same thing the same way: from the fault, the client machine asks for the page on the VIP
(:func:`answered_at`) until the right node answers; a trial is a dict of seconds (``answering``
and, where the tool shows them, its phases); the trials of one group x failure x tool make a
:class:`Row`.  Rows print as one markdown table (:func:`table`), each peer's row beside gardien's
with the ratio of the answering medians, or as JSON lines (:func:`json_lines`).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gardien import polling

POLL_INTERVAL = 0.1
"""Seconds between two polls of the client (after the first few, which are quicker)."""
ANSWERING = "answering"
GARDIEN = "gardien"


def answered_at(answers: Callable[[], bool], timeout: float) -> float | None:
    """Wall time of the first poll for which ``answers()`` (the client got the page from the
    target node) held, polling every :data:`POLL_INTERVAL` until ``timeout``; None if never."""
    return polling.wait_for(lambda: answers() and time.time(), timeout, interval=POLL_INTERVAL)


@dataclass
class Row:
    """The trials of one group kind x failure kind x tool."""

    group: str
    kind: str
    """What the group is made of, for people ("Apache + Samba")."""
    failure: str
    tool: str
    trials: list[dict[str, float]] = field(default_factory=list)
    gave_up: float | None = None
    """Seconds a trial waited in vain for the answer (the row stopped there), if one did."""

    def median(self, phase: str) -> float | None:
        values = [t[phase] for t in self.trials if phase in t]
        return statistics.median(values) if values else None

    def max(self, phase: str) -> float | None:
        values = [t[phase] for t in self.trials if phase in t]
        return max(values) if values else None

    def phases(self) -> list[str]:
        """The phases some trial of the row measured, in their first trial's order."""
        seen: dict[str, None] = {}
        for trial in self.trials:
            seen.update(dict.fromkeys(trial))
        return list(seen)


def ratio(row: Row, rows: Iterable[Row], compared_with: dict[str, str]) -> float | None:
    """gardien's answering median over ``row``'s, for a peer's row: gardien's row of the same
    failure and of the group ``compared_with[row.group]`` (the gardien group built like the
    peer's).  Below 1: gardien answers sooner."""
    ours = next(
        (
            r
            for r in rows
            if r.tool == GARDIEN
            and r.failure == row.failure
            and r.group == compared_with.get(row.group)
        ),
        None,
    )
    theirs = row.median(ANSWERING)
    mine = ours.median(ANSWERING) if ours else None
    if row.tool == GARDIEN or mine is None or not theirs:
        return None
    return mine / theirs


def _cell(row: Row, phase: str) -> str:
    median, most = row.median(phase), row.max(phase)
    if median is None or most is None:
        return "-"
    return f"{median:.2f} ({most:.2f})"


def _answering(row: Row) -> str:
    if row.gave_up is not None and not row.trials:
        return f"none within {row.gave_up:.0f} s"
    cell = _cell(row, ANSWERING)
    if row.gave_up is not None:
        cell += f", then none within {row.gave_up:.0f} s"
    return cell


def table(rows: Sequence[Row], phases: Sequence[str], compared_with: dict[str, str]) -> str:
    """One markdown table: answering median (max) of every row, gardien / the peer where one
    compares, then each of ``phases`` (``-`` where the tool has none)."""
    columns = [p for p in phases if p != ANSWERING]
    head = "| group (kind) | failure | tool | runs | answering | gardien / this | "
    lines = [head + " | ".join(columns) + " |", "|" + "---|" * (6 + len(columns))]
    for row in rows:
        found = ratio(row, rows, compared_with)
        cells = [
            f"{row.group} ({row.kind})",
            row.failure,
            row.tool,
            str(len(row.trials)),
            _answering(row),
            "-" if found is None else f"{found:.2f}",
            *(_cell(row, p) for p in columns),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _key(phase: str) -> str:
    return phase.replace(" ", "_") + "_median"


def as_dict(row: Row, rows: Sequence[Row], compared_with: dict[str, str]) -> dict[str, object]:
    """The row as data: ``group``, ``failure``, ``tool``, ``runs``, ``answering_median``,
    ``answering_max`` (None when no trial answered), ``gave_up_after`` when a trial waited in
    vain, ``gardien_ratio`` for a peer's row gardien compares with, and ``PHASE_median`` for
    each phase the tool measured (spaces as underscores: ``service_start_median``)."""
    found: dict[str, object] = {
        "group": row.group,
        "failure": row.failure,
        "tool": row.tool,
        "runs": len(row.trials),
        "answering_median": row.median(ANSWERING),
        "answering_max": row.max(ANSWERING),
    }
    if row.gave_up is not None:
        found["gave_up_after"] = row.gave_up
    compared = ratio(row, rows, compared_with)
    if compared is not None:
        found["gardien_ratio"] = compared
    for phase in row.phases():
        if phase != ANSWERING:
            found[_key(phase)] = row.median(phase)
    return found


def json_lines(rows: Sequence[Row], compared_with: dict[str, str]) -> str:
    """One JSON object per row and per line."""
    return "\n".join(json.dumps(as_dict(r, rows, compared_with)) for r in rows)
