"""The hook behind ``gardien hook``'s API (the HTTP layer is app.py): its parts, put together.

Each part has one job: :class:`~failover_hook.cluster_status.ClusterStatus` (this node's status
document and the cluster view a decision reads), :class:`~failover_hook.dispatch.Dispatcher`
(decisions, moves, the API's local actions, recovery), :class:`~failover_hook.receiver.Receiver`
(deliveries deduplicated, decided in the background, the decisions log) and
:class:`~failover_hook.gauges.StateGauges` (the state gauges of ``/metrics``).  Every action on a
group claims it in the node's :class:`~failover_hook.locks.GroupLocks`, shared by all of them.

A reload (SIGHUP, ``POST /-/reload``) builds the parts that read the config (agent, mover, peers,
network check, cluster status, dispatch) anew and swaps them in as one reference; what outlives a
config stays: the group locks, the journal, the freeze store, the metrics and the receiver (its
delivery keys and decisions log), which calls the dispatch in force at each decision.  The swap
happens while the reload holds the claim of every group, old and new, so no action runs across
it, and what this node holds is read while nothing can acquire or release; a reload that finds a
group claimed is refused ("a move of php4 is in progress"), never waited for.  An action that
took the parts just before the swap finishes with the config it started with, under the same
group locks; its parts are freed when it ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from failover_hook.agent import LocalAgent
from failover_hook.client import HttpPeer, read_token
from failover_hook.cluster_status import ClusterStatus
from failover_hook.dispatch import Dispatcher
from failover_hook.freeze import FreezeStore
from failover_hook.gauges import StateGauges
from failover_hook.journal import Journal
from failover_hook.locks import GroupLocks
from failover_hook.metrics import HookMetrics
from failover_hook.move import Mover
from failover_hook.network import NetworkCheck
from failover_hook.outcome import Outcome, Status
from failover_hook.receiver import Receiver
from failover_hook.webhook import Alert
from gardien.config import ClusterConfig, load_config
from gardien.errors import ConfigError, GardienError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """The parts the daemon builds from one config (:func:`failover_hook.daemon.build_hook`)."""

    agent: LocalAgent
    mover: Mover
    peers: Mapping[str, HttpPeer]
    network: NetworkCheck


BuildEngine = Callable[[ClusterConfig, GroupLocks], Engine]
"""Builds the engine of a config; the agent it builds claims groups in the locks it is given."""


@dataclass(frozen=True)
class _Parts:
    """Everything that reads the config, swapped as one by a reload."""

    config: ClusterConfig
    engine: Engine
    cluster: ClusterStatus
    dispatch: Dispatcher


class Hook:
    """Owns the parts of one node's hook and their lifetime (recovery at start, reload, shutdown).

    The API calls the parts directly: ``cluster`` for status, view and history, ``dispatch`` for
    actions, ``receiver`` for the webhook, replays and the decisions log, ``metrics``; each
    property answers with the parts of the config in force.
    """

    def __init__(
        self,
        config: ClusterConfig,
        node: str,
        state_dir: Path,
        *,
        build: BuildEngine,
        journal: Journal,
        dry_run: bool = False,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.journal = journal
        self.locks = GroupLocks()
        self.freeze = FreezeStore(state_dir, node, clock)
        self._build = build
        self._dry_run = dry_run
        self._workers = workers
        self._clock = clock
        self._monotonic = monotonic
        self._reloading = threading.Lock()
        self.metrics = HookMetrics(config.groups, lambda: StateGauges(self.cluster).read())
        self.metrics.reloaded(True, clock())
        self.metrics.set_restartable(_restartable(config))
        self._parts = self._assemble(config, build(config, self.locks))
        self.receiver = Receiver(
            self._handle,
            self.metrics,
            dry_run=dry_run,
            workers=workers,
            clock=clock,
            monotonic=monotonic,
        )

    def _handle(self, alert: Alert, execute: bool, received: float | None) -> list[Outcome]:
        """The receiver's decisions, by the dispatch in force when each one starts."""
        return self.dispatch.handle(alert, execute, received)

    def _assemble(self, config: ClusterConfig, engine: Engine) -> _Parts:
        cluster = ClusterStatus(
            config,
            self.node,
            engine.agent,
            self.journal,
            engine.peers,
            engine.network,
            self.freeze,
            dry_run=self._dry_run,
            workers=self._workers,
            clock=self._clock,
        )
        dispatch = Dispatcher(
            config,
            self.node,
            agent=engine.agent,
            mover=engine.mover,
            cluster=cluster,
            freeze=self.freeze,
            metrics=self.metrics,
            dry_run=self._dry_run,
            monotonic=self._monotonic,
        )
        return _Parts(config, engine, cluster, dispatch)

    # ---- the parts in force (one reference read: a caller never mixes two configs) -----------

    @property
    def config(self) -> ClusterConfig:
        return self._parts.config

    @property
    def agent(self) -> LocalAgent:
        return self._parts.engine.agent

    @property
    def network(self) -> NetworkCheck:
        return self._parts.engine.network

    @property
    def cluster(self) -> ClusterStatus:
        return self._parts.cluster

    @property
    def dispatch(self) -> Dispatcher:
        return self._parts.dispatch

    def recover(self) -> list[Outcome]:
        """Finish or roll back what a crash left unfinished; before the API serves."""
        return self.dispatch.recover()

    def watch_network(self, stop: threading.Event, every: float) -> None:
        """Keep the network verdict in force fresh until ``stop`` (the daemon's thread); after a
        reload it refreshes the new config's check."""
        while not stop.is_set():
            try:
                self.network.refresh()
            except Exception:  # a bug must not end the watch: callers would block on pings
                log.exception("network check failed")
            stop.wait(every)

    # ---- reload ------------------------------------------------------------------------------

    def reload(self, config_file: Path | None = None) -> Outcome:
        """Read the config file again (default: the one in force) and put it in force, or refuse
        and keep the config in force; the outcome says which and why, the metrics and the log
        too.  ``details.reason``: ``invalid``, ``needs_restart``, ``drops_held`` or
        ``build_failed`` when refused, ``in_progress`` (status ``in_progress``) when a group is
        claimed."""
        file = config_file or self.config.source
        with self._reloading:
            try:
                if file is None:
                    raise ConfigError("<config>", ["the config in force was not read from a file"])
                fresh = load_config(file)
            except ConfigError as exc:
                outcome = _refused("invalid", "invalid config", exc.problems)
            else:
                outcome = self._swap(fresh)
        self.metrics.reloaded(outcome.ok, self._clock())
        if outcome.ok:
            log.info("%s", outcome.message)
        else:
            log.error("%s", outcome.message)
            for problem in outcome.details.get("problems", []):
                log.error("config reload refused, keeping the config in force: %s", problem)
        return outcome

    def _swap(self, fresh: ClusterConfig) -> Outcome:
        old = self.config
        restart = _needs_restart(old, fresh, self.node)
        if restart:
            return _refused("needs_restart", "needs a restart of the hook", restart)
        with contextlib.ExitStack() as claims:
            for group in sorted(set(old.groups) | set(fresh.groups)):
                if not claims.enter_context(self.locks.claim(group)):
                    return Outcome(
                        Status.IN_PROGRESS,
                        f"config reload refused (a move of {group} is in progress: reload "
                        "again once it ends); the config in force stays",
                        group,
                        {"reason": "in_progress"},
                    )
            dropped = sorted(self.agent.held() - set(fresh.groups))
            if dropped:
                return _refused(
                    "drops_held",
                    f"the new config drops {', '.join(dropped)}, held by {self.node}: "
                    "release or move it first",
                    group=dropped[0],
                )
            try:
                parts = self._assemble(fresh, self._build(fresh, self.locks))
            except (GardienError, OSError, ValueError) as exc:
                return _refused("build_failed", f"cannot build the hook's parts: {exc}")
            self._parts = parts
            self.metrics.set_groups(fresh.groups)
            self.metrics.set_restartable(_restartable(fresh))
        added = sorted(set(fresh.groups) - set(old.groups))
        removed = sorted(set(old.groups) - set(fresh.groups))
        changes = [f"+{g}" for g in added] + [f"-{g}" for g in removed]
        return Outcome(
            Status.DONE,
            f"config reloaded from {fresh.source}: {len(fresh.groups)} groups"
            + (f" ({' '.join(changes)})" if changes else ""),
            details={"added": added, "removed": removed},
        )

    def shutdown(self) -> None:
        self.receiver.shutdown()  # the decisions running end first: they use the other parts
        self.cluster.shutdown()
        self.dispatch.shutdown()


def _restartable(config: ClusterConfig) -> list[tuple[str, str]]:
    """The (group, service) pairs of ``config`` that are restarted in place."""
    return [
        (name, s.name)
        for name, group in config.groups.items()
        for s in group.services
        if s.restart.attempts > 0
    ]


def _refused(
    reason: str, why: str, problems: list[str] | None = None, group: str | None = None
) -> Outcome:
    details: dict[str, object] = {"reason": reason}
    if problems:
        details["problems"] = problems
    return Outcome(
        Status.REFUSED,
        f"config reload refused ({why}); the config in force stays",
        group,
        details,
    )


def _needs_restart(old: ClusterConfig, fresh: ClusterConfig, node: str) -> list[str]:
    """What a running hook cannot take from a new config: its node gone, its port, the token
    its server checks and its peers send, the scheme it serves (peers would call it with the
    other one).  Applying the rest would leave the hook and its peers disagreeing."""
    problems = []
    if node not in fresh.nodes:
        problems.append(f"this hook's node {node} is not in the new config")
    if fresh.hook.port != old.hook.port:
        problems.append(f"hook.port {old.hook.port} -> {fresh.hook.port}")
    if (fresh.hook.tls_ca_file is None) != (old.hook.tls_ca_file is None):
        problems.append("hook.tls_ca_file set or unset (the scheme the hooks are called with)")
    try:
        token_changed = read_token(fresh) != read_token(old)
    except OSError as exc:
        problems.append(f"hook.token_file cannot be read: {exc}")
    else:
        if token_changed:
            problems.append(
                "hook.token_file: another token (the server checks the one read at start)"
            )
    return problems
