"""The hooks' API as the lab reads it, into the engine's own types: a node's status is a
:class:`~failover_hook.status.NodeStatus`, a decision an :class:`~failover_hook.outcome.Outcome`
with its time, a journaled move's status an outcome :class:`~failover_hook.outcome.Status` and its
steps' states :class:`~failover_hook.plan.StepState`.

Every call goes from ``mon`` (the root namespace never reaches the nodes); a hook that does not
answer gives None or nothing, never an error: the lab's waits poll through hooks that are
stopped, frozen or fenced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from failover_hook.outcome import Outcome, Status
from failover_hook.plan import StepState
from failover_hook.status import NodeStatus
from gardien_lab import agents
from gardien_lab.services import secrets_dir
from gardien_lab.topology import Lab, on


def auth_header(lab: Lab) -> str:
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
        ["curl", "-fsS", "-m", "5", "-H", f"@{auth_header(lab)}", url],
        check=False,
        timeout=10,
    )
    if done.returncode != 0:
        return None
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def status(lab: Lab, node: str, group: str | None = None) -> NodeStatus | None:
    """``node``'s status of ``group`` (of every group when None), without the resource check:
    what a deciding peer reads."""
    only = f"group={group}&" if group else ""
    answer = hook_get(lab, node, f"/api/v1/status?{only}resources=0")
    try:
        return None if answer is None else NodeStatus.model_validate(answer)
    except ValidationError:
        return None


@dataclass(frozen=True)
class Decision:
    time: float
    outcome: Outcome


def decisions(lab: Lab, node: str) -> list[Decision]:
    """The hook's last decisions, oldest first."""
    answer = hook_get(lab, node, "/api/v1/decisions") or {}
    return [Decision(float(d["time"]), Outcome.from_json(d)) for d in answer.get("decisions", [])]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JournaledStep(_Model):
    description: str
    node: str | None = None
    state: StepState
    started: float | None = None
    finished: float | None = None
    message: str | None = None


class JournaledMove(_Model):
    """A move, release or acquire of the hook's journal (``GET /api/v1/history``)."""

    id: int
    group: str
    kind: str
    """``move``, ``release``, ``acquire``, ``restart``, ``freeze`` or ``unfreeze``."""
    source: str | None = None
    target: str | None = None
    started: float
    finished: float | None = None
    status: Status | None = None
    """The outcome's status once finished."""
    message: str | None = None
    steps: tuple[JournaledStep, ...] = ()


def history(lab: Lab, node: str, group: str | None = None) -> list[JournaledMove]:
    """``node``'s journal of ``group`` (of every group when None)."""
    answer = hook_get(lab, node, "/api/v1/history" + (f"?group={group}" if group else "")) or {}
    return [JournaledMove.model_validate(m) for m in answer.get("moves", [])]
