"""Recovery at start: finish or roll back the moves and local actions a crash left unfinished.

A move whose source had already let go (its release or fence done) is finished; one that had not
is rolled back, the source given the group again; nothing is journaled as rolled back unless the
source did take it back.  A source that does not answer makes the move go on as a move with an
unreachable source does (fence it, or refuse); one that answers but cannot start the group again
is reported so, and the move ends there; one still busy with the group (the hook was killed
during the release and restarted before it ended) is waited for first.  A finished move's acquire
is guarded as any other (:mod:`failover_hook.guard`): the steps run again from the first one not
done, so a release that had failed is asked again and its fence run again, whose result clears
the fenced node for the acquire; an operator's force does not survive the crash (the acquire asks
every node).  An interrupted local acquire is rolled back and an interrupted release finished,
both by releasing; those that were a step of an unfinished move of this node are recovered with
the move.
"""

from __future__ import annotations

import logging

from failover_hook.client import group_budget
from failover_hook.journal import MoveRecord
from failover_hook.move import Mover, Progress, Restoration, Restore
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import Action, Plan, StepState
from failover_hook.trigger import Trigger, TriggerKind
from gardien import state
from gardien.node.holding import read_holdings
from gardien.polling import wait_for

log = logging.getLogger(__name__)


def drop_stale_markers(mover: Mover) -> list[Outcome]:
    """The held markers that nothing on this node backs any more, removed.

    A node powered off (or crashed, or rebooted) while holding a group comes back with its
    marker and without the group: its mounts and addresses went with it, and its peer, once it
    fenced it, may hold the group now.  Trusted, the marker would have this node answer "held"
    to every guard and status: two nodes saying they hold the group, so no one may acquire it,
    and a node alert that no longer counts it.  A group with a volume or a VIP is held where they
    are (:mod:`gardien.node.holding`): a marker with neither up here is dropped.  A marker alone
    is the only truth of a group without either, and an unfinished journal entry is recovered
    below: both are kept."""
    agent = mover.agent
    unfinished = {entry.group for entry in mover.journal.unfinished()}
    outcomes = []
    for group in sorted(state.held_groups(agent.state_dir) & set(agent.config.groups)):
        config = agent.config.groups[group]
        if (config.volume is None and config.vip is None) or group in unfinished:
            continue
        here = read_holdings({group: config}, agent.state_dir)
        mounted = config.volume is not None and here.volume_mounted(config.volume)
        if mounted or (config.vip is not None and here.vip_present(config.vip)):
            continue
        state.mark_held(agent.state_dir, group, False)
        outcomes.append(
            Outcome(
                Status.DONE,
                f"{group}'s held marker dropped: neither its volume nor its VIP is up on "
                f"{agent.node} (the node was off or restarted since it acquired {group})",
                group,
            )
        )
    return outcomes


def recover(mover: Mover) -> list[Outcome]:
    """Drop the held markers a stop left without their group, then finish or roll back the moves
    (and local actions) a crash left unfinished."""
    outcomes = drop_stale_markers(mover)
    moves = mover.journal.unfinished("move")
    pending = {m.id for m in moves}
    for entry in mover.journal.unfinished():
        if entry.kind in ("move", "restart"):  # restarts: failover_hook/restart.py recovers them
            continue
        parent = entry.trigger.parent if entry.trigger.kind is TriggerKind.MOVE else None
        if parent in pending:
            mover.journal.finish(
                entry.id,
                Outcome(Status.FAILED, f"interrupted; recovered with move #{parent}", entry.group),
            )
            continue
        outcomes.append(_recover_local(mover, entry))
    for move in moves:
        outcomes.append(_recover_move(mover, move))
    return outcomes


def _recover_local(mover: Mover, entry: MoveRecord) -> Outcome:
    """An interrupted acquire is rolled back, an interrupted release finished: both release."""
    word = "rolled back" if entry.kind == "acquire" else "finished"
    result = mover.agent.release(entry.group, trigger=Trigger.recovery_of(entry.id))
    outcome = Outcome(
        result.status if not result.ok else Status.DONE,
        f"recovered interrupted {entry.kind} #{entry.id} of {entry.group}: "
        f"{word} ({result.message})",
        entry.group,
        {"entry": entry.id},
    )
    mover.journal.finish(entry.id, outcome)
    log.warning("%s", outcome)
    return outcome


def _recover_move(mover: Mover, move: MoveRecord) -> Outcome:
    assert move.plan is not None
    plan = move.plan
    states = [s.state for s in move.steps]
    released = plan.source is None or any(
        step.action in (Action.RELEASE, Action.FENCE) and states[i] is StepState.DONE
        for i, step in enumerate(plan.steps)
    )
    label = f"recovered move #{move.id} ({plan.group} {plan.source} -> {plan.target})"
    with mover.locks.claim(plan.group) as mine:
        if not mine:  # recovery runs before the API serves: nothing else acts yet
            return Outcome(Status.IN_PROGRESS, f"{label}: another action holds it", plan.group)
        if released:
            done = (StepState.DONE, StepState.SKIPPED)
            first = next((i for i, s in enumerate(states) if s not in done), len(states))
            result = mover.run_steps(move.id, plan, False, first, Progress(released=True))
            outcome = _relabel(result, f"{label}: finished: {result.message}")
        else:
            restored = _restore_when_free(mover, plan)
            if restored.result is Restore.RESTORED:
                for i, step in enumerate(plan.steps):
                    if states[i] is not StepState.PENDING or step.action is Action.RELEASE:
                        mover.journal.step_finished(move.id, i, StepState.UNDONE, "rolled back")
                outcome = Outcome(
                    Status.FAILED,
                    f"{label}: rolled back{restored.note}",
                    plan.group,
                    {"move_id": move.id},
                )
            elif restored.result is Restore.NOT_RESTORED:
                # the source answered but did not take the group back: said as it is, and no
                # more done than before the crash (the alert, still firing, is decided again)
                for i, state in enumerate(states):
                    if state is StepState.RUNNING:
                        mover.journal.step_finished(move.id, i, StepState.FAILED, "interrupted")
                outcome = Outcome(
                    Status.FAILED,
                    f"{label}: not rolled back{restored.note}",
                    plan.group,
                    {"move_id": move.id},
                )
            else:
                # the source does not answer: the move goes on as one with an unreachable source
                # (fence it, then acquire), or is refused without a fence agent
                result = mover.run_steps(move.id, plan, False, 0, Progress())
                outcome = _relabel(
                    result, f"{label}: source unreachable, finished: {result.message}"
                )
    mover.journal.finish(move.id, outcome)
    log.warning("%s", outcome)
    return outcome


def _restore_when_free(mover: Mover, plan: Plan) -> Restoration:
    """Give the group back to the source once no action on it runs there any more.

    A hook killed during a move's release comes back (its unit restarts it in seconds) while the
    source is often still stopping the group, and answers "already in progress" until its release
    ends: taken as a refusal, the move would end "not rolled back" and the group, released a moment
    later, would run nowhere.  Waited for within the group's budget, as the release itself is.
    """
    last: list[Restoration] = []

    def free() -> Restoration | None:
        last[:] = [mover.restore_source(plan)]
        return None if last[0].busy else last[0]

    return wait_for(free, group_budget(mover.config, plan.group), interval=0.5) or last[0]


def _relabel(outcome: Outcome, message: str) -> Outcome:
    return Outcome(outcome.status, message, outcome.group, outcome.details)
