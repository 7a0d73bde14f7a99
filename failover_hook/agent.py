"""The node agent: acquire and release a group on this node, idempotently, journaled.

``acquire`` first makes sure no other node holds the group (:mod:`failover_hook.guard`: every
other node that may run it answers "not held", or was fenced for this move, or the operator
forced it), then runs every resource's preflight (the VIP's duplicate-address check) before any
starts, then starts them in order (volume, VIP, services) and on a failure stops what it started,
in reverse, so a failed acquire leaves nothing behind.  From before it asks the other nodes until
it ends, the group counts as held here (:meth:`LocalAgent.holds`), so two acquires on two nodes
never both pass the guard.  ``release`` stops them in reverse order; each stop is a force
operation, and it goes on with the others when one fails (a VIP should not stay up because a
daemon would not die), reporting the first failure.  The groups held are recorded in the state
folder for the exporter (:mod:`gardien.state`).

A group with a volume or a VIP is held where they are: "already held" means they (and its services)
were already running.  A group without either (no resources, or services only) shows nothing on the
node that says it is held (its services may run everywhere): its held marker is the only truth, for
acquire, release and status alike, as for the exporter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from failover_hook.guard import NO_CLEARANCE, Clearance, Guard, StatusPeer
from failover_hook.journal import Journal
from failover_hook.locks import GroupLocks
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import StepState
from failover_hook.resources.base import Change, Resource, ResourceError, ResourceState, State
from failover_hook.resources.registry import BuildContext, build_resources
from failover_hook.trigger import API, Trigger
from gardien import state
from gardien.command_runner import INHERIT, CommandRunner
from gardien.config.model import ClusterConfig
from gardien.node.holding import read_holdings

log = logging.getLogger(__name__)

_HOLDING_KINDS = ("volume", "vip")
"""Resource kinds that are up on one node only: where they run, the group is held."""


def _with_changes(outcome: Outcome, changes: list[Change]) -> Outcome:
    """The outcome with what its steps had to tell: their remarks after its sentence, their
    details merged into its own (a volume's ``mmp``)."""
    remarks = [c.remark for c in changes if c.remark]
    merged: dict[str, Any] = {}
    for change in changes:
        merged.update(change.details)
    if not remarks and not merged:
        return outcome
    message = "; ".join([outcome.message, *remarks])
    return Outcome(outcome.status, message, outcome.group, {**outcome.details, **merged})


class LocalAgent:
    """Acquires and releases this node's groups and says what it holds (see the module).

    It owns the node's :class:`GroupLocks` (``locks``), which the mover and the hook share: its
    acquire and release claim the group like every other path, and answer "already in progress"
    when another action holds it.

    ``peers``: the other nodes' hooks, which its acquire asks whether they hold the group.  None
    means this agent is alone (a single-node config, or the lab's bootstrap before any hook
    runs): there is nobody to ask.
    """

    def __init__(  # noqa: PLR0917 - the API other parts call
        self,
        config: ClusterConfig,
        node: str,
        state_dir: Path,
        runner: CommandRunner | None = None,
        journal: Journal | None = None,
        locks: GroupLocks | None = None,
        peers: Mapping[str, StatusPeer] | None = None,
    ) -> None:
        if node not in config.nodes:
            raise ValueError(f"unknown node {node!r}")
        self.config = config
        self.node = node
        self.state_dir = state_dir
        self.runner = runner or CommandRunner(env=INHERIT)
        self.journal = journal or Journal.in_state_dir(state_dir)
        self.locks = locks or GroupLocks()
        self.guard = Guard(node, peers) if peers is not None else None
        self._acquiring: set[str] = set()
        self._acquiring_lock = threading.Lock()

    def resources(self, group: str) -> list[Resource]:
        context = BuildContext(group, self.runner, self.state_dir / "logs" / group)
        return build_resources(self.config.groups[group], context)

    def _marked(self, group: str) -> bool:
        return group in state.held_groups(self.state_dir)

    def _held_by_marker(self, group: str, resources: list[Resource]) -> bool | None:
        """For a group without volume or VIP, whether its marker says it is held here; None for
        the others, whose resources say it (see the module's docstring)."""
        if any(r.kind in _HOLDING_KINDS for r in resources):
            return None
        return self._marked(group)

    def describe(self, group: str) -> str:
        """What acquiring does, for plans: ``mount ... on ..., vip ..., start apache-php4``."""
        return ", ".join(r.name for r in self.resources(group))

    def _check(self, group: str, acquiring: bool) -> Outcome | None:
        if group not in self.config.groups:
            return Outcome(Status.REFUSED, f"unknown group {group!r}", group)
        nodes = self.config.groups[group].nodes
        if acquiring and self.node not in nodes:
            return Outcome(
                Status.REFUSED,
                f"{group} cannot run on {self.node} (its nodes: {', '.join(nodes)})",
                group,
            )
        return None

    def acquire(
        self, group: str, trigger: Trigger = API, clearance: Clearance = NO_CLEARANCE
    ) -> Outcome:
        """Acquire ``group`` here once no other node holds it (see the module); ``clearance``:
        what the caller established (the nodes a move fenced, or the operator's force)."""
        return self._exclusive(group, True, lambda: self._acquire(group, trigger, clearance))

    def release(self, group: str, trigger: Trigger = API) -> Outcome:
        return self._exclusive(group, False, lambda: self._release(group, trigger))

    def _exclusive(self, group: str, acquiring: bool, action: Callable[[], Outcome]) -> Outcome:
        """Run ``action`` unless it is refused or another action on the group is running."""
        refusal = self._check(group, acquiring)
        if refusal:
            return refusal
        with self.locks.claim(group) as mine:
            if not mine:
                return Outcome(
                    Status.IN_PROGRESS, f"an action on {group} is already in progress", group
                )
            return action()

    def _acquire(self, group: str, trigger: Trigger, clearance: Clearance) -> Outcome:
        with self._acquiring_lock:
            self._acquiring.add(group)  # held, for the peers, before they are asked
        try:
            return self._acquire_guarded(group, trigger, clearance)
        finally:
            with self._acquiring_lock:
                self._acquiring.discard(group)

    def _acquire_guarded(self, group: str, trigger: Trigger, clearance: Clearance) -> Outcome:
        started = time.monotonic()
        resources = self.resources(group)
        marked = self._held_by_marker(group, resources)
        steps = [f"make sure no other node holds {group}"] + [f"start {r.name}" for r in resources]
        entry = self.journal.begin_local(
            group, self.node, "acquire", steps, trigger, forced=clearance.forced
        )
        refusal = self._guard(entry, group, clearance)
        if refusal is None:
            refusal = self._preflight(entry, group, resources)
        if refusal is not None:
            self.journal.finish(entry, refusal)
            log.warning("%s", refusal)
            return refusal
        untouched = 0
        changes: list[Change] = []
        for i, resource in enumerate(resources):
            step = i + 1
            self.journal.step_started(entry, step)
            try:
                change = resource.start()
            except ResourceError as exc:
                self.journal.step_finished(entry, step, StepState.FAILED, str(exc))
                undone = self._rollback(entry, resources[: i + 1])
                outcome = Outcome(
                    Status.FAILED,
                    f"acquire {group} failed at {resource.name}: {exc}; {undone}",
                    group,
                    {"node": self.node, "failed_step": resource.name, **exc.details},
                )
                self.journal.finish(entry, outcome)
                log.warning("%s", outcome)
                return outcome
            untouched += not change.changed
            changes.append(change)
            self.journal.step_finished(entry, step, StepState.DONE, change.message)
        state.mark_held(self.state_dir, group, True)
        took = time.monotonic() - started
        unchanged = untouched == len(resources) and marked is not False
        outcome = self._success(group, "acquired", took, "already held by" if unchanged else None)
        outcome = _with_changes(outcome, changes)
        self.journal.finish(entry, outcome)
        log.info("%s", outcome)
        return outcome

    def _guard(self, entry: int, group: str, clearance: Clearance) -> Outcome | None:
        """Journal step 0: no other node holds the group; a refusal when one may."""
        self.journal.step_started(entry, 0)
        if clearance.force:
            log.warning("acquire of %s forced by the operator: no other node asked", group)
            self.journal.step_finished(
                entry, 0, StepState.SKIPPED, "forced by the operator: no other node asked"
            )
            return None
        if self.guard is None:
            self.journal.step_finished(entry, 0, StepState.DONE, "no other node to ask")
            return None
        check = self.guard.check(group, self.config.groups[group].nodes, clearance)
        if check.clear:
            self.journal.step_finished(entry, 0, StepState.DONE, check.describe())
            return None
        self.journal.step_finished(entry, 0, StepState.FAILED, check.describe())
        return Outcome(
            Status.REFUSED, check.refusal(), group, {"node": self.node, **check.details()}
        )

    def _preflight(self, entry: int, group: str, resources: list[Resource]) -> Outcome | None:
        """Every resource's check before any starts (the VIP's duplicate-address check before
        the volume is mounted); the failure of the first that refuses, with nothing started."""
        for i, resource in enumerate(resources):
            try:
                resource.preflight()
            except ResourceError as exc:
                self.journal.step_finished(entry, i + 1, StepState.FAILED, str(exc))
                return Outcome(
                    Status.FAILED,
                    f"acquire {group} failed at {resource.name}: {exc}; nothing started",
                    group,
                    {"node": self.node, "failed_step": resource.name, **exc.details},
                )
        return None

    def _success(self, group: str, done: str, took: float, unchanged: str | None) -> Outcome:
        """``<group> <unchanged> <node>`` when nothing changed, else ``<done> <group> on ...``."""
        if unchanged:
            return Outcome(Status.NOTHING_TO_DO, f"{group} {unchanged} {self.node}", group)
        return Outcome(
            Status.DONE,
            f"{done} {group} on {self.node} in {took:.1f} s",
            group,
            {"node": self.node, "duration": took},
        )

    def _rollback(self, entry: int, started: list[Resource]) -> str:
        """Stop, in reverse, what a failed acquire started; say how it went."""
        failures = []
        for resource in reversed(started):
            try:
                resource.stop()
            except ResourceError as exc:
                failures.append(f"{resource.name}: {exc}")
        index = len(started)  # the failed resource's step (step 0 is the guard's)
        if failures:
            self.journal.step_finished(
                entry, index, StepState.FAILED, "rollback failed: " + "; ".join(failures)
            )
            return "rollback failed: " + "; ".join(failures)
        return "rolled back"

    def _release(self, group: str, trigger: Trigger) -> Outcome:
        started = time.monotonic()
        resources = list(reversed(self.resources(group)))
        marked = self._held_by_marker(group, resources)
        entry = self.journal.begin_local(
            group, self.node, "release", [f"stop {r.name}" for r in resources], trigger
        )
        failures: list[str] = []
        untouched = 0
        for i, resource in enumerate(resources):
            self.journal.step_started(entry, i)
            try:
                change = resource.stop()
            except ResourceError as exc:
                failures.append(f"{resource.name}: {exc}")
                self.journal.step_finished(entry, i, StepState.FAILED, str(exc))
                continue
            untouched += not change.changed
            self.journal.step_finished(entry, i, StepState.DONE, change.message)
        took = time.monotonic() - started
        if failures:
            outcome = Outcome(
                Status.FAILED,
                f"release {group} failed at {failures[0]}"
                + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
                group,
                {"node": self.node, "failures": failures},
            )
        else:
            state.mark_held(self.state_dir, group, False)
            unchanged = untouched == len(resources) and marked is not True
            outcome = self._success(group, "released", took, "not held by" if unchanged else None)
        self.journal.finish(entry, outcome)
        log.info("%s", outcome)
        return outcome

    def status(self, group: str, until_failure: bool = False) -> dict[str, Any]:
        """Held (as recorded), each resource's state, healthy (every resource running);
        ``until_failure``: the resources in order up to the first that does not run, the rest
        left unchecked (all a confirmation of a failure needs: failover_hook/confirm.py)."""
        states: dict[str, ResourceState] = {}
        for resource in self.resources(group):
            states[resource.name] = resource.monitor()
            if until_failure and not states[resource.name].running:
                break
        config = self.config.groups[group]
        holdings = read_holdings({group: config}, self.state_dir)
        return {
            "group": group,
            "node": self.node,
            "held": self.holds(group),
            "active": holdings.holds(group, config),  # the exporter's gardien_group_active
            "healthy": all(s.running for s in states.values()),
            "resources": {name: s.to_json() for name, s in states.items()},
            "anything_running": any(s.state is not State.NOT_RUNNING for s in states.values()),
        }

    def lets_go(self, group: str) -> bool:
        """Nothing of ``group`` is up here, as the node itself shows it: not held nor being
        acquired (:meth:`holds`), its volume not mounted and its VIP absent.  A node that gives a
        group back to another (a move's undo) says so for itself in its request only then."""
        if self.holds(group):
            return False
        config = self.config.groups[group]
        here = read_holdings({group: config}, self.state_dir)
        mounted = config.volume is not None and here.volume_mounted(config.volume)
        return not mounted and not (config.vip is not None and here.vip_present(config.vip))

    def holds(self, group: str) -> bool:
        """Held here as the other nodes must see it: acquired (its marker), or being acquired
        (from before the guard asks them until the acquire ends, see the module)."""
        with self._acquiring_lock:
            if group in self._acquiring:
                return True
        return self._marked(group)

    def held(self) -> set[str]:
        """The groups :meth:`holds` says are held here (the status's ``held``)."""
        with self._acquiring_lock:
            acquiring = set(self._acquiring)
        return (state.held_groups(self.state_dir) | acquiring) & set(self.config.groups)
