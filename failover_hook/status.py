"""What a hook reports at ``GET /api/v1/status``: the facts other hooks and the CLI decide on.

Ages are seconds measured on the reporting node, so the nodes' clocks need not agree.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator

from failover_hook.freeze import FreezeState, legacy_state
from failover_hook.network import Verdict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class GroupStatus(_Model):
    held: bool
    """This node's agent holds the group (volume mounted, VIP present, services started)."""
    frozen: bool = False
    move_in_progress: bool = False
    settling: bool = False
    last_change_age: float | None = None
    """Seconds since this node last moved, acquired or released the group."""
    moves: dict[str, float] = {}
    """Seconds since each move of the group within ``hook.window`` that this node took part in,
    by move key (``node2#7``: the node that ran it, its journal id): the moves it ran, and those
    of other nodes it released the group for.  A move appears in the journals of both ends."""
    agent: dict[str, Any] = {}
    """The agent's own report of the group's resources."""


class NodeStatus(_Model):
    node: str
    cluster: str
    network: Verdict
    network_targets: dict[str, bool] = {}
    cluster_frozen: bool = False
    freeze: FreezeState = FreezeState()
    """Every freeze decision this node knows, versioned: what ``frozen`` and ``cluster_frozen``
    are read from, and what a deciding peer merges (failover_hook/freeze.py)."""
    dry_run: bool = False
    groups: dict[str, GroupStatus]

    @model_validator(mode="after")
    def _versioned_freeze(self) -> Self:
        """A status without freeze records (a hook of an older gardien) still counts its
        freezes: as version 1, older than any decision recorded since (freeze.legacy_state)."""
        if "freeze" not in self.model_fields_set:
            frozen = [name for name, g in self.groups.items() if g.frozen]
            state = legacy_state(self.cluster_frozen, frozen)
            object.__setattr__(self, "freeze", state)
        return self
