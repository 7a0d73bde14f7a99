"""Service resource: a daemon of the group, started by a command or a systemd unit.

Start runs the command detached (own session; it may daemonize or stay in the foreground as the
daemon) and waits until every probe of the service passes (the probes of :mod:`gardien.probes`,
which the exporter runs too), so "started" means "answers".  Stop is a force operation: the stop
command (or TERM), then TERM and KILL for what is left of the process tree found by the
``process`` spec (pidfile or command line; liveness as :mod:`failover_hook.processes` judges it),
with SIGCONT first because a stopped process acts on TERM only after CONT (docs/lab.md section 7).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from failover_hook import processes
from failover_hook.resources.base import (
    ProbeCheck,
    Resource,
    ResourceError,
    ResourceState,
    State,
)
from failover_hook.resources.registry import BuildContext, register
from gardien.command_runner import CommandRunner, kill_group
from gardien.config.model import GroupConfig, GroupServiceConfig
from gardien.polling import Deadline, pauses, wait_until
from gardien.probes.registry import build_probe

log = logging.getLogger(__name__)

_POLL = 0.1
_KILL_WAIT = 5.0
"""How long SIGKILLed processes may take to vanish (longer means stuck in the kernel: D state)."""


class Service(Resource):
    kind = "service"
    start_verifies = True  # start ends only once every probe of the service passed

    def __init__(
        self, config: GroupServiceConfig, runner: CommandRunner, log_file: Path | None = None
    ) -> None:
        super().__init__(runner)
        self.config = config
        self.log_file = log_file

    @property
    def name(self) -> str:
        return f"service {self.config.name}"

    @property
    def start_timeout(self) -> float:
        return self.config.start_timeout

    @property
    def stop_timeout(self) -> float:
        return self.config.stop_timeout

    # -- what runs -----------------------------------------------------------------------------

    def _spec(self, key: str) -> str | None:
        """``pidfile`` or ``cmdline`` of the service's ``process`` spec."""
        params = self.config.process.params if self.config.process else None
        value = getattr(params, key, None)
        return str(value) if value else None

    def pids(self) -> set[int]:
        """The live process tree of the service (empty without a ``process`` spec)."""
        if self.config.process is None:
            return set()
        pidfile, cmdline = self._spec("pidfile"), self._spec("cmdline")
        roots: list[int] = []
        if pidfile:
            pid = processes.pid_from_file(pidfile)
            if pid is not None and (not cmdline or pid in processes.matching(cmdline)):
                roots.append(pid)
        elif cmdline:
            roots = processes.matching(cmdline)
        return processes.with_descendants(roots)

    def _probe_failure(self, budget: float) -> str | None:
        """The first failing probe as ``probe http failed: reason``, or None when all pass."""
        return self._probes(budget)[1]

    def _probes(self, budget: float) -> tuple[tuple[ProbeCheck, ...], str | None]:
        """The probes run until the first that fails, and its failure (None: all pass)."""
        checks = []
        for spec in self.config.all_probes:
            result = build_probe(spec.kind, spec.params).run(budget)
            reason = result.reason or ("" if result.ok else "no reason given")
            checks.append(ProbeCheck(spec.name, result.ok, reason, result.duration))
            if not result.ok:
                return tuple(checks), f"probe {spec.name} failed: {reason}"
        return tuple(checks), None

    def _unit_active(self) -> bool:
        assert self.config.unit
        return self.runner.run(
            ["systemctl", "is-active", "--quiet", self.config.unit], timeout=10
        ).ok

    def present(self) -> bool:
        if self.config.process is not None:
            return bool(self.pids())
        return super().present()

    def monitor(self) -> ResourceState:
        if self.config.process is not None:
            if not self.pids():
                return ResourceState(State.NOT_RUNNING, f"no process of {self.config.name}")
        elif self.config.unit and not self._unit_active():
            return ResourceState(State.NOT_RUNNING, f"unit {self.config.unit} not active")
        checks, failure = self._probes(self.start_timeout)
        if failure is None:
            return ResourceState(State.RUNNING, probes=checks)
        known_running = self.config.process is not None or self.config.unit
        state = State.ERROR if known_running else State.NOT_RUNNING
        return ResourceState(state, failure, checks)

    # -- start ---------------------------------------------------------------------------------

    def _start(self, deadline: Deadline, current: ResourceState) -> str:
        proc: subprocess.Popen[bytes] | None = None
        program = ""
        if current.state is State.ERROR:  # its processes or unit are there: wait for its probes
            log.info("%s: already there (%s), waiting for its probes", self.name, current.reason)
        elif self.config.unit:
            result = self.runner.run(
                ["systemctl", "start", self.config.unit], timeout=deadline.left(1)
            )
            if not result.ok:
                raise ResourceError(f"start of {self.config.name} failed: {result.describe()}")
        elif self.config.start:
            self._remove_stale_pidfile()
            program = self.config.start[0]
            proc = self.runner.spawn(self.config.start, self.log_file)
        else:
            raise ResourceError(f"{self.config.name} has neither a start command nor a unit")
        failure = "not checked"
        for pause in pauses(_POLL):
            if proc is not None and proc.poll() not in (None, 0):
                exited = f"{program} exited {proc.returncode}{self._log_tail()}"
                raise ResourceError(f"start of {self.config.name} failed: {exited}")
            found = self._probe_failure(max(deadline.left(), 0.1))
            if found is None:
                return f"started {self.config.name}"
            failure = found
            if deadline.passed:
                break
            time.sleep(min(pause, deadline.left()))
        if proc is not None and proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        raise ResourceError(f"{failure} (after {self.start_timeout:g} s)")

    def _remove_stale_pidfile(self) -> None:
        """Remove a pid file naming a dead process (or a zombie a slow PID 1 did not reap yet).

        A crash or a fence leaves it on the volume, and daemons such as Apache then refuse to start
        ("already running").
        """
        pidfile = self._spec("pidfile")
        if pidfile and os.path.exists(pidfile) and processes.pid_from_file(pidfile) is None:
            log.info("%s: removing stale pid file %s", self.name, pidfile)
            with contextlib.suppress(OSError):
                os.unlink(pidfile)

    def _log_tail(self) -> str:
        if self.log_file is None:
            return ""
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1]}" if lines else ""

    # -- stop ----------------------------------------------------------------------------------

    def _stop(self, deadline: Deadline) -> str:
        started = time.monotonic()
        tree = self.pids()
        processes.signal_all(tree, signal.SIGCONT)
        note = ""
        if self.config.unit:
            result = self.runner.run(
                ["systemctl", "stop", self.config.unit], timeout=deadline.left(1)
            )
            note = "" if result.ok else f" ({result.describe()})"
        elif self.config.stop:
            result = self.runner.run(self.config.stop, timeout=deadline.left(1) / 2)
            note = "" if result.ok else f" ({result.describe()})"
        else:
            processes.signal_all(tree, signal.SIGTERM)
        if self.config.process is None:
            if note:
                raise ResourceError(f"stop of {self.config.name} failed{note}")
            return f"stopped {self.config.name}"
        term_at = Deadline(deadline.left() / 2)
        if wait_until(lambda: not self.pids(), term_at):
            return f"stopped {self.config.name}{note}"
        processes.signal_all(self.pids() | tree, signal.SIGTERM)
        if wait_until(lambda: not self.pids(), deadline):
            return f"stopped {self.config.name} with SIGTERM{note}"
        left = self.pids() | {pid for pid in tree if processes.alive(pid)}
        processes.signal_all(left, signal.SIGKILL)
        if wait_until(lambda: not any(processes.alive(pid) for pid in left), Deadline(_KILL_WAIT)):
            took = time.monotonic() - started
            return f"killed {self.config.name} after {took:.1f} s (stop timeout)"
        stuck = sorted(pid for pid in left if processes.alive(pid))
        states = ", ".join(f"{pid} ({processes.state(pid)})" for pid in stuck)
        raise ResourceError(f"{self.config.name}: processes still alive after SIGKILL: {states}")


@register("service")
def _build(group: GroupConfig, context: BuildContext) -> list[Resource]:
    return [
        Service(service, context.runner, context.log_dir / f"{service.name}.log")
        for service in group.services
    ]
