"""The journal: every move, local acquire/release and restart, persisted step by step in SQLite.

One file, ``<state_dir>/journal.db`` (stdlib sqlite3, WAL, so ``gardien history`` reads while the
hook writes).  A move's plan is written before its first step runs and each step's state, timings
and outcome after it ends, so a hook that restarts finds an unfinished move and can finish it or
roll it back (:func:`failover_hook.recovery.recover`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from failover_hook.freeze import CLUSTER_ENTRY, FREEZE_KINDS
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import Plan, StepState
from failover_hook.trigger import Trigger, TriggerKind, from_legacy_text

JOURNAL_FILE = "journal.db"
RESTART_KIND = "restart"
"""The kind of a restart in place's entry (failover_hook/restart.py)."""


def move_key(node: str, move_id: int) -> str:
    """A move's name across the cluster: the node whose mover ran it and its journal id."""
    return f"{node}#{move_id}"


_CHANGES = (
    f"kind NOT IN ({', '.join(map(repr, FREEZE_KINDS))})"
    f" AND (kind != '{RESTART_KIND}' OR status = '{Status.DONE}')"
)
"""The entries that changed what a group holds, those its settle counts from: not an operator's
freeze (it changes nothing held), nor a restart in place that did not work (the group moves at
once, failover_hook/restart.py); one that worked settles the group as a move does.  The partial
index ``moves_changes`` holds exactly these (SQLite uses it for a query with the same terms)."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    kind TEXT NOT NULL,            -- move | acquire | release | restart | freeze | unfreeze
    source TEXT,
    target TEXT,
    trigger TEXT NOT NULL,         -- for people: Trigger.text
    started REAL NOT NULL,
    finished REAL,
    status TEXT,                   -- an Outcome status, NULL while unfinished
    message TEXT,
    plan TEXT,                     -- JSON of the Plan (moves only)
    trigger_kind TEXT NOT NULL DEFAULT 'api',
    trigger_parent INTEGER,
    trigger_move_key TEXT,
    trigger_by TEXT,               -- the operator who asked, when named
    forced INTEGER NOT NULL DEFAULT 0, -- an acquire the operator forced past its guard
    services TEXT                  -- JSON list: the failed services a restart was for
);
CREATE INDEX IF NOT EXISTS moves_group ON moves (group_name, started);
CREATE INDEX IF NOT EXISTS moves_kind ON moves (group_name, kind, started);
CREATE INDEX IF NOT EXISTS moves_changes ON moves (group_name, COALESCE(finished, started))
    WHERE {_CHANGES};
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

_TRIGGER_COLUMNS = {
    "trigger_kind": "TEXT NOT NULL DEFAULT 'api'",
    "trigger_parent": "INTEGER",
    "trigger_move_key": "TEXT",
}
"""The trigger's parts, added to ``moves`` later: a journal made before gets them when opened."""
_ADDED_COLUMNS = {
    **_TRIGGER_COLUMNS,
    "forced": "INTEGER NOT NULL DEFAULT 0",
    "services": "TEXT",
    "trigger_by": "TEXT",
}
"""Every column added to ``moves`` after its first version (``forced``: nothing was forced;
``services``: none, the entry is no restart; ``trigger_by``: no operator named)."""


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
    trigger: Trigger
    started: float
    finished: float | None
    status: str | None
    message: str | None
    plan: Plan | None
    steps: tuple[StepRecord, ...] = field(default_factory=tuple)
    forced: bool = False
    """An acquire the operator forced: no other node was asked whether it holds the group."""
    services: tuple[str, ...] = ()
    """A restart's failed services (the ones it restarted, or declined to)."""

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
            "trigger": self.trigger.text,
            "trigger_detail": {
                "kind": str(self.trigger.kind),
                "parent": self.trigger.parent,
                "move_key": self.trigger.move_key,
                "by": self.trigger.by,
            },
            "started": self.started,
            "finished": self.finished,
            "status": self.status,
            "message": self.message,
            "forced": self.forced,
            "services": list(self.services),
            "notes": list(self.plan.notes) if self.plan else [],
            "steps": [
                {
                    "description": s.description,
                    "action": self._action(s.idx),
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

    def _action(self, idx: int) -> str | None:
        """The planned action of step ``idx`` (a move's: release, fence, acquire), else None."""
        if self.plan is None or idx >= len(self.plan.steps):
            return None
        return str(self.plan.steps[idx].action)


@dataclass(frozen=True)
class WindowEntry:
    """A move or a release of a group, as its anti-flap reads it (:meth:`Journal.recent`)."""

    id: int
    kind: str
    started: float
    move_key: str | None
    """The key of the other node's move a release was a step of (its trigger's)."""


@dataclass(frozen=True)
class Recent:
    """What a group's settle, anti-flap and state gauges read of the journal: a few fields of
    the entries that matter, nothing of their steps or plans (:meth:`Journal.recent`)."""

    last_change: float | None
    """When the newest change of the group ended (started, while unfinished), None if none."""
    last_move: float | None
    """Unix time the newest move of the group started."""
    window: tuple[WindowEntry, ...]
    """Its moves and releases started since the time asked, newest first."""


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
        self._add_trigger_columns()

    def _add_trigger_columns(self) -> None:
        """Migrate a journal written before the added columns: add them; the trigger's are
        filled in from each entry's trigger text (the one time that text is read)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # another process may open the same journal
            try:
                present = {row[1] for row in self._db.execute("PRAGMA table_info(moves)")}
                missing = [c for c in _ADDED_COLUMNS if c not in present]
                for column in missing:
                    self._db.execute(
                        f"ALTER TABLE moves ADD COLUMN {column} {_ADDED_COLUMNS[column]}"
                    )
                if any(c in _TRIGGER_COLUMNS for c in missing):
                    rows = self._db.execute("SELECT id, trigger FROM moves").fetchall()
                    self._db.executemany(
                        "UPDATE moves SET trigger_kind = ?, trigger_parent = ?,"
                        " trigger_move_key = ? WHERE id = ?",
                        [(*_trigger_columns(from_legacy_text(text)), id_) for id_, text in rows],
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

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
        trigger: Trigger,
        steps: Sequence[tuple[str | None, str]],
        plan: Plan | None,
        forced: bool = False,
        services: Sequence[str] = (),
        ended: Outcome | None = None,
    ) -> int:
        """``ended``: the entry is written finished, at once (recovery never sees it)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO moves (group_name, kind, source, target, trigger, started, plan,"
                    " trigger_kind, trigger_parent, trigger_move_key, trigger_by, forced,"
                    " services, finished, status, message)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        group,
                        kind,
                        source,
                        target,
                        trigger.text,
                        now,
                        json.dumps(plan.to_json()) if plan else None,
                        *_trigger_columns(trigger),
                        trigger.by,
                        int(forced),
                        json.dumps(list(services)) if services else None,
                        *((now, str(ended.status), ended.message) if ended else (None,) * 3),
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
            trigger=Trigger(plan.trigger, by=plan.operator),
            steps=steps,
            plan=plan,
        )

    def begin_local(  # noqa: PLR0917 - the API the agent calls
        self,
        group: str,
        node: str,
        kind: str,
        steps: Sequence[str],
        trigger: Trigger,
        forced: bool = False,
        services: Sequence[str] = (),
    ) -> int:
        """A local acquire, release or restart, its steps the group's resources it starts or
        stops in order; ``forced``: an acquire the operator forced past its guard;
        ``services``: a restart's failed services (failover_hook/restart.py)."""
        ends = {"release": (node, None), "restart": (node, node)}
        source, target = ends.get(kind, (None, node))
        return self._begin(
            group=group,
            kind=kind,
            source=source,
            target=target,
            trigger=trigger,
            steps=[(node, s) for s in steps],
            plan=None,
            forced=forced,
            services=services,
        )

    def record_freeze(
        self, group: str | None, frozen: bool, trigger: Trigger, done: Outcome
    ) -> int:
        """An operator's freeze or unfreeze of ``group`` (None: the cluster), written finished."""
        return self._begin(
            group=group or CLUSTER_ENTRY, kind=FREEZE_KINDS[0] if frozen else FREEZE_KINDS[1],
            source=None, target=None, trigger=trigger, steps=(), plan=None, ended=done,
        )  # fmt: skip

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
        where = "WHERE finished IS NULL" + (" AND kind = ?" if kind is not None else "")
        return self._select(f"{where} ORDER BY id", () if kind is None else (kind,))

    def history(
        self, group: str | None = None, limit: int = 100, *, freezes: bool = True
    ) -> list[MoveRecord]:
        """Newest first; ``freezes=False``: without the operator's freezes, which change
        nothing a group holds (what its settle, anti-flap and restarts read)."""
        kinds = "" if freezes else f" AND kind NOT IN ({', '.join(map(repr, FREEZE_KINDS))})"
        if group is None:
            return self._select(f"WHERE 1{kinds} ORDER BY id DESC LIMIT ?", (limit,))
        return self._select(f"WHERE group_name = ?{kinds} ORDER BY id DESC LIMIT ?", (group, limit))

    def recent(self, groups: Sequence[str], since: float) -> dict[str, Recent]:
        """Each group's :class:`Recent`, ``window`` from ``since`` on: one query for the groups'
        newest change and move and one for the window, each an index search (``moves_changes``,
        ``moves_kind``), so its cost does not grow with the journal's history."""
        if not groups:
            return {}
        marks = ", ".join("?" * len(groups))
        newest = (
            f"WITH asked(name) AS (VALUES {', '.join(['(?)'] * len(groups))}) SELECT name,"  # noqa: S608 - fixed
            f" (SELECT MAX(COALESCE(finished, started)) FROM moves"
            f" WHERE group_name = name AND {_CHANGES}),"
            " (SELECT MAX(started) FROM moves WHERE group_name = name AND kind = 'move')"
            " FROM asked"
        )
        window = (
            "SELECT group_name, id, kind, started, trigger_move_key FROM moves"  # noqa: S608 - fixed
            f" WHERE group_name IN ({marks}) AND kind IN ('move', 'release') AND started >= ?"
            " ORDER BY id DESC"
        )
        with self._lock:
            ends = self._db.execute(newest, list(groups)).fetchall()
            entries = self._db.execute(window, [*groups, since]).fetchall()
        found: dict[str, list[WindowEntry]] = {name: [] for name in groups}
        for group, *entry in entries:
            found[group].append(WindowEntry(*entry))
        return {name: Recent(change, move, tuple(found[name])) for name, change, move in ends}

    def _select(self, where: str, params: Sequence[Any]) -> list[MoveRecord]:
        with self._lock:
            columns = "id, group_name, kind, source, target, started, finished, status, message"
            triggers = "trigger_kind, trigger_parent, trigger_move_key, forced, services"
            triggers += ", trigger_by"
            query = f"SELECT {columns}, plan, {triggers} FROM moves {where}"  # noqa: S608 - fixed
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
                id=r[0],
                group=r[1],
                kind=r[2],
                source=r[3],
                target=r[4],
                trigger=Trigger(TriggerKind(r[10]), r[11], r[12], r[15]),
                started=r[5],
                finished=r[6],
                status=r[7],
                message=r[8],
                plan=Plan.from_json(json.loads(r[9])) if r[9] else None,
                steps=tuple(steps.get(r[0], ())),
                forced=bool(r[13]),
                services=tuple(json.loads(r[14])) if r[14] else (),
            )
            for r in rows
        ]


def _trigger_columns(trigger: Trigger) -> tuple[str, int | None, str | None]:
    return (str(trigger.kind), trigger.parent, trigger.move_key)
