"""The journal: every move and every local acquire/release, persisted step by step in SQLite.

One file, ``<state_dir>/journal.db`` (stdlib sqlite3, WAL, so ``gardien history`` reads while the
hook writes).  A move's plan is written before its first step runs and each step's state, timings
and outcome after it ends, so a hook that restarts finds an unfinished move and can finish it or
roll it back (:meth:`failover_hook.move.Mover.recover`).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from failover_hook.outcome import Outcome
from failover_hook.plan import Plan, StepState

JOURNAL_FILE = "journal.db"

_RELEASED_FOR = re.compile(r"move ([^#\s]+#\d+)")


def move_key(node: str, move_id: int) -> str:
    """A move's name across the cluster: the node whose mover ran it and its journal id."""
    return f"{node}#{move_id}"


def release_trigger(key: str) -> str:
    """The trigger a source journals its release with when another node's move asks for it."""
    return f"move {key}"


def released_for(trigger: str) -> str | None:
    """The key of the other node's move a release was for (``move node2#7``), else None.

    The source of a move journals it this way, so a node knows the moves that took a group from
    it even when the node that ran them cannot be asked.
    """
    found = _RELEASED_FOR.fullmatch(trigger)
    return found.group(1) if found else None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    kind TEXT NOT NULL,            -- move | acquire | release
    source TEXT,
    target TEXT,
    trigger TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT,                   -- an Outcome status, NULL while unfinished
    message TEXT,
    plan TEXT                      -- JSON of the Plan (moves only)
);
CREATE INDEX IF NOT EXISTS moves_group ON moves (group_name, started);
CREATE TABLE IF NOT EXISTS steps (
    move_id INTEGER NOT NULL REFERENCES moves (id),
    idx INTEGER NOT NULL,
    node TEXT,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    started REAL,
    finished REAL,
    message TEXT,
    PRIMARY KEY (move_id, idx)
);
"""


@dataclass(frozen=True)
class StepRecord:
    idx: int
    node: str | None
    description: str
    state: StepState
    started: float | None
    finished: float | None
    message: str | None

    @property
    def duration(self) -> float | None:
        return (
            None if self.started is None or self.finished is None else self.finished - self.started
        )


@dataclass(frozen=True)
class MoveRecord:
    id: int
    group: str
    kind: str
    source: str | None
    target: str | None
    trigger: str
    started: float
    finished: float | None
    status: str | None
    message: str | None
    plan: Plan | None
    steps: tuple[StepRecord, ...] = field(default_factory=tuple)

    @property
    def unfinished(self) -> bool:
        return self.finished is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "kind": self.kind,
            "source": self.source,
            "target": self.target,
            "trigger": self.trigger,
            "started": self.started,
            "finished": self.finished,
            "status": self.status,
            "message": self.message,
            "steps": [
                {
                    "description": s.description,
                    "node": s.node,
                    "state": str(s.state),
                    "started": s.started,
                    "finished": s.finished,
                    "duration": s.duration,
                    "message": s.message,
                }
                for s in self.steps
            ],
        }


class Journal:
    """Thread-safe (one connection behind a lock); every write is its own transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: every commit survives a crash of the hook (what recovery is about); only an
        # OS crash may lose the last commits, and fsync on each step would slow every move down.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Journal:
        return cls(state_dir / JOURNAL_FILE)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return int(cursor.lastrowid or 0)

    def _begin(
        self,
        *,
        group: str,
        kind: str,
        source: str | None,
        target: str | None,
        trigger: str,
        steps: Sequence[tuple[str | None, str]],
        plan: Plan | None,
    ) -> int:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO moves (group_name, kind, source, target, trigger, started, plan)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        group,
                        kind,
                        source,
                        target,
                        trigger,
                        now,
                        json.dumps(plan.to_json()) if plan else None,
                    ),
                )
                move_id = int(cursor.lastrowid or 0)
                self._db.executemany(
                    "INSERT INTO steps (move_id, idx, node, description, state)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (move_id, i, node, text, str(StepState.PENDING))
                        for i, (node, text) in enumerate(steps)
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return move_id

    def begin_move(self, plan: Plan) -> int:
        steps = [(s.node, s.describe()) for s in plan.steps]
        return self._begin(
            group=plan.group,
            kind="move",
            source=plan.source,
            target=plan.target,
            trigger=plan.trigger,
            steps=steps,
            plan=plan,
        )

    def begin_local(
        self, group: str, node: str, kind: str, steps: Sequence[str], trigger: str
    ) -> int:
        """A local acquire or release, its steps being the group's resources in order."""
        source, target = (node, None) if kind == "release" else (None, node)
        return self._begin(
            group=group,
            kind=kind,
            source=source,
            target=target,
            trigger=trigger,
            steps=[(node, s) for s in steps],
            plan=None,
        )

    def step_started(self, move_id: int, idx: int) -> None:
        self._write(
            "UPDATE steps SET state = ?, started = ? WHERE move_id = ? AND idx = ?",
            (str(StepState.RUNNING), time.time(), move_id, idx),
        )

    def step_finished(self, move_id: int, idx: int, state: StepState, message: str) -> None:
        self._write(
            "UPDATE steps SET state = ?, finished = ?, message = ?,"
            " started = COALESCE(started, ?) WHERE move_id = ? AND idx = ?",
            (str(state), time.time(), message, time.time(), move_id, idx),
        )

    def finish(self, move_id: int, outcome: Outcome) -> None:
        self._write(
            "UPDATE moves SET finished = ?, status = ?, message = ? WHERE id = ?",
            (time.time(), str(outcome.status), outcome.message, move_id),
        )

    def get(self, move_id: int) -> MoveRecord:
        records = self._select("WHERE id = ?", (move_id,))
        if not records:
            raise KeyError(move_id)
        return records[0]

    def unfinished(self, kind: str | None = None) -> list[MoveRecord]:
        if kind is None:
            return self._select("WHERE finished IS NULL ORDER BY id", ())
        return self._select("WHERE finished IS NULL AND kind = ? ORDER BY id", (kind,))

    def history(self, group: str | None = None, limit: int = 100) -> list[MoveRecord]:
        """Newest first; ``gardien history [GROUP]``."""
        if group is None:
            return self._select("ORDER BY id DESC LIMIT ?", (limit,))
        return self._select("WHERE group_name = ? ORDER BY id DESC LIMIT ?", (group, limit))

    def _select(self, where: str, params: Sequence[Any]) -> list[MoveRecord]:
        with self._lock:
            columns = "id, group_name, kind, source, target, trigger, started, finished, status"
            query = f"SELECT {columns}, message, plan FROM moves {where}"  # noqa: S608 - fixed text
            rows = self._db.execute(query, params).fetchall()
            steps: dict[int, list[StepRecord]] = {}
            if rows:
                marks = ",".join("?" * len(rows))
                columns = "move_id, idx, node, description, state, started, finished, message"
                query = f"SELECT {columns} FROM steps WHERE move_id IN ({marks})"  # noqa: S608
                for row in self._db.execute(f"{query} ORDER BY move_id, idx", [r[0] for r in rows]):
                    steps.setdefault(row[0], []).append(
                        StepRecord(
                            row[1], row[2], row[3], StepState(row[4]), row[5], row[6], row[7]
                        )
                    )
        return [
            MoveRecord(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                Plan.from_json(json.loads(r[10])) if r[10] else None,
                tuple(steps.get(r[0], ())),
            )
            for r in rows
        ]
