"""Maintenance mode: frozen groups and the frozen cluster, kept in the state folder.

A frozen group is never moved automatically.  The state survives a restart of the hook; the
operator freezes on every node at once (``gardien freeze`` calls every hook).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class FreezeStore:
    """Owns the maintenance state of this node: the frozen groups and the cluster freeze."""

    def __init__(self, state_dir: Path) -> None:
        self._file = state_dir / "frozen.json"
        self._lock = threading.Lock()
        self._cluster = False
        self._groups: set[str] = set()
        if self._file.is_file():
            data = json.loads(self._file.read_text(encoding="utf-8"))
            self._cluster = bool(data.get("cluster", False))
            self._groups = {str(g) for g in data.get("groups", [])}

    @property
    def cluster(self) -> bool:
        return self._cluster

    def group(self, name: str) -> bool:
        return name in self._groups

    def set(self, group: str | None, frozen: bool) -> bool:
        """Freeze or unfreeze a group (``None``: the cluster); False when nothing changed."""
        with self._lock:
            before = (self._cluster, set(self._groups))
            if group is None:
                self._cluster = frozen
            elif frozen:
                self._groups.add(group)
            else:
                self._groups.discard(group)
            if before == (self._cluster, self._groups):
                return False
            self._save()
            return True

    def _save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"cluster": self._cluster, "groups": sorted(self._groups)}), encoding="utf-8"
        )
        os.replace(tmp, self._file)
