"""What a hook reports at ``GET /api/v1/status``: the facts other hooks and the CLI decide on.

Ages are seconds measured on the reporting node, so the nodes' clocks need not agree.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from failover_hook.freeze import FreezeState, legacy_state
from failover_hook.network import NetworkReport
from gardien.node.verdict import NetworkState

Network = Literal["ok", "failed", "unknown"]
"""The ``network`` of hooks before the verdict had states: ``failed`` is ``isolated``."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ServiceRestarts(_Model):
    """A restartable service's restarts in place on this node within its window."""

    attempts: int
    used: int
    window: float


class RestartStatus(_Model):
    """The group's restarts in place on this node (failover_hook/restart.py)."""

    restarting: bool = False
    """A restart of the group runs now (of ``restarting_services``, restart ``attempt`` of
    ``attempts`` in the window)."""
    restarting_services: list[str] = []
    attempt: int = 0
    attempts: int = 0
    pending: bool = False
    """A failure of the group would be restarted here: some service has restarts left and this
    node did not decline (nor fail) the last one it was asked for."""
    services: dict[str, ServiceRestarts] = {}


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
    restart: RestartStatus = RestartStatus()
    """Its restarts in place here; a hook that predates them reports none (nothing waited for)."""


class NodeStatus(_Model):
    node: str
    cluster: str
    network: Network
    """Kept as it was for every hook that reads it: ``failed`` exactly when ``network_verdict``
    is ``isolated``, ``ok`` when it is ``ok`` or degraded.  Decisions read :attr:`verdict`."""
    network_verdict: NetworkState | None = None
    """The node's verdict (:mod:`gardien.node.verdict`); None from a hook that predates it, or
    that reports a state this version does not know (then :attr:`network` decides)."""
    network_reason: str = ""
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

    @field_validator("network_verdict", mode="before")
    @classmethod
    def _known_state(cls, value: Any) -> Any:
        """A state added by a newer hook must not make its whole status unreadable: an
        unreadable peer is taken for a silent one, and silent peers get fenced."""
        known = {s.value for s in NetworkState}
        return value if value is None or isinstance(value, NetworkState) or value in known else None

    @property
    def verdict(self) -> NetworkState:
        """The network verdict the decisions use."""
        if self.network_verdict is not None:
            return self.network_verdict
        legacy = {"ok": NetworkState.OK, "failed": NetworkState.ISOLATED}
        return legacy.get(self.network, NetworkState.UNKNOWN)


def network_fields(report: NetworkReport) -> dict[str, Any]:
    """The network keys of a :class:`NodeStatus` from this node's check."""
    state = report.verdict.state
    legacy: Network = "failed" if state.isolated else "ok"
    if state is NetworkState.UNKNOWN:
        legacy = "unknown"
    return {
        "network": legacy,
        "network_verdict": state,
        "network_reason": report.verdict.reason,
        "network_targets": report.targets,
    }
