"""The mover: plan a group's move and run it step by step through the journal.

The one safety rule: the target never acquires before the source released the group or was fenced.
An unreachable source, or one that fails to release, is fenced; with no fence agent the move is
refused (an operator may override with ``force``).  A failed acquire rolls back what the move did
(the source gets the group back).  The acquire itself asks every other node of the group whether
it holds it (:mod:`failover_hook.guard`); the mover tells it which node it fenced for this move
(that node is off: not asked) and which silent source the operator's force vouched for in place
of a missing fence agent (not asked either; the acquire is journaled as forced).  A source that
answered is always asked, even in a forced move.  After a crash,
:func:`failover_hook.recovery.recover` finishes a move whose source had already let go (release or
fence done) and rolls back one that had not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from failover_hook.agent import LocalAgent
from failover_hook.client import group_budget
from failover_hook.fencing import Fencer
from failover_hook.guard import Clearance
from failover_hook.journal import Journal, move_key
from failover_hook.outcome import Outcome, Status
from failover_hook.peers import PeerClient, PeerUnreachable
from failover_hook.plan import Action, Plan, Step, StepState
from failover_hook.silence import Silence, SilenceCheck
from failover_hook.trigger import Trigger, TriggerKind
from gardien.config.model import ClusterConfig
from gardien.errors import GardienError
from gardien.polling import wait_until

log = logging.getLogger(__name__)


class PlanError(GardienError):
    """The asked move makes no sense (unknown group or node, target not among the group's nodes)."""


class Restore(StrEnum):
    """How giving the group back to the source of a move that did not take it went."""

    RESTORED = "restored"
    NOT_RESTORED = "not_restored"
    """The source answered but could not start the group again."""
    UNREACHABLE = "unreachable"
    """The source did not answer: nothing is known to run there."""


@dataclass(frozen=True)
class Restoration:
    """What :meth:`Mover.restore_source` did: decided on by ``result``, told by ``note``."""

    result: Restore
    note: str
    """For people, appended to an outcome: ``; php4 restarted on node1``."""
    busy: bool = False
    """NOT_RESTORED because an action on the group is still running on the source (its answer
    was "already in progress"): typically the release this move asked for, still going."""


@dataclass
class Progress:
    """What the steps run so far established (recovery starts from what the journal says)."""

    released: bool = False
    """The source no longer runs the group (released, fenced, or there was no source)."""
    failure: str | None = None
    """Why the release did not happen ("node1 unreachable", "release of php4 ... failed")."""
    silent_since: float | None = None
    """Unix time the source went silent (its status or its release unanswered); None while it
    answers.  A silent source is fenced only once confirmed gone (:mod:`failover_hook.silence`)."""
    release_unanswered: bool = False
    """The source's agent was asked to release and did not answer: it may be part way."""
    why_fence: str | None = None
    """Why the source is fenced, for the outcome: "no answer from its agent in 5 s"."""
    fenced: str | None = None
    """Set once the source was fenced: "fenced node1: no answer from its agent in 5 s"."""
    fenced_nodes: dict[str, str] = field(default_factory=dict)
    """The nodes fenced for this move, with the fence step's result: the acquire's clearance."""
    vouched: list[str] = field(default_factory=list)
    """Silent sources the operator's force let go without a fence agent (the acquire's
    clearance too, journaled as forced)."""

    def clearance(self) -> Clearance:
        return Clearance(fenced=dict(self.fenced_nodes), vouched=tuple(self.vouched))


class Mover:
    """Owns moves on this node: their plans, and running a plan's steps in order through the
    journal (release on the source, fence it if the release did not happen, acquire on the target,
    undo on a failed acquire), under the group's claim in the agent's
    :class:`~failover_hook.locks.GroupLocks`.

    Its local steps call this node's agent, its remote ones the peer's agent (a
    :class:`PeerClient`); :mod:`failover_hook.recovery` resumes what a crash interrupted through
    :meth:`run_steps` and :meth:`restore_source`.
    """

    def __init__(  # noqa: PLR0917 - the API other parts call
        self,
        config: ClusterConfig,
        node: str,
        journal: Journal,
        agent: LocalAgent,
        peers: Mapping[str, PeerClient],
        fencer: Fencer,
        silence: SilenceCheck | None = None,
    ) -> None:
        self.config = config
        self.node = node
        self.journal = journal
        self.agent = agent
        self.peers = peers
        self.fencer = fencer
        self.silence = silence
        """Confirms a silent source is gone before it is fenced; None: fenced at once."""
        self.locks = agent.locks

    # -- planning ------------------------------------------------------------------------------

    def plan(
        self,
        group: str,
        source: str | None,
        target: str,
        trigger: TriggerKind = TriggerKind.MANUAL,
    ) -> Plan:
        if group not in self.config.groups:
            raise PlanError(f"unknown group {group!r}")
        nodes = self.config.groups[group].nodes
        if target not in nodes:
            raise PlanError(f"{group} cannot run on {target!r} (its nodes: {', '.join(nodes)})")
        if source is not None and source not in self.config.nodes:
            raise PlanError(f"unknown node {source!r}")
        if source == target:
            raise PlanError(f"{group}: source and target are both {target}")
        steps: list[Step] = []
        notes: list[str] = []
        if source is not None:
            steps.append(Step(source, Action.RELEASE, group, local=source == self.node))
            if source != self.node:
                fence = self.config.fencing.get(source)
                steps.append(
                    Step(
                        source,
                        Action.FENCE,
                        group,
                        local=False,
                        detail=fence.command[0] if fence else "",
                        only_if_failed=0,
                    )
                )
                if fence is None:
                    notes.append(
                        f"no fence agent for {source}: the move is refused if {source} "
                        "cannot release (unless forced)"
                    )
        steps.append(
            Step(
                target,
                Action.ACQUIRE,
                group,
                local=target == self.node,
                detail=self.agent.describe(group),
            )
        )
        return Plan(group, source, target, tuple(steps), trigger, tuple(notes))

    # -- execution -----------------------------------------------------------------------------

    def execute(self, plan: Plan, force: bool = False, source_silent: bool = False) -> Outcome:
        """Run ``plan``.  ``source_silent``: the source's agent did not answer its status within
        ``hook.request_timeout`` just before (a frozen node's kernel still accepts connections):
        no release is sent, which would wait the group's whole budget; the source is fenced at
        once, or the move refused without a fence agent."""
        if plan.group not in self.config.groups:
            return Outcome(Status.REFUSED, f"unknown group {plan.group!r}", plan.group)
        with self.locks.claim(plan.group) as mine:
            if not mine:
                return Outcome(
                    Status.IN_PROGRESS,
                    f"a move of {plan.group} is already in progress",
                    plan.group,
                )
            move_id = self.journal.begin_move(plan)
            log.info("move #%d: %s", move_id, plan.describe().replace("\n", " |"))
            progress = Progress(released=plan.source is None)
            if source_silent and plan.source not in (None, self.node):
                timeout = self.config.hook.request_timeout
                progress.why_fence = f"no answer from its agent in {timeout:g} s"
                progress.failure = f"{plan.source} unreachable"
                progress.silent_since = time.time() - timeout
            outcome = self.run_steps(move_id, plan, force, 0, progress)
            self.journal.finish(move_id, outcome)
            log.info("move #%d: %s", move_id, outcome)
            return outcome

    def _call(
        self,
        step: Step,
        action: Action,
        trigger: Trigger,
        move_id: int | None = None,
        clearance: Clearance | None = None,
    ) -> Outcome:
        """Run release/acquire of ``step``'s group on its node (raises PeerUnreachable); a peer's
        release for move ``move_id`` journals the move's key there.  ``clearance`` goes with a
        local acquire only: a peer's acquire (a source given its group back) asks for itself."""
        if step.node == self.node:
            if action is Action.RELEASE:
                return self.agent.release(step.group, trigger=trigger)
            return self.agent.acquire(step.group, trigger, clearance or Clearance())
        peer = self.peers.get(step.node)
        if peer is None:
            raise PeerUnreachable(f"no client for node {step.node}")
        if action is Action.RELEASE:
            key = move_key(self.node, move_id) if move_id is not None else None
            return peer.release(step.group, move=key)
        # a peer given its group back need not ask this node, when nothing of it is up here
        mine = self.agent.lets_go(step.group)
        return peer.acquire(step.group, given_back_by=self.node if mine else None)

    def run_steps(
        self, move_id: int, plan: Plan, force: bool, first: int, progress: Progress
    ) -> Outcome:
        """Run the journaled move ``move_id`` from its step ``first``; its outcome."""
        started = time.monotonic()
        trigger = Trigger.step_of(move_id)
        for i in range(first, len(plan.steps)):
            step = plan.steps[i]
            self.journal.step_started(move_id, i)
            if step.action is Action.RELEASE:
                stop = self._release(move_id, plan, i, progress)
                if stop is not None:
                    return stop
            elif step.action is Action.FENCE:
                stop = self._fence(move_id, plan, i, force, progress)
                if stop is not None:
                    return stop
            else:
                if not progress.released:
                    reason = progress.failure or "the source did not release"
                    return self._fail(move_id, plan, i, f"{reason}; nothing acquired")
                try:
                    result = self._call(
                        step, Action.ACQUIRE, trigger, clearance=progress.clearance()
                    )
                except PeerUnreachable as exc:
                    result = Outcome(Status.FAILED, f"{step.node} unreachable: {exc}", plan.group)
                if not result.ok:
                    self.journal.step_finished(move_id, i, StepState.FAILED, result.message)
                    undone = self._undo(move_id, plan, i)
                    return Outcome(
                        Status.FAILED,
                        f"move {plan.group} {plan.source} -> {plan.target} "
                        f"failed: {result.message}{undone}",
                        plan.group,
                        {"move_id": move_id},
                    )
                self.journal.step_finished(move_id, i, StepState.DONE, result.message)
        took = time.monotonic() - started
        verb = f"moved {plan.group} {plan.source} ->" if plan.source else f"started {plan.group} on"
        fenced = f" ({progress.fenced})" if progress.fenced else ""
        return Outcome(
            Status.DONE,
            f"{verb} {plan.target} in {took:.1f} s{fenced}",
            plan.group,
            {"move_id": move_id, "duration": took, "source": plan.source, "target": plan.target},
        )

    def _release(self, move_id: int, plan: Plan, i: int, progress: Progress) -> Outcome | None:
        """Ask the source to release; an Outcome ends the move (a local release failed)."""
        step = plan.steps[i]
        if not step.local and progress.why_fence is not None:
            # the source's agent did not answer its status: a release would hang
            message = f"{progress.failure}: {progress.why_fence}; no release asked"
            self.journal.step_finished(move_id, i, StepState.FAILED, message)
            return None
        asked = time.time()
        try:
            result = self._call(step, Action.RELEASE, Trigger.step_of(move_id), move_id)
        except PeerUnreachable as exc:
            progress.silent_since = asked
            progress.release_unanswered = True
            progress.failure = f"{step.node} unreachable"
            progress.why_fence = "its agent did not answer the release"
            self.journal.step_finished(move_id, i, StepState.FAILED, f"{progress.failure}: {exc}")
            return None
        return self._release_answered(move_id, plan, i, progress, result)

    def _release_answered(
        self, move_id: int, plan: Plan, i: int, progress: Progress, result: Outcome
    ) -> Outcome | None:
        """What the source's answer to the release establishes; an Outcome ends the move."""
        step = plan.steps[i]
        if result.ok:
            progress.released = True
            self.journal.step_finished(move_id, i, StepState.DONE, result.message)
            return None
        progress.failure = f"release of {plan.group} on {step.node} failed ({result.message})"
        progress.why_fence = f"release failed ({result.message})"
        self.journal.step_finished(move_id, i, StepState.FAILED, result.message)
        if step.local:
            return self._fail(move_id, plan, i, progress.failure + "; nothing acquired")
        return None

    def _fence(
        self, move_id: int, plan: Plan, i: int, force: bool, progress: Progress
    ) -> Outcome | None:
        """Fence the source when the step it watches did not end done; an Outcome ends the move."""
        step = plan.steps[i]
        node = step.node
        watched = step.only_if_failed
        if watched is not None and self.journal.get(move_id).steps[watched].state is StepState.DONE:
            self.journal.step_finished(
                move_id, i, StepState.SKIPPED, f"not needed: {node} released"
            )
            return None
        can_fence = self.fencer.can_fence(node)
        silence = None
        if progress.silent_since is not None and self.silence is not None and can_fence:
            silence = self.silence.confirm(node, progress.silent_since)
        forced_through = force and not can_fence
        busy = silence is not None and not silence.gone
        if progress.release_unanswered and not forced_through and (busy or not can_fence):
            silence = self._release_once_back(move_id, plan, progress, silence)
            if progress.released:
                self.journal.step_finished(
                    move_id, i, StepState.SKIPPED, f"not needed: {node} released when asked again"
                )
                return None
        if not can_fence:
            if force:
                self.journal.step_finished(
                    move_id, i, StepState.SKIPPED, "forced by the operator without fencing"
                )
                progress.released = True
                if progress.silent_since is not None:  # one that answered is asked by the acquire
                    progress.vouched.append(node)
                return None
            reason = f"{progress.failure} and no fence agent"
            self.journal.step_finished(move_id, i, StepState.FAILED, reason)
            restored = self.restore_source(plan).note if progress.silent_since is None else ""
            return Outcome(Status.REFUSED, f"{reason}{restored}", plan.group, {"move_id": move_id})
        if silence is not None:
            if not silence.gone:
                reason = f"{progress.failure}, not fenced: {silence.describe()}"
                self.journal.step_finished(move_id, i, StepState.FAILED, reason)
                return Outcome(
                    Status.REFUSED, f"{reason}; nothing acquired", plan.group, {"move_id": move_id}
                )
            progress.why_fence = f"{progress.why_fence}; {silence.describe()}"
        return self._fence_answered(move_id, plan, i, progress)

    def _fence_answered(
        self, move_id: int, plan: Plan, i: int, progress: Progress
    ) -> Outcome | None:
        """Fence the source, which did not release; an Outcome ends the move."""
        node = plan.steps[i].node
        fenced = self.fencer.fence(node)
        if not fenced.ok:
            self.journal.step_finished(move_id, i, StepState.FAILED, fenced.message)
            return Outcome(
                Status.FAILED,
                f"move {plan.group} {plan.source} -> {plan.target} failed: "
                f"{progress.failure}; {fenced.message}; nothing acquired",
                plan.group,
                {"move_id": move_id},
            )
        self.journal.step_finished(move_id, i, StepState.DONE, fenced.message)
        progress.released = True
        progress.fenced_nodes[node] = fenced.message
        progress.fenced = f"fenced {node}: {progress.why_fence or progress.failure}"
        return None

    def _release_once_back(
        self, move_id: int, plan: Plan, progress: Progress, silence: Silence | None
    ) -> Silence | None:
        """Ask the release again until the source's agent answers; None once it answered
        (``progress`` says what), else the last check of its silence (``gone``: fence it).

        The source's node is up (Prometheus still scrapes it) but its agent did not answer the
        release: the hook died part way through (its unit restarts it within seconds, and its
        recovery finishes the release it was running, failover_hook/recovery.py), or it is
        still releasing.  Refused there and then, the move would leave the group released a
        moment later and running nowhere, with nothing left to start it (the alert resolves
        once no node holds the group): found by the fault campaign (docs/chaos.md).  A release
        is idempotent, so it is asked again until the agent answers other than "in progress",
        within the group's budget, and the move goes on from its answer.  Between two asks the
        silence is checked again: a node that went off meanwhile is fenced, not waited for.
        """
        i = next(n for n, s in enumerate(plan.steps) if s.action is Action.RELEASE)
        step = plan.steps[i]
        answer: list[Outcome] = []
        last = [silence]

        def answered_or_gone() -> bool:
            try:
                result = self._call(step, Action.RELEASE, Trigger.step_of(move_id), move_id)
            except PeerUnreachable:
                if self.silence is not None and progress.silent_since is not None:
                    last[0] = self.silence.confirm(step.node, progress.silent_since)
                return last[0] is not None and last[0].gone
            if result.status is Status.IN_PROGRESS:
                return False
            answer.append(result)
            return True

        wait_until(answered_or_gone, group_budget(self.config, plan.group), interval=0.5)
        if not answer:
            return last[0]
        log.info("%s: %s answered the release again: %s", plan.group, step.node, answer[0])
        progress.silent_since = None
        progress.release_unanswered = False
        self._release_answered(move_id, plan, i, progress, answer[0])
        return None

    def _fail(self, move_id: int, plan: Plan, i: int, reason: str) -> Outcome:
        self.journal.step_finished(move_id, i, StepState.FAILED, reason)
        return Outcome(
            Status.FAILED,
            f"move {plan.group} {plan.source} -> {plan.target} failed: {reason}",
            plan.group,
            {"move_id": move_id},
        )

    def restore_source(self, plan: Plan) -> Restoration:
        """Give the group back to a source that failed to release it part way."""
        step = next(s for s in plan.steps if s.action is Action.RELEASE)
        try:
            result = self._call(step, Action.ACQUIRE, Trigger.undo_of())
        except PeerUnreachable as exc:
            return Restoration(
                Restore.UNREACHABLE, f"; {plan.group} not restarted on {step.node}: {exc}"
            )
        if result.ok:
            return Restoration(Restore.RESTORED, f"; {plan.group} restarted on {step.node}")
        return Restoration(
            Restore.NOT_RESTORED,
            f"; {plan.group} could not be restarted on {step.node}: {result.message}",
            busy=result.status is Status.IN_PROGRESS,
        )

    def _undo(self, move_id: int, plan: Plan, failed: int) -> str:
        """Undo the done steps before ``failed``, in reverse (a fenced node stays off)."""
        notes = []
        for i in range(failed - 1, -1, -1):
            step = plan.steps[i]
            done = self.journal.get(move_id).steps[i].state is StepState.DONE
            if not done or step.undo is None:
                continue
            result = self._undo_once_free(move_id, plan, step, step.undo)
            if result.ok:
                self.journal.step_finished(move_id, i, StepState.UNDONE, result.message)
                notes.append(
                    f"{plan.group} restarted on {step.node}"
                    if step.undo is Action.ACQUIRE
                    else f"{plan.group} released on {step.node}"
                )
            else:
                notes.append(f"undo on {step.node} failed: {result.message}")
        return "; rolled back: " + ", ".join(notes) if notes else ""

    def _undo_once_free(self, move_id: int, plan: Plan, step: Step, undo: Action) -> Outcome:
        """``undo`` of ``step``; on another node, asked again while it answers "in progress".

        That answer means that another decision holds the group's claim there for a moment
        (an alert about the group being decided); taken as the undo's failure, it left a
        group whose acquire failed released everywhere and running nowhere (found by the fault
        campaign at 250 ms evaluations, docs/chaos.md).  An undo is an acquire or a release,
        both idempotent: it is asked again until the answer is another one, within the group's
        budget.  This node's own agent runs under the mover's claim and never answers so."""
        answers: list[Outcome] = []

        def answered() -> bool:
            try:
                result = self._call(step, undo, Trigger.undo_of(move_id))
            except PeerUnreachable as exc:
                result = Outcome(Status.FAILED, f"{step.node} unreachable: {exc}", plan.group)
            answers.append(result)
            return step.node == self.node or result.status is not Status.IN_PROGRESS

        wait_until(answered, group_budget(self.config, plan.group), interval=0.5)
        return answers[-1]
