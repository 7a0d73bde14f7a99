"""What the console's views share."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g

from failover_hook.console.cluster import ClusterReader
from failover_hook.console.sessions import Operator, Sessions
from failover_hook.hook import Hook


@dataclass(frozen=True)
class Console:
    """The hook, its sessions and the reader of the cluster."""

    hook: Hook
    sessions: Sessions
    reader: ClusterReader

    @staticmethod
    def operator() -> Operator:
        """Who sent the request being served (checked before any view runs)."""
        found: Operator = g.operator
        return found

    def known_group(self, group: str) -> None:
        """404 for a group the config in force does not have."""
        if group not in self.hook.config.groups:
            abort(404, "unknown group")
