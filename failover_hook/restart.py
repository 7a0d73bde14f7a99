"""Restart in place: a failed service of a group restarted on the node that holds it, before the
group moves (Pacemaker's ``migration-threshold`` with ``on-fail=restart``, Serviceguard's
``service_restart``; docs/config.md, "Restart in place").

On ``GardienGroupFailed`` about a group this node holds, the hook asks :meth:`Restarter.on_failure`:
it checks the group's resources itself (the alert says that the group failed, not what), and when
only services failed and each has attempts left in its ``restart.window``, restarts them: the
services from the first failed one to the last of the group are stopped in reverse (its dependants
first), then started in order, each step the resource's own idempotent, bounded start or stop.
Otherwise it declines, and says why: the group then moves, decided by the target's hook.  Either
way the answer is journaled as a ``restart`` entry (its ``services``, steps and outcome); the
restarts of a service within its window are counted from those entries (a declined one, with no
steps run, counts for nothing).

The status document carries :meth:`Restarter.report`: whether a restart runs now, and whether a
failure would still be restarted here (``pending``).  The target's gate (``decide.gate_restart``)
reads it and skips the move meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from failover_hook.agent import LocalAgent
from failover_hook.journal import RESTART_KIND, Journal, MoveRecord
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import StepState
from failover_hook.resources.base import Resource, ResourceError, State
from failover_hook.resources.service import Service
from failover_hook.status import RestartStatus, ServiceRestarts
from failover_hook.trigger import Trigger, TriggerKind
from gardien.config.model import GroupServiceConfig

log = logging.getLogger(__name__)

KIND = RESTART_KIND
"""The journal kind of a restart entry."""


@dataclass(frozen=True)
class Running:
    """A restart under way: its services and which restart of the window it is."""

    services: tuple[str, ...]
    attempt: int
    attempts: int


class Restarter:
    """Owns the restarts of this node's groups: the decision on a failure, the restart itself
    (under the group's claim in the agent's locks) and what the status says of them."""

    def __init__(
        self, agent: LocalAgent, journal: Journal, clock: Callable[[], float] = time.time
    ) -> None:
        self.agent = agent
        self.journal = journal
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, Running] = {}

    def _services(self, group: str) -> tuple[GroupServiceConfig, ...]:
        return self.agent.config.groups[group].services

    def restartable(self, group: str) -> bool:
        """Whether any service of ``group`` may be restarted in place at all."""
        return any(s.restart.attempts > 0 for s in self._services(group))

    def _records(self, group: str) -> list[MoveRecord]:
        longest = max((s.restart.window for s in self._services(group)), default=0.0)
        since = self._clock() - longest
        return [r for r in self.journal.history(group, freezes=False) if r.started >= since]

    def counts(self, group: str) -> dict[str, ServiceRestarts]:
        """Each restartable service's restarts run within its window (done or failed)."""
        records = [r for r in self._records(group) if r.kind == KIND and r.steps]
        now = self._clock()
        counts = {}
        for service in self._services(group):
            window = service.restart.window
            recent = [r for r in records if now - r.started < window]
            used = sum(1 for r in recent if service.name in r.services)
            if service.restart.attempts > 0:
                counts[service.name] = ServiceRestarts(
                    attempts=service.restart.attempts, used=used, window=window
                )
        return counts

    def _declined(self, group: str) -> bool:
        """Whether this node's last word on a failure of ``group`` (within the longest window,
        since it last acquired it) was "no restart": declined, or a restart that failed."""
        for record in self._records(group):  # newest first
            if record.kind == "acquire":
                return False
            if record.kind == KIND and record.finished is not None:
                return record.status != str(Status.DONE)
        return False

    def report(self, group: str) -> RestartStatus:
        """What the status document says of ``group``'s restarts on this node."""
        if not self.restartable(group):
            return RestartStatus()
        counts = self.counts(group)
        with self._lock:
            running = self._running.get(group)
        pending = any(c.used < c.attempts for c in counts.values()) and not self._declined(group)
        if running is None:
            return RestartStatus(pending=pending, services=counts)
        return RestartStatus(
            restarting=True,
            pending=pending,
            restarting_services=list(running.services),
            attempt=running.attempt,
            attempts=running.attempts,
            services=counts,
        )

    # ---- the decision on a failure -------------------------------------------------------------

    @staticmethod
    def _failed(resources: list[Resource]) -> tuple[dict[int, str], list[str]]:
        """The failed services among ``resources`` (index: name), and what else failed."""
        services: dict[int, str] = {}
        others: list[str] = []
        for i, resource in enumerate(resources):
            state = resource.monitor()
            if state.state is State.RUNNING:
                continue
            if isinstance(resource, Service):
                services[i] = resource.config.name
            else:
                others.append(f"{resource.name} {state.state} ({state.reason})")
        return services, others

    def on_failure(self, group: str) -> Outcome:
        """Restart the failed services of ``group`` or decline, journaled (the caller holds the
        group's claim).  ``details.restarted``: whether a restart ran and worked."""
        node = self.agent.node
        resources = self.agent.resources(group)
        failed, others = self._failed(resources)
        configs = {s.name: s for s in self._services(group)}
        names = list(failed.values())
        counts = self.counts(group)
        if others:
            return self._decline(group, names, "not_a_service", f"{others[0]} failed")
        if not failed:
            return self._decline(group, names, "nothing_failed", f"every resource runs on {node}")
        for name in names:
            count, allowed = counts.get(name), configs[name].restart
            if count is None or count.used >= count.attempts:
                used = count.used if count else 0
                why = f"{name} has no restart left ({used} of {allowed.attempts} in "
                return self._decline(group, names, "used_up", why + f"{allowed.window:g} s)")
        attempt = max(counts[n].used for n in names) + 1
        attempts = min(counts[n].attempts for n in names)
        first = min(failed)
        return self._restart(group, resources, first, Running(tuple(names), attempt, attempts))

    def _decline(self, group: str, services: list[str], reason: str, why: str) -> Outcome:
        # with nothing failed here, the target's confirmation (failover_hook/confirm.py) finds
        # the same and does not move it either
        moves = "" if reason == "nothing_failed" else f"; {group} moves"
        outcome = Outcome(
            Status.REFUSED,
            f"not restarted: {why}{moves}",
            group,
            {"node": self.agent.node, "services": services, "reason": reason, "restarted": False},
        )
        entry = self.journal.begin_local(
            group, self.agent.node, KIND, [], Trigger(TriggerKind.ALERT), services=services
        )
        self.journal.finish(entry, outcome)
        log.warning("%s", outcome)
        return outcome

    # ---- the restart ---------------------------------------------------------------------------

    def _restart(
        self, group: str, resources: list[Resource], first: int, running: Running
    ) -> Outcome:
        """Stop ``resources[first:]`` in reverse, start them in order; the first failure ends it
        (what did not start stays stopped: the move that follows starts the group on the peer)."""
        started = time.monotonic()
        node, names = self.agent.node, ", ".join(running.services)
        chain = resources[first:]
        steps = [("stop", r) for r in reversed(chain)] + [("start", r) for r in chain]
        described = [f"{action} {r.name}" for action, r in steps]
        entry = self.journal.begin_local(
            group, node, KIND, described, Trigger(TriggerKind.ALERT), services=running.services
        )
        with self._lock:
            self._running[group] = running
        try:
            for i, (action, resource) in enumerate(steps):
                self.journal.step_started(entry, i)
                try:
                    change = resource.stop() if action == "stop" else resource.start()
                except (ResourceError, OSError) as exc:  # OSError: a start program not found
                    self.journal.step_finished(entry, i, StepState.FAILED, str(exc))
                    outcome = Outcome(
                        Status.FAILED,
                        f"restart of {names} on {node} failed at {action} {resource.name}: "
                        f"{exc}; {group} moves",
                        group,
                        {**self._details(running), "failed_step": f"{action} {resource.name}"},
                    )
                    self.journal.finish(entry, outcome)
                    log.warning("%s", outcome)
                    return outcome
                self.journal.step_finished(entry, i, StepState.DONE, change.message)
        finally:
            with self._lock:
                self._running.pop(group, None)
        took = time.monotonic() - started
        outcome = Outcome(
            Status.DONE,
            f"restarted {names} on {node} in {took:.1f} s "
            f"(restart {running.attempt} of {running.attempts})",
            group,
            {**self._details(running), "restarted": True, "duration": took},
        )
        self.journal.finish(entry, outcome)
        log.info("%s", outcome)
        return outcome

    def _details(self, running: Running) -> dict[str, object]:
        return {
            "node": self.agent.node,
            "services": list(running.services),
            "restart": running.attempt,
            "attempts": running.attempts,
            "restarted": False,
        }

    def recover(self) -> list[Outcome]:
        """Finish the restarts a crash of the hook interrupted, as failed: their services are
        left as they are (the next alert, if they still fail, decides)."""
        outcomes = []
        for entry in self.journal.unfinished(KIND):
            outcome = Outcome(
                Status.FAILED, f"restart #{entry.id} of {entry.group} interrupted", entry.group
            )
            self.journal.finish(entry.id, outcome)
            outcomes.append(outcome)
        return outcomes
