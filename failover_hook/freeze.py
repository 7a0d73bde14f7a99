"""Maintenance mode: frozen groups and the frozen cluster, cluster state kept on every node.

A frozen group is never moved automatically.  Each freeze or unfreeze is a versioned
:class:`FreezeRecord`; every node keeps the newest record it knows of each group and of the
cluster in its state folder, so the state survives a restart of the hook.  Records are merged,
never overwritten: when two nodes disagree the newest decision wins (:meth:`FreezeRecord.order`).

Why a counter and not the clock alone: the hook that records a decision first learns the
versions of every peer that answers (``ClusterStatus.set_frozen``) and takes the next one, so
an operator's latest decision wins over everything reachable whatever the nodes' clocks say.
Only two decisions taken on both sides of a partition can carry the same version; the time and
the node that recorded them break that tie.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

FREEZE_KINDS = ("freeze", "unfreeze")
"""The journal's kinds of an operator's decision (``Journal.record_freeze``, with its trigger and
outcome): no change of the group, so no settle, cooldown or move counts it."""
CLUSTER_ENTRY = "*"
"""The journal's ``group`` of a decision about the whole cluster (no group is named so)."""


class FreezeRecord(BaseModel):
    """One decision: frozen or not, its version, when and on which node it was recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    frozen: bool
    version: int = Field(ge=0)
    at: float = 0.0
    """Unix time on the node that recorded the decision (a tie-break only)."""
    by: str = ""
    """The node whose hook recorded the decision."""

    def order(self) -> tuple[int, float, str]:
        """Newer decisions sort after older ones."""
        return self.version, self.at, self.by


class FreezeState(BaseModel):
    """Every decision a node knows: the cluster's and each group's (absent: never frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cluster: FreezeRecord | None = None
    groups: dict[str, FreezeRecord] = {}

    def get(self, group: str | None) -> FreezeRecord | None:
        return self.cluster if group is None else self.groups.get(group)

    def frozen(self, group: str | None) -> bool:
        """Whether ``group`` (None: the cluster) is frozen."""
        record = self.get(group)
        return bool(record and record.frozen)


def newest(a: FreezeRecord | None, b: FreezeRecord | None) -> FreezeRecord | None:
    if a is None or b is None:
        return a or b
    return b if b.order() > a.order() else a


def merged(states: list[FreezeState]) -> FreezeState:
    """The newest record of each group and of the cluster among ``states``."""
    cluster: FreezeRecord | None = None
    groups: dict[str, FreezeRecord] = {}
    for state in states:
        cluster = newest(cluster, state.cluster)
        for name, record in state.groups.items():
            found = newest(groups.get(name), record)
            if found is not None:
                groups[name] = found
    return FreezeState(cluster=cluster, groups=groups)


class FreezeStore:
    """Owns this node's copy of the maintenance state, kept in ``frozen.json``."""

    def __init__(
        self, state_dir: Path, node: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self._file = state_dir / "frozen.json"
        self._node = node
        self._clock = clock
        self._lock = threading.Lock()
        self._state = FreezeState()
        if self._file.is_file():
            self._state = _load(json.loads(self._file.read_text(encoding="utf-8")))

    @property
    def cluster(self) -> bool:
        return self._state.frozen(None)

    def group(self, name: str) -> bool:
        return self._state.frozen(name)

    def state(self) -> FreezeState:
        return self._state

    def set(self, group: str | None, frozen: bool) -> FreezeRecord | None:
        """Record a decision on this node (``group`` None: the cluster), versioned after every
        record this node knows; None when the newest one already says so."""
        with self._lock:
            current = self._state.get(group)
            if current is not None and current.frozen == frozen:
                return None
            if current is None and not frozen:
                return None
            record = FreezeRecord(
                frozen=frozen,
                version=(current.version if current else 0) + 1,
                at=self._clock(),
                by=self._node,
            )
            if group is None:
                self._state = self._state.model_copy(update={"cluster": record})
            else:
                groups = {**self._state.groups, group: record}
                self._state = self._state.model_copy(update={"groups": groups})
            self._save()
            return record

    def merge(self, other: FreezeState) -> bool:
        """Adopt every record of ``other`` newer than ours; True when one was."""
        with self._lock:
            result = merged([self._state, other])
            if result == self._state:
                return False
            self._state = result
            self._save()
            return True

    def _save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(self._state.model_dump_json(), encoding="utf-8")
        os.replace(tmp, self._file)


def legacy_state(cluster: bool, groups: Iterable[str]) -> FreezeState:
    """The freezes of an older gardien, without versions (a ``frozen.json`` of booleans, or the
    status of a hook not yet upgraded): version 1, older than any decision recorded since."""
    legacy = FreezeRecord(frozen=True, version=1)
    return FreezeState(cluster=legacy if cluster else None, groups={g: legacy for g in groups})


def _load(data: dict[str, object]) -> FreezeState:
    """The saved state, or an older gardien's (``cluster``: a bool, ``groups``: names)."""
    if isinstance(data.get("cluster"), bool) or isinstance(data.get("groups"), list):
        groups = data.get("groups")
        return legacy_state(
            bool(data.get("cluster")), [str(g) for g in groups] if isinstance(groups, list) else []
        )
    return FreezeState.model_validate(data)
