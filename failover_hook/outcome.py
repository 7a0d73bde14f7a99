"""The readable outcome every decision and every action ends in.

Logged by the daemon, returned by the API, printed by the CLI and asserted in tests, in the manner
of Patroni's HA loop ("moved php4 node1 -> node2 in 2.4 s", "skipped: php4 frozen").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    DONE = "done"  # the action ran and succeeded (moved, released, acquired...)
    NOTHING_TO_DO = "nothing_to_do"  # already in the wanted state
    SKIPPED = "skipped"  # a gate decided not to act (frozen, outage, cooldown...)
    NOT_MINE = "not_mine"  # another node's hook acts on this
    IN_PROGRESS = "in_progress"  # a move of this group is already running
    REFUSED = "refused"  # acting would be unsafe (no fence agent, target unhealthy...)
    FAILED = "failed"  # the action ran and failed (rolled back where possible)
    IGNORED = "ignored"  # not an alert gardien acts on (resolved, unknown alertname)


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str
    group: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (Status.DONE, Status.NOTHING_TO_DO)

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "message": self.message,
            "group": self.group,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            Status(data["status"]),
            str(data["message"]),
            data.get("group"),
            dict(data.get("details") or {}),
        )
