"""The node agent and webhook receiver behind ``gardien hook``'s API (the HTTP layer is app.py).

One executor runs every decision and move, off the request thread, so the webhook answers at once.
A group is *claimed* while it is decided on and moved: a second alert, API call or migrate about a
claimed group answers "already in progress" instead of queueing a second move.  Deliveries are
idempotent on (group, fingerprint, startsAt): retries and the duplicate deliveries of an
Alertmanager cluster cause one move.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from failover_hook.agent import LocalAgent
from failover_hook.client import HttpPeer
from failover_hook.decide import ClusterView, Failure, Move, decide, failures
from failover_hook.freeze import FreezeStore
from failover_hook.journal import Journal, MoveRecord, move_key
from failover_hook.metrics import GroupGauges, HookMetrics
from failover_hook.move import Mover, PlanError
from failover_hook.network import NetworkCheck
from failover_hook.outcome import Outcome, Status
from failover_hook.peers import PeerUnreachable
from failover_hook.plan import Plan
from failover_hook.status import GroupStatus, NodeStatus
from failover_hook.trigger import API, Trigger, TriggerKind
from failover_hook.webhook import GROUP_FAILED, Alert, Payload
from gardien.config import ClusterConfig

log = logging.getLogger(__name__)

_SEEN_LIMIT = 10_000
"""Delivery keys remembered; Alertmanager re-sends an alert for hours, not for 10,000 failures."""
_DECISIONS_KEPT = 500


def _end(record: MoveRecord) -> float:
    return record.finished if record.finished is not None else record.started


def _with_time(outcome: Outcome, took: float) -> Outcome:
    """The outcome with its decision time in its details."""
    details = {**outcome.details, "decision_seconds": round(took, 4)}
    return dataclasses.replace(outcome, details=details)


def _action(outcome: Outcome) -> str:
    """The ``action`` label of ``gardien_hook_decisions_total`` for an outcome."""
    if outcome.details.get("duplicate"):
        return "duplicate"
    if outcome.details.get("dry_run"):
        return "dry_run"
    return {Status.DONE: "moved"}.get(outcome.status, str(outcome.status))


class Hook:
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
        self.mover = mover
        self.journal = journal
        self.peers = dict(peers)
        self.network = network
        self.dry_run = dry_run
        self.freeze = FreezeStore(state_dir)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.locks = agent.locks
        self._seen: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        self._decisions: deque[dict[str, Any]] = deque(maxlen=_DECISIONS_KEPT)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decide")
        self._resource_checks = ThreadPoolExecutor(
            max_workers=len(config.groups) + 1, thread_name_prefix="status"
        )
        self._group_decisions = ThreadPoolExecutor(
            max_workers=len(config.groups), thread_name_prefix="group"
        )
        self._peer_calls = ThreadPoolExecutor(
            max_workers=max(len(self.peers), 1) * workers, thread_name_prefix="peer"
        )
        self.metrics = HookMetrics(config.groups, self._gauges)

    # ---- state ---------------------------------------------------------------------------

    def _in_progress(self, group: str) -> Outcome:
        return Outcome(Status.IN_PROGRESS, f"already in progress: {group}", group)

    def _journaled(self, group: str) -> tuple[float | None, dict[str, float], float | None]:
        """From the journal: seconds since the group last changed on this node (moved, acquired
        or released), its moves within ``hook.window`` this node ran or released the group for
        (by move key, see :class:`GroupStatus`), the time of the last move it ran."""
        records = self.journal.history(group)
        now = self._clock()
        changes = [_end(r) for r in records]
        ran = [r.started for r in records if r.kind == "move"]
        moves: dict[str, float] = {}
        for record in records:
            if record.kind == "move":
                key: str | None = move_key(self.node, record.id)
            else:
                key = record.trigger.move_key if record.kind == "release" else None
            if key is not None and now - record.started < self.config.hook.window:
                moves[key] = now - record.started
        return (max(now - max(changes), 0.0) if changes else None, moves, max(ran, default=None))

    def status(self, only: str | None = None, resources: bool = True) -> NodeStatus:
        """This node's status document; with ``only``, just that group's (deciding on one).

        ``resources=False`` leaves out the agent's check of each group's resources (their
        probes can take their whole timeout on a hung service): a decision reads only what
        this node holds and its journal, network and freeze state, and must not wait for that.
        """
        verdict, targets = self.network.check()
        names = [only] if only else list(self.config.groups)
        agents = self._agent_statuses(names) if resources else {}
        held = self.agent.held()
        groups = {}
        for name in names:
            age, moves, _last = self._journaled(name)
            claimed = self.locks.held(name)
            groups[name] = GroupStatus(
                held=name in held,
                frozen=self.freeze.group(name),
                move_in_progress=claimed,
                settling=age is not None and age < self.config.hook.settle,
                last_change_age=age,
                moves=moves,
                agent=agents.get(name, {}),
            )
        return NodeStatus(
            node=self.node,
            cluster=self.config.cluster,
            network=verdict,
            network_targets=targets,
            cluster_frozen=self.freeze.cluster,
            dry_run=self.dry_run,
            groups=groups,
        )

    def _agent_statuses(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Each group's resource states, checked at once and within half the request timeout.

        A hung service's probes can take their whole timeout; the status must answer in time all
        the same, or a peer deciding on a move would take this node for unreachable and fence it.
        What is not checked in time is reported as such; ``held`` (the agent's record) is always
        there, and it is all a decision reads of this part.
        """
        budget = self.config.hook.request_timeout / 2
        checks = {name: self._resource_checks.submit(self.agent.status, name) for name in names}
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
        peers' over their API, asked all at once (None: no answer)."""
        asked = {
            name: self._peer_calls.submit(peer.status, only, resources=False)
            for name, peer in self.peers.items()
        }
        statuses: dict[str, NodeStatus | None] = {self.node: self.status(only, resources=False)}
        for name, call in asked.items():
            try:
                statuses[name] = NodeStatus.model_validate(call.result())
            except (PeerUnreachable, ValueError) as exc:
                log.warning("status of %s unknown: %s", name, exc)
                statuses[name] = None
        return ClusterView(self.node, statuses)

    def _gauges(self) -> tuple[bool, dict[str, GroupGauges]]:
        gauges = {}
        held = self.agent.held()
        for name in self.config.groups:
            age, _ages, last_move = self._journaled(name)
            claimed = self.locks.held(name)
            gauges[name] = GroupGauges(
                held=name in held,
                frozen=self.freeze.group(name),
                settling=age is not None and age < self.config.hook.settle,
                move_in_progress=claimed,
                last_move=last_move,
            )
        return self.freeze.cluster, gauges

    def decisions(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._decisions)

    def _record(self, outcome: Outcome, alert: Alert | None = None) -> Outcome:
        level = logging.DEBUG if outcome.status == Status.IGNORED else logging.INFO
        log.log(level, "%s", outcome.message)
        self.metrics.decisions.labels(_action(outcome)).inc()
        entry = {"time": self._clock(), **outcome.to_json()}
        if alert is not None:
            entry["alert"] = {
                "labels": alert.labels,
                "fingerprint": alert.fingerprint,
                "startsAt": alert.starts_at.isoformat(),
            }
        with self._lock:
            self._decisions.append(entry)
        return outcome

    # ---- agent API -------------------------------------------------------------------------

    def _local(self, group: str, verb: str, action: Callable[[str], Outcome]) -> Outcome:
        with self.locks.claim(group) as mine:
            if not mine:
                return self._in_progress(group)
            if self.dry_run:
                return Outcome(
                    Status.NOTHING_TO_DO, f"dry run: would {verb} {group}", group, {"dry_run": True}
                )
            outcome = action(group)
            log.info("%s %s: %s", verb, group, outcome.message)
            return outcome

    def release(self, group: str, move: str | None = None) -> Outcome:
        """Release ``group`` here; ``move``: the key of another node's move it is a step of."""
        trigger = Trigger.for_peer_move(move) if move else API
        return self._local(group, "release", lambda g: self.agent.release(g, trigger=trigger))

    def acquire(self, group: str) -> Outcome:
        return self._local(group, "acquire", self.agent.acquire)

    def set_frozen(self, group: str | None, frozen: bool) -> Outcome:
        what = group or "cluster"
        verb = "frozen" if frozen else "unfrozen"
        changed = self.freeze.set(group, frozen)
        status = Status.DONE if changed else Status.NOTHING_TO_DO
        message = f"{what} {verb} on {self.node}" if changed else f"{what} already {verb}"
        log.info("%s", message)
        return Outcome(status, message, group)

    def history(self, group: str | None = None) -> list[dict[str, Any]]:
        return [record.to_json() for record in self.journal.history(group)]

    # ---- moves -----------------------------------------------------------------------------

    def _plan(self, move: Move, trigger: TriggerKind) -> Plan | Outcome:
        try:
            return self.mover.plan(move.group, move.source, move.target, trigger=trigger)
        except PlanError as exc:
            return Outcome(Status.REFUSED, f"refused: {exc}", move.group)

    def _execute(self, plan: Plan, move: Move, force: bool = False) -> Outcome:
        started = self._monotonic()
        outcome = self.mover.execute(plan, force=force, source_silent=move.source_silent)
        self.metrics.move_duration.labels(plan.group).observe(self._monotonic() - started)
        self.metrics.moves.labels(plan.group).inc()
        if not outcome.ok:
            self.metrics.moves_failed.labels(plan.group).inc()
        if outcome.status is Status.REFUSED:
            # the mover says why (its journal keeps the status apart); a decision of the hook
            # also says what it decided, as every other refusal here does
            return dataclasses.replace(outcome, message=f"refused: {outcome.message}")
        return outcome

    def migrate(
        self, group: str, target: str, dry_run: bool = False, force: bool = False
    ) -> Outcome:
        """A move by hand, run by the target's hook: gates of safety apply, anti-flap does not."""
        if target != self.node:
            return Outcome(
                Status.REFUSED,
                f"refused: migrate runs on the target's hook ({target}), not {self.node}",
                group,
            )
        with self.locks.claim(group) as mine:
            if not mine:
                return self._in_progress(group)
            return self._migrate(group, target, dry_run, force)

    def _migrate(self, group: str, target: str, dry_run: bool, force: bool) -> Outcome:
        view = self.view(group)
        holders = view.holders(group)
        refusal = None
        if not force and (view.cluster_frozen() or view.frozen(group)):
            refusal = f"refused: {group} frozen (use --force)"
        elif not force and len(holders) > 1:
            refusal = f"refused: {group} held by {' and '.join(holders)} (split brain)"
        if refusal:
            return Outcome(Status.REFUSED, refusal, group)
        if holders == [target]:
            return Outcome(Status.NOTHING_TO_DO, f"{group} already active on {target}", group)
        # a node that does not answer may still run the group: the mover asks it to release and
        # fences it when it cannot be reached
        unknown = [
            n for n in self.config.groups[group].nodes if n != target and view.status(n) is None
        ]
        source = next((n for n in holders if n != target), unknown[0] if unknown else None)
        move = Move(group, source, target, source_silent=source is not None and source in unknown)
        plan = self._plan(move, TriggerKind.MANUAL)
        if isinstance(plan, Outcome):
            return plan
        if dry_run or self.dry_run:
            return Outcome(
                Status.NOTHING_TO_DO,
                f"dry run: would move {move.describe()}",
                group,
                {"dry_run": True, "plan": plan.describe()},
            )
        return self._execute(plan, move, force)

    # ---- alerts ----------------------------------------------------------------------------

    def _decision_time(self, received: float) -> float:
        """Seconds since the alert arrived; observed in the decision histogram."""
        took = self._monotonic() - received
        self.metrics.decision_duration.observe(took)
        return took

    def _decide_failure(self, failure: Failure, execute: bool, received: float) -> Outcome:
        """Decide; only the target claims the group, then decides again on a fresh view.

        Hooks that do not act never claim: a claim there would answer "in progress" to the
        target's request to release the group.  The outcome carries the decision's time (alert
        arrival to outcome, or to the move's start) as ``details.decision_seconds``.
        """
        result = decide(failure, self.config, self.view(failure.group))
        if isinstance(result, Outcome):
            return _with_time(result, self._decision_time(received))
        if not execute:
            dry_run = Outcome(
                Status.DONE,
                f"dry run: would move {result.describe()}",
                result.group,
                {"dry_run": True, "source": result.source, "target": result.target},
            )
            return _with_time(dry_run, self._decision_time(received))
        with self.locks.claim(failure.group) as mine:
            decided = self._decide_claimed(failure) if mine else self._in_progress(failure.group)
            took = self._decision_time(received)
            if isinstance(decided, Outcome):
                return _with_time(decided, took)
            plan, move = decided
            return _with_time(self._execute(plan, move), took)

    def _decide_claimed(self, failure: Failure) -> Outcome | tuple[Plan, Move]:
        """With the group claimed: the decision again on a fresh view, then the plan."""
        result = decide(failure, self.config, self.view(failure.group))
        if isinstance(result, Outcome):
            return result
        plan = self._plan(result, TriggerKind.ALERT)
        return plan if isinstance(plan, Outcome) else (plan, result)

    def handle(self, alert: Alert, execute: bool, received: float | None = None) -> list[Outcome]:
        """Every decision one alert leads to (several groups for a node alert); ``received``:
        when the alert arrived (monotonic clock), the start of its decision time."""
        if received is None:
            received = self._monotonic()
        if not alert.is_failover:
            state = "resolved" if not alert.firing else "not a failover alert"
            return [
                Outcome(
                    Status.IGNORED,
                    f"ignored: {alert.shown_name} {state}",
                    group if (group := alert.labels.get("group")) in self.config.groups else None,
                )
            ]
        if alert.alertname == GROUP_FAILED:
            found = [Failure(alert.labels["group"], alert.labels["node"], alert.alertname)]
        else:
            found = failures(alert, self.config, self.view())
        if not found:
            return [
                Outcome(
                    Status.NOTHING_TO_DO,
                    f"nothing to do: no group active on {alert.labels['node']}",
                )
            ]
        if len(found) == 1:
            return [self._decide_failure(found[0], execute, received)]
        # a node alert: its groups move at once, each on its own (one slow group, a Tomcat
        # starting, must not hold the others); a fence of the node is shared (fencing.Fencer)
        decided = [
            self._group_decisions.submit(self._decide_failure, f, execute, received) for f in found
        ]
        return [d.result() for d in decided]

    def decide_now(self, payload: Payload, execute: bool = False) -> list[Outcome]:
        """Synchronous decision of a whole payload (``gardien replay``); nothing is deduplicated."""
        return [
            self._record(o, a)
            for a in payload.alerts
            for o in self.handle(a, execute and not self.dry_run)
        ]

    def receive(self, payload: Payload) -> list[Outcome]:
        """Accept a notification: answers at once, decisions and moves run in the executor."""
        answers = []
        received = self._monotonic()
        for alert in payload.alerts:
            if not alert.is_failover:
                answers.append(self._record(self.handle(alert, execute=False)[0], alert))
                continue
            with self._lock:
                duplicate = alert.key in self._seen
                if not duplicate:
                    self._seen[alert.key] = False
                    while len(self._seen) > _SEEN_LIMIT:
                        self._seen.popitem(last=False)
            if duplicate:
                answers.append(
                    self._record(
                        Outcome(
                            Status.IGNORED,
                            f"duplicate: {alert.alertname} {alert.fingerprint} already handled",
                            alert.labels.get("group"),
                            {"duplicate": True},
                        ),
                        alert,
                    )
                )
                continue
            future = self._executor.submit(self.handle, alert, not self.dry_run, received)
            future.add_done_callback(lambda f, a=alert: self._handled(a, f))  # type: ignore[misc]
            answers.append(
                Outcome(
                    Status.IN_PROGRESS,
                    f"accepted: {alert.alertname} {alert.fingerprint}",
                    alert.labels.get("group"),
                )
            )
        return answers

    def _handled(self, alert: Alert, future: Future[list[Outcome]]) -> None:
        try:
            outcomes = future.result()
        except Exception as exc:  # a bug must not lose the alert: it is decided again on retry
            log.exception("deciding on %s failed", alert.alertname)
            outcomes = [
                Outcome(
                    Status.FAILED,
                    f"failed: {type(exc).__name__}: {exc}",
                    alert.labels.get("group"),
                    {"error": True},
                )
            ]
        acted = any(
            o.status in (Status.DONE, Status.FAILED) and not o.details.get("error")
            for o in outcomes
        )
        with self._lock:
            if not acted:
                # a gate said no: a later delivery of the same alert is decided again
                self._seen.pop(alert.key, None)
        for outcome in outcomes:
            self._record(outcome, alert)

    def recover(self) -> list[Outcome]:
        outcomes = self.mover.recover()
        for outcome in outcomes:
            log.info("recovery: %s", outcome.message)
        if not outcomes:
            log.info("recovery: no unfinished move in the journal")
        return outcomes

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._resource_checks.shutdown(wait=False, cancel_futures=True)  # probes bound themselves
        self._group_decisions.shutdown(wait=False, cancel_futures=True)
        self._peer_calls.shutdown(wait=False, cancel_futures=True)  # calls bound by request_timeout
