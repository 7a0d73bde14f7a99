"""What the hook does: decisions on alerts, moves by hand, the local actions of its API.

Every path claims the group in the node's :class:`failover_hook.locks.GroupLocks` first: the
target's decision on an alert, migrate, release and acquire; a second one answers "already in
progress".  Only the hook that acts claims: a hook that is not the target does not, or it would
answer "in progress" to the target's request to release the group.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from failover_hook import confirm
from failover_hook.agent import LocalAgent
from failover_hook.cluster_status import ClusterStatus
from failover_hook.decide import (
    ClusterView,
    Failure,
    Move,
    decide,
    failures,
    frozen_reason,
    gate_frozen,
    gate_settle,
    split_brain,
)
from failover_hook.freeze import FreezeStore
from failover_hook.guard import Clearance
from failover_hook.metrics import HookMetrics
from failover_hook.move import Mover, PlanError
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import Plan
from failover_hook.recovery import recover
from failover_hook.trigger import API, Trigger, TriggerKind
from failover_hook.webhook import Alert
from gardien.alerts import GROUP_FAILED
from gardien.config import ClusterConfig

log = logging.getLogger(__name__)


def _with_time(outcome: Outcome, took: float) -> Outcome:
    """The outcome with its decision time in its details."""
    details = {**outcome.details, "decision_seconds": round(took, 4)}
    return dataclasses.replace(outcome, details=details)


def _in_progress(group: str) -> Outcome:
    return Outcome(Status.IN_PROGRESS, f"already in progress: {group}", group)


class Dispatcher:
    """Owns the hook's actions: the decision on an alert and the move it leads to (the target
    only), a move by hand, the local release/acquire/freeze of the API, recovery at start; and
    the executor that decides on a node alert's groups at once."""

    def __init__(
        self,
        config: ClusterConfig,
        node: str,
        *,
        agent: LocalAgent,
        mover: Mover,
        cluster: ClusterStatus,
        freeze: FreezeStore,
        metrics: HookMetrics,
        dry_run: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.node = node
        self.agent = agent
        self.mover = mover
        self.cluster = cluster
        self.freeze = freeze
        self.metrics = metrics
        self.dry_run = dry_run
        self.locks = agent.locks
        self._monotonic = monotonic
        self._group_decisions = ThreadPoolExecutor(
            max_workers=len(config.groups), thread_name_prefix="group"
        )

    # ---- the agent API ------------------------------------------------------------------------

    def _local(self, group: str, verb: str, action: Callable[[str], Outcome]) -> Outcome:
        with self.locks.claim(group) as mine:
            if not mine:
                return _in_progress(group)
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

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        """Acquire ``group`` here, guarded (no other node holds it); ``force``: the operator's
        override of the guard, journaled as forced; ``given_back_by``: the node of the move whose
        undo gives the group back here (:attr:`Clearance.given_back_by`)."""
        clearance = Clearance(force=force, given_back_by=given_back_by)
        return self._local(group, "acquire", lambda g: self.agent.acquire(g, API, clearance))

    def set_frozen(self, group: str | None, frozen: bool, operator: str | None = None) -> Outcome:
        """An operator's freeze or unfreeze, recorded here and on every peer that answers
        (``ClusterStatus.set_frozen``); ``details.missed`` names the nodes it did not reach.
        Journaled here with its outcome, ``operator`` (who asked, when named) as its trigger."""
        what = group or "cluster"
        verb = "frozen" if frozen else "unfrozen"
        record, sync = self.cluster.set_frozen(group, frozen)
        on = ", ".join([self.node, *sync.reached])
        if record is not None:
            status, message = Status.DONE, f"{what} {verb} on {on}"
        else:
            status, message = Status.NOTHING_TO_DO, f"{what} already {verb} (on {on})"
        if sync.missed:
            message += f"; not recorded on {', '.join(sync.missed)} (unreachable)"
        newest = self.freeze.state().get(group)
        details = {
            "version": newest.version if newest else 0,
            "recorded_on": [self.node, *sync.reached],
            "missed": sync.missed,
        }
        log.info("%s", message)
        outcome = Outcome(status, message, group, details)
        self.cluster.journal.record_freeze(
            group, frozen, Trigger(TriggerKind.MANUAL, by=operator), outcome
        )
        return outcome

    # ---- moves ------------------------------------------------------------------------------

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
        self,
        group: str,
        target: str,
        dry_run: bool = False,
        force: bool = False,
        operator: str | None = None,
    ) -> Outcome:
        """A move by hand, run by the target's hook: gates of safety apply, anti-flap does not;
        ``operator``: who asked, journaled as the move's trigger (``manual by alice``)."""
        if target != self.node:
            return Outcome(
                Status.REFUSED,
                f"refused: migrate runs on the target's hook ({target}), not {self.node}",
                group,
            )
        with self.locks.claim(group) as mine:
            if not mine:
                return _in_progress(group)
            return self._migrate(group, target, dry_run, force, operator)

    def _migrate(
        self, group: str, target: str, dry_run: bool, force: bool, operator: str | None
    ) -> Outcome:
        view = self.cluster.view(group)
        holders = view.holders(group)
        if not force:
            frozen = frozen_reason(group, view)
            if frozen is not None:
                return Outcome(Status.REFUSED, f"refused: {frozen} (use --force)", group)
            refusal = split_brain(group, view)
            if refusal is not None:
                return refusal
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
        plan = dataclasses.replace(plan, operator=operator)
        if dry_run or self.dry_run:
            return Outcome(
                Status.NOTHING_TO_DO,
                f"dry run: would move {move.describe()}",
                group,
                {"dry_run": True, "plan": plan.describe()},
            )
        return self._execute(plan, move, force)

    # ---- alerts -----------------------------------------------------------------------------

    def _decision_time(self, received: float) -> float:
        """Seconds since the alert arrived; observed in the decision histogram."""
        took = self._monotonic() - received
        self.metrics.decision_duration.observe(took)
        return took

    def _restart_here(self, failure: Failure, execute: bool) -> bool:
        """Whether this hook answers ``failure`` with a restart in place (or its refusal): the
        group failed on this node, which holds it, and some service of it may be restarted."""
        return (
            execute
            and failure.alertname == GROUP_FAILED
            and failure.node == self.node
            and self.cluster.restarts.restartable(failure.group)
            and self.agent.holds(failure.group)
        )

    def _restart(self, group: str) -> Outcome:
        """Restart ``group``'s failed services here, or decline (then the target moves it), under
        the group's claim; frozen or settling, neither (the gates of a move say why)."""
        with self.locks.claim(group) as mine:
            if not mine:
                return _in_progress(group)
            view = self.cluster.view(group)
            for gate in (gate_frozen, gate_settle):
                skipped = gate(Failure(group, self.node, GROUP_FAILED), view, self.config)
                if skipped is not None:
                    return skipped
            outcome = self.cluster.restarts.on_failure(group)
        if outcome.status in (Status.DONE, Status.FAILED):
            result = "done" if outcome.status is Status.DONE else "failed"
            for service in outcome.details["services"]:
                self.metrics.restarts.labels(group, service, result).inc()
        return outcome

    def _decide_failure(
        self,
        failure: Failure,
        execute: bool,
        received: float,
        view: ClusterView | None = None,
    ) -> Outcome:
        """Decide (on ``view`` when the caller just read one, else on a view read now); only the
        target claims the group, then decides again on a fresh view.

        Hooks that do not act never claim: a claim there would answer "in progress" to the
        target's request to release the group.  The outcome carries the decision's time (alert
        arrival to outcome, or to the move's start) as ``details.decision_seconds``.  On the
        node that holds a failed group with restartable services, the decision is its restart.
        """
        if self._restart_here(failure, execute):
            return _with_time(self._restart(failure.group), self._decision_time(received))
        if view is None:
            view = self.cluster.view(failure.group)
        result = decide(failure, self.config, view)
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
            decided = self._decide_claimed(failure) if mine else _in_progress(failure.group)
            took = self._decision_time(received)
            if isinstance(decided, Outcome):
                return _with_time(decided, took)
            plan, move = decided
            return _with_time(self._execute(plan, move), took)

    def _decide_claimed(self, failure: Failure) -> Outcome | tuple[Plan, Move]:
        """With the group claimed: the decision again on a fresh view, the failure confirmed
        on its node (:mod:`failover_hook.confirm`), then the plan."""
        result = decide(failure, self.config, self.cluster.view(failure.group))
        if isinstance(result, Outcome):
            return result
        confirmation = self._confirm(failure, result)
        if confirmation is not None and confirmation.failed is False:
            return confirm.not_confirmed(result, confirmation)
        plan = self._plan(result, TriggerKind.ALERT)
        if isinstance(plan, Outcome):
            return plan
        if confirmation is not None:
            plan = dataclasses.replace(plan, notes=(*plan.notes, confirmation.note()))
        return plan, result

    def _confirm(self, failure: Failure, move: Move) -> confirm.Confirmation | None:
        """The source's own word on a ``GardienGroupFailed`` it answers for; None when there is
        none to ask (confirmation off, a node alert, a silent or unknown source)."""
        if (
            not self.config.hook.confirm_failure
            or failure.alertname != GROUP_FAILED
            or move.source_silent
            or move.source not in self.cluster.peers
        ):
            return None
        confirmation = confirm.ask(self.cluster.peers[move.source], move.group)
        log.info("%s on %s: %s", move.group, confirmation.node, confirmation.note())
        return confirmation

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
        view: ClusterView | None = None
        if alert.alertname == GROUP_FAILED:
            found = [Failure(alert.labels["group"], alert.labels["node"], alert.alertname)]
        else:
            # the view that found the node's groups is their first decision's too: a silent
            # node's status call waits its whole request_timeout, once is enough before the claim
            view = self.cluster.view()
            found = failures(alert, self.config, view)
        if not found:
            return [
                Outcome(
                    Status.NOTHING_TO_DO,
                    f"nothing to do: no group active on {alert.labels['node']}",
                )
            ]
        if len(found) == 1:
            return [self._decide_failure(found[0], execute, received, view)]
        # a node alert: its groups move at once, each on its own (one slow group, a Tomcat
        # starting, must not hold the others); a fence of the node is shared (fencing.Fencer)
        decided = [
            self._group_decisions.submit(self._decide_failure, f, execute, received, view)
            for f in found
        ]
        return [d.result() for d in decided]

    def recover(self) -> list[Outcome]:
        outcomes = self.cluster.restarts.recover() + recover(self.mover)
        for outcome in outcomes:
            log.info("recovery: %s", outcome.message)
        if not outcomes:
            log.info("recovery: no unfinished move in the journal")
        return outcomes

    def shutdown(self) -> None:
        self._group_decisions.shutdown(wait=False, cancel_futures=True)
