"""A move is a Plan: data (ordered steps, each with its node, action and explicit undo).

The plan is printed by ``--dry-run``, persisted in the journal before it runs and after every step,
and resumed or rolled back from there after a crash.  A typical move::

    move php4 node1 -> node2
      1. release php4 on node1 (remote); undo: acquire php4 on node1
      2. fence node1 if step 1 fails or node1 is unreachable; undo: none
      3. acquire php4 on node2 (local: volume /srv/php4, vip ..., service apache-php4); undo: ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from failover_hook.trigger import TriggerKind


class Action(StrEnum):
    RELEASE = "release"
    FENCE = "fence"
    ACQUIRE = "acquire"


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNDONE = "undone"


UNDO = {Action.RELEASE: Action.ACQUIRE, Action.ACQUIRE: Action.RELEASE}
"""The undo of each action on the same node; fencing has none (a fenced node stays down)."""


@dataclass(frozen=True)
class Step:
    node: str
    action: Action
    group: str
    local: bool
    """Runs on this node's own agent (else through the peer's agent API)."""
    detail: str = ""
    """What the action does there, for people (``mount ..., vip ..., start apache-php4``)."""
    only_if_failed: int | None = None
    """A fence step runs only if the step at this index did not end done (it failed, or its node
    was unreachable); None: it always runs.  The mover reads it (``Mover._fence``)."""

    @property
    def undo(self) -> Action | None:
        return UNDO.get(self.action)

    def describe(self) -> str:
        where = "local" if self.local else "remote"
        if self.action is Action.FENCE:
            text = f"fence {self.node}"
            if self.only_if_failed is not None:
                text += f" if step {self.only_if_failed + 1} fails or {self.node} is unreachable"
        else:
            text = f"{self.action} {self.group} on {self.node} ({where}"
            text += f": {self.detail})" if self.detail else ")"
        undo = f"{self.undo} {self.group} on {self.node}" if self.undo else "none"
        return f"{text}; undo: {undo}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = str(self.action)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(**{**data, "action": Action(data["action"])})


@dataclass(frozen=True)
class Plan:
    group: str
    source: str | None
    target: str
    steps: tuple[Step, ...]
    trigger: TriggerKind = TriggerKind.MANUAL
    """A plan is a move's: asked by hand or decided on an alert."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    operator: str | None = None
    """Who asked for a move by hand, when the request named one (its trigger's ``by``)."""

    def describe(self) -> str:
        """The dry-run text: a header, then one line per step."""
        header = f"move {self.group} {self.source or '(nowhere)'} -> {self.target}"
        lines = [header] + [f"  {i + 1}. {step.describe()}" for i, step in enumerate(self.steps)]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "source": self.source,
            "target": self.target,
            "trigger": str(self.trigger),
            "notes": list(self.notes),
            "operator": self.operator,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            group=data["group"],
            source=data.get("source"),
            target=data["target"],
            trigger=TriggerKind(data.get("trigger", "manual")),
            notes=tuple(data.get("notes") or ()),
            operator=data.get("operator"),
            steps=tuple(Step.from_json(s) for s in data["steps"]),
        )
