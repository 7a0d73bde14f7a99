"""What this node says about itself (``GET /api/v1/status``) and what a decision reads of all.

The status document is the facts other hooks and the CLI decide on: the groups this node holds,
freeze, a move in progress, the journal's ages and moves, the network verdict, and each group's
resources as its agent checks them.  The cluster view is every node's document as a decision reads
it, the peers' asked over their API (an unanswered peer is *unknown*, never *down*).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from failover_hook.agent import LocalAgent
from failover_hook.client import HttpPeer
from failover_hook.decide import ClusterView
from failover_hook.freeze import FreezeRecord, FreezeStore, merged
from failover_hook.journal import Journal, move_key
from failover_hook.network import NetworkCheck
from failover_hook.peers import PeerUnreachable
from failover_hook.restart import Restarter
from failover_hook.status import GroupStatus, NodeStatus, network_fields
from gardien.config import ClusterConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Journaled:
    """What this node's journal says of a group (see :meth:`ClusterStatus.journaled`)."""

    last_change_age: float | None
    """Seconds since the group last changed on this node (moved, acquired or released)."""
    moves: dict[str, float]
    """Ages of its moves within ``hook.window`` this node ran or released the group for, by
    move key (see :class:`GroupStatus`)."""
    last_move: float | None
    """Unix time of the last move this node ran."""


@dataclass(frozen=True)
class FreezeSync:
    """Which peers an exchange of freeze state reached, and why each other one was missed."""

    reached: list[str]
    missed: dict[str, str]


class ClusterStatus:
    """Owns this node's status document and the cluster view: the journal's reading of each
    group, the agent's resource checks (bounded in time) and the calls to the peers' status."""

    def __init__(  # noqa: PLR0917 - the parts of a node it reads
        self,
        config: ClusterConfig,
        node: str,
        agent: LocalAgent,
        journal: Journal,
        peers: Mapping[str, HttpPeer],
        network: NetworkCheck,
        freeze: FreezeStore,
        *,
        dry_run: bool,
        workers: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.node = node
        self.agent = agent
        self.journal = journal
        self.peers = dict(peers)
        self.network = network
        self.freeze = freeze
        self.dry_run = dry_run
        self._clock = clock
        self.restarts = Restarter(agent, journal, clock)
        """This node's restarts in place: the status reports them, the dispatch runs them."""
        self._resource_checks = ThreadPoolExecutor(
            max_workers=len(config.groups) + 1, thread_name_prefix="status"
        )
        self._peer_calls = ThreadPoolExecutor(
            max_workers=max(len(self.peers), 1) * workers, thread_name_prefix="peer"
        )

    def journaled(self, groups: Sequence[str]) -> dict[str, Journaled]:
        """Each group's ages and moves from this node's journal, read in one go: only the fields
        of the entries they need (:meth:`Journal.recent`), whatever the journal's history."""
        now = self._clock()
        window = self.config.hook.window
        journaled = {}
        for name, recent in self.journal.recent(groups, since=now - window).items():
            moves: dict[str, float] = {}
            for entry in recent.window:  # newest first: a key journaled twice keeps its oldest
                if entry.kind == "move":
                    key: str | None = move_key(self.node, entry.id)
                else:
                    key = entry.move_key
                if key is not None and now - entry.started < window:
                    moves[key] = now - entry.started
            change = recent.last_change
            age = max(now - change, 0.0) if change is not None else None
            journaled[name] = Journaled(age, moves, recent.last_move)
        return journaled

    def settling(self, journaled: Journaled) -> bool:
        age = journaled.last_change_age
        return age is not None and age < self.config.hook.settle

    def status(
        self, only: str | None = None, resources: bool = True, until_failure: bool = False
    ) -> NodeStatus:
        """This node's status document; with ``only``, just that group's (deciding on one).

        ``resources=False`` leaves out the agent's check of each group's resources (their
        probes can take their whole timeout on a hung service): a decision reads only what
        this node holds and its journal, network and freeze state, and must not wait for that.
        ``until_failure``: each group's resources checked up to the first that fails.
        """
        network = network_fields(self.network.check())
        names = [only] if only else list(self.config.groups)
        agents = self._agent_statuses(names, until_failure) if resources else {}
        held = self.agent.held()
        journaled = self.journaled(names)
        groups = {}
        for name in names:
            groups[name] = GroupStatus(
                held=name in held,
                frozen=self.freeze.group(name),
                move_in_progress=self.agent.locks.held(name),
                settling=self.settling(journaled[name]),
                last_change_age=journaled[name].last_change_age,
                moves=journaled[name].moves,
                agent=agents.get(name, {}),
                restart=self.restarts.report(name),
            )
        return NodeStatus(
            node=self.node,
            cluster=self.config.cluster,
            **network,
            cluster_frozen=self.freeze.cluster,
            freeze=self.freeze.state(),
            dry_run=self.dry_run,
            groups=groups,
        )

    def _agent_statuses(self, names: list[str], until_failure: bool) -> dict[str, dict[str, Any]]:
        """Each group's resource states, checked at once and within half the request timeout.

        A hung service's probes can take their whole timeout; the status must answer in time all
        the same, or a peer deciding on a move would take this node for unreachable and fence it.
        What is not checked in time is reported as such; ``held`` (the agent's record) is always
        there, and it is all a decision reads of this part.
        """
        budget = self.config.hook.request_timeout / 2
        checks = {
            name: self._resource_checks.submit(self.agent.status, name, until_failure)
            for name in names
        }
        done, _late = wait(checks.values(), timeout=budget)
        held = self.agent.held()
        statuses: dict[str, dict[str, Any]] = {}
        for name, check in checks.items():
            if check in done and check.exception() is None:
                statuses[name] = check.result()
            else:
                statuses[name] = {
                    "group": name,
                    "node": self.node,
                    "held": name in held,
                    "healthy": False,
                    "resources": {},
                    "unchecked": f"its resources did not answer within {budget:g} s",
                }
        return statuses

    def view(self, only: str | None = None) -> ClusterView:
        """Every node's status as a decision reads it (no resource checks): this one's own, the
        peers' over their API, asked all at once (None: no answer).

        The freeze a decision reads is the cluster's: every answer's freeze records are merged
        into this node's store (the newest decision wins, failover_hook/freeze.py), and every
        status of the view carries that newest state, so a peer's stale copy (it was down when
        the operator unfroze) neither blocks a move nor lets one through.
        """
        asked = {
            name: self._peer_calls.submit(peer.status, only, resources=False)
            for name, peer in self.peers.items()
        }
        peers: dict[str, NodeStatus | None] = {}
        for name, call in asked.items():
            try:
                peers[name] = NodeStatus.model_validate(call.result())
            except (PeerUnreachable, ValueError) as exc:
                log.warning("status of %s unknown: %s", name, exc)
                peers[name] = None
        if self.freeze.merge(merged([s.freeze for s in peers.values() if s is not None])):
            log.info("freeze state learned from a peer's status: %s", self.freeze.state())
        statuses = {self.node: self.status(only, resources=False), **peers}
        return ClusterView(self.node, {n: self._newest_freeze(s) for n, s in statuses.items()})

    def _newest_freeze(self, status: NodeStatus | None) -> NodeStatus | None:
        """``status`` with this node's (merged, newest) freeze in place of its own copy."""
        if status is None:
            return None
        groups = {
            name: g.model_copy(update={"frozen": self.freeze.group(name)})
            for name, g in status.groups.items()
        }
        update = {"cluster_frozen": self.freeze.cluster, "freeze": self.freeze.state()}
        return status.model_copy(update={**update, "groups": groups})

    def sync_freeze(self, only: list[str] | None = None) -> FreezeSync:
        """Exchange freeze state with every peer (or ``only`` these), all at once: each side
        adopts the other's newer records, so both end with the newest of each."""
        names = list(self.peers) if only is None else only
        state = self.freeze.state()
        calls = {n: self._peer_calls.submit(self.peers[n].sync_freeze, state) for n in names}
        reached: list[str] = []
        missed: dict[str, str] = {}
        for name, call in calls.items():
            try:
                self.freeze.merge(call.result())
                reached.append(name)
            except (PeerUnreachable, ValueError) as exc:
                log.warning("freeze state not exchanged with %s: %s", name, exc)
                missed[name] = str(exc)
        return FreezeSync(reached, missed)

    def set_frozen(self, group: str | None, frozen: bool) -> tuple[FreezeRecord | None, FreezeSync]:
        """An operator's decision: first learn what every peer that answers knows, record the
        decision after it (so it is newer than any of theirs), then give it to them.  The
        record is None when the newest one already said so (nothing new to give)."""
        learned = self.sync_freeze()
        record = self.freeze.set(group, frozen)
        if record is None:
            return None, learned
        given = self.sync_freeze(learned.reached)
        return record, FreezeSync(given.reached, {**learned.missed, **given.missed})

    def history(self, group: str | None = None) -> list[dict[str, Any]]:
        """This node's journal, newest first (``GET /api/v1/history``)."""
        return [record.to_json() for record in self.journal.history(group)]

    def shutdown(self) -> None:
        self._resource_checks.shutdown(wait=False, cancel_futures=True)  # probes bound themselves
        self._peer_calls.shutdown(wait=False, cancel_futures=True)  # calls bound by request_timeout
