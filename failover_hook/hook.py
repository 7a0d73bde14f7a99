"""The hook behind ``gardien hook``'s API (the HTTP layer is app.py): its parts, put together.

Each part has one job: :class:`~failover_hook.cluster_status.ClusterStatus` (this node's status
document and the cluster view a decision reads), :class:`~failover_hook.dispatch.Dispatcher`
(decisions, moves, the API's local actions, recovery), :class:`~failover_hook.receiver.Receiver`
(deliveries deduplicated, decided in the background, the decisions log) and
:class:`~failover_hook.gauges.StateGauges` (the state gauges of ``/metrics``).  Every action on a
group claims it in the agent's :class:`~failover_hook.locks.GroupLocks`, shared by all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from failover_hook.agent import LocalAgent
from failover_hook.client import HttpPeer
from failover_hook.cluster_status import ClusterStatus
from failover_hook.dispatch import Dispatcher
from failover_hook.freeze import FreezeStore
from failover_hook.gauges import StateGauges
from failover_hook.journal import Journal
from failover_hook.metrics import HookMetrics
from failover_hook.move import Mover
from failover_hook.network import NetworkCheck
from failover_hook.outcome import Outcome
from failover_hook.receiver import Receiver
from gardien.config import ClusterConfig


class Hook:
    """Owns the parts of one node's hook and their lifetime (recovery at start, shutdown).

    The API calls the parts directly: ``cluster`` for status, view and history, ``dispatch`` for
    actions, ``receiver`` for the webhook, replays and the decisions log, ``metrics``.
    """

    def __init__(
        self,
        config: ClusterConfig,
        node: str,
        state_dir: Path,
        *,
        agent: LocalAgent,
        mover: Mover,
        journal: Journal,
        peers: Mapping[str, HttpPeer],
        network: NetworkCheck,
        dry_run: bool = False,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.node = node
        self.agent = agent
        self.journal = journal
        self.network = network
        self.freeze = FreezeStore(state_dir, node, clock)
        self.cluster = ClusterStatus(
            config,
            node,
            agent,
            journal,
            peers,
            network,
            self.freeze,
            dry_run=dry_run,
            workers=workers,
            clock=clock,
        )
        self.metrics = HookMetrics(config.groups, StateGauges(self.cluster).read)
        self.dispatch = Dispatcher(
            config,
            node,
            agent=agent,
            mover=mover,
            cluster=self.cluster,
            freeze=self.freeze,
            metrics=self.metrics,
            dry_run=dry_run,
            monotonic=monotonic,
        )
        self.receiver = Receiver(
            self.dispatch.handle,
            self.metrics,
            dry_run=dry_run,
            workers=workers,
            clock=clock,
            monotonic=monotonic,
        )

    def recover(self) -> list[Outcome]:
        """Finish or roll back what a crash left unfinished; before the API serves."""
        return self.dispatch.recover()

    def shutdown(self) -> None:
        self.receiver.shutdown()  # the decisions running end first: they use the other parts
        self.cluster.shutdown()
        self.dispatch.shutdown()
