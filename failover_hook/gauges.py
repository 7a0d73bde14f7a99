"""The hook's state gauges (held, frozen, settling, in progress, last move), read at each scrape."""

from __future__ import annotations

from failover_hook.cluster_status import ClusterStatus
from failover_hook.metrics import GroupGauges


class StateGauges:
    """Owns the reading of the state gauges: fresh from the agent, the freeze store, the group
    locks and the journal at every scrape, no state carried between scrapes.  Each source is
    read once per scrape, for every group at once: the groups held, one snapshot of the freeze
    state, and one query of the journal whose cost does not grow with its history."""

    def __init__(self, cluster: ClusterStatus) -> None:
        self._cluster = cluster

    def read(self) -> tuple[bool, dict[str, GroupGauges]]:
        """Whether the cluster is frozen, and each group's gauges."""
        cluster = self._cluster
        names = list(cluster.config.groups)
        held = cluster.agent.held()
        freeze = cluster.freeze.state()
        journaled = cluster.journaled(names)
        gauges = {
            name: GroupGauges(
                held=name in held,
                frozen=freeze.frozen(name),
                settling=cluster.settling(journaled[name]),
                move_in_progress=cluster.agent.locks.held(name),
                last_move=journaled[name].last_move,
            )
            for name in names
        }
        return freeze.frozen(None), gauges
