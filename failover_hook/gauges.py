"""The hook's state gauges (held, frozen, settling, in progress, last move), read at each scrape."""

from __future__ import annotations

from failover_hook.cluster_status import ClusterStatus
from failover_hook.metrics import GroupGauges


class StateGauges:
    """Owns the reading of the state gauges: fresh from the agent, the freeze store, the group
    locks and the journal at every scrape, no state carried between scrapes."""

    def __init__(self, cluster: ClusterStatus) -> None:
        self._cluster = cluster

    def read(self) -> tuple[bool, dict[str, GroupGauges]]:
        """Whether the cluster is frozen, and each group's gauges."""
        cluster = self._cluster
        held = cluster.agent.held()
        gauges = {}
        for name in cluster.config.groups:
            journaled = cluster.journaled(name)
            gauges[name] = GroupGauges(
                held=name in held,
                frozen=cluster.freeze.group(name),
                settling=cluster.settling(journaled),
                move_in_progress=cluster.agent.locks.held(name),
                last_move=journaled.last_move,
            )
        return cluster.freeze.cluster, gauges
