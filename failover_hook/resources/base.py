"""The contract every resource kind implements, in the manner of OCF resource agents.

``start`` succeeds if the resource is already started, ``stop`` succeeds if it is already stopped
and is a *force* operation (it kills what stands in its way), ``monitor`` tells "not running" apart
from "error".  The public methods own the shared procedure (check, act, verify, deadline);
subclasses fill the private hooks.  Both actions return a :class:`Change`: whether they changed
anything (callers count idempotent steps from that flag) and a short readable sentence for people;
they raise :class:`ResourceError` with the reason when they fail.  Both may carry ``details``,
data a caller decides on (the MMP state of a volume it refused, how long a mount waited for MMP),
which the agent passes into its outcome.  The private hooks run only when
there is something to do, so what they return (the sentence of what they did) is always a change.

``preflight`` runs for every resource of a group before any of them starts (the agent calls it):
a check that would refuse the start, run while nothing of the group is up yet (the VIP's
duplicate-address check, before the volume is mounted).  By default there is nothing to check.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from gardien.command_runner import CommandRunner
from gardien.errors import GardienError
from gardien.polling import Deadline


class ResourceError(GardienError):
    """A resource action failed or was refused; the message says why, for an operator, and
    ``details`` what a caller decides on (JSON-ready data, empty unless the kind has some)."""

    def __init__(self, message: str, details: Mapping[str, Any] = MappingProxyType({})) -> None:
        super().__init__(message)
        self.details = dict(details)


class State(StrEnum):
    RUNNING = "running"
    NOT_RUNNING = "not_running"
    ERROR = "error"


@dataclass(frozen=True)
class ProbeCheck:
    """One probe a monitor ran: its name, result, why it failed, how long it took."""

    probe: str
    ok: bool
    reason: str
    duration: float

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "ok": self.ok,
            "reason": self.reason,
            "duration": round(self.duration, 4),
        }


@dataclass(frozen=True)
class ResourceState:
    state: State
    reason: str = ""
    probes: tuple[ProbeCheck, ...] = ()
    """The probes the monitor ran to tell, in order (a service's; it stops at the first that
    fails), for people: the web console shows them."""

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"state": str(self.state), "reason": self.reason}
        if self.probes:
            found["probes"] = [p.to_json() for p in self.probes]
        return found


RUNNING = ResourceState(State.RUNNING)


@dataclass(frozen=True)
class Change:
    """What a start or stop did: ``changed`` is False when the resource already was as asked."""

    changed: bool
    message: str
    """For people (the journal, the logs): ``mounted /dev/loop3 on /srv/php4``."""
    remark: str = ""
    """What the outcome of the whole action should tell as well (a mount that waited for MMP)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Data about what was done (JSON-ready), passed into the action's outcome."""

    def __str__(self) -> str:
        return self.message


class Resource(abc.ABC):
    """One idempotent, verified step of a group (its undo is the opposite action)."""

    kind: ClassVar[str]
    start_verifies: ClassVar[bool] = False
    """``_start`` returns only once the resource is proven up (no second monitor needed)."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """``volume /srv/php4``, ``vip 10.0.0.41/24``, ``service apache-php4``."""

    @property
    @abc.abstractmethod
    def start_timeout(self) -> float: ...

    @property
    @abc.abstractmethod
    def stop_timeout(self) -> float: ...

    def __str__(self) -> str:
        return self.name

    @abc.abstractmethod
    def monitor(self) -> ResourceState:
        """What the resource is now; never raises."""

    @abc.abstractmethod
    def _start(self, deadline: Deadline, current: ResourceState) -> str | Change:
        """Bring the resource up from ``current`` (not running, or error); raise ResourceError.
        A sentence of what it did, or the whole :class:`Change` when it has more to say."""

    @abc.abstractmethod
    def _stop(self, deadline: Deadline) -> str:
        """Take the resource down by any means (it is known to be present); raise ResourceError."""

    def preflight(self) -> None:
        """Raise :class:`ResourceError` when starting this resource now would be refused; runs
        before any resource of the group starts, so a refusal leaves nothing to roll back."""
        return  # nothing to check by default

    def start(self) -> Change:
        current = self.monitor()
        if current.running:
            return Change(changed=False, message=f"{self.name} already running")
        started = self._start(Deadline(self.start_timeout), current)
        done = started if isinstance(started, Change) else Change(changed=True, message=started)
        if self.start_verifies:
            return done
        after = self.monitor()
        if not after.running:
            raise ResourceError(
                f"{self.name} not running after start: {after.reason or after.state}"
            )
        return done

    def present(self) -> bool:
        """Whether anything of the resource is there to stop (subclasses may answer cheaper)."""
        return self.monitor().state is not State.NOT_RUNNING

    def stop(self) -> Change:
        if not self.present():
            return Change(changed=False, message=f"{self.name} already stopped")
        done = Change(changed=True, message=self._stop(Deadline(self.stop_timeout)))
        after = self.monitor()
        if after.state is not State.NOT_RUNNING:
            raise ResourceError(
                f"{self.name} still present after stop: {after.reason or after.state}"
            )
        return done
