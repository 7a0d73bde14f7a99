"""Process probe: the service's master process and its workers, judged by their /proc state.

The master is found by pid file or by a command-line regex.  Liveness is the process's state in
/proc (:mod:`gardien.node.liveness`, which the failover engine reads too), never ``kill -0``: a
killed daemon whose parent has not reaped it yet is a zombie that still answers ``kill -0``.  When
both a pid file and a pattern are given, the pid file's process must match the pattern, so a pid
reused by another program after a crash is not taken for the service.

Failures it tells apart: no master; master dead but not reaped (zombie); master stopped (SIGSTOP,
state T); master alive but its workers gone (fewer running children than ``min_children``); every
worker stopped.  Zombie and stopped descendants are always counted in the values.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from gardien.node import liveness
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import Regex

_TRACED = "t"
_DEAD_STATES = {"Z": "zombie", "X": "dead", "x": "dead"}
"""How a dead master's state reads in a reason."""


class ProcessParams(ProbeParams):
    pidfile: str | None = Field(None, pattern=r"^/")
    """File holding the master's pid."""
    cmdline: Regex | None = None
    """Regex searched in the command line (arguments joined by spaces)."""
    min_children: int = Field(0, ge=0)
    """Fewer running (not stopped, not zombie) descendants than this fails the probe."""

    @model_validator(mode="after")
    def _how_to_find(self) -> Self:
        if self.pidfile is None and self.cmdline is None:
            raise ValueError("give 'pidfile' or 'cmdline' (or both)")
        return self


class _NotFoundError(Exception):
    """No master process: the message says why."""


@register
class ProcessProbe(Probe[ProcessParams]):
    kind = "process"
    params_model = ProcessParams
    values = {  # noqa: RUF012 - ClassVar of the base
        "processes": "Live processes of the service: the master and its descendants, no zombies.",
        "children": "Live descendants of the master (workers), stopped ones included.",
        "zombies": "Zombie processes among the master and its descendants.",
        "stopped": "Stopped (state T) processes among the master and its descendants.",
        "master_alive": "1 when the master process exists and is not a zombie.",
    }

    def __init__(self, params: ProcessParams) -> None:
        super().__init__(params)
        self._pattern = re.compile(params.cmdline) if params.cmdline else None
        self._master: liveness.Process | None = None
        """The master the last command-line scan found (pid and start time name it)."""

    def check(self, timeout: float) -> ProbeResult:
        none = {"processes": 0, "children": 0, "zombies": 0, "stopped": 0, "master_alive": 0}
        try:
            master = self._find_master(time.monotonic() + timeout)
        except _NotFoundError as exc:
            return ProbeResult.failure(str(exc), **none)
        now = liveness.read(master.pid)
        if now is None or now.started != master.started:
            return ProbeResult.failure("master process exited during the check", **none)
        return self._judge(master, liveness.tree(master))

    def _judge(self, master: liveness.Process, descendants: list[liveness.Process]) -> ProbeResult:
        live = [p for p in descendants if p.alive]
        running = [p for p in live if not p.stopped]
        everyone = [master, *descendants]
        values = {
            "processes": len(live) + master.alive,
            "children": len(live),
            "zombies": sum(p.state == "Z" for p in everyone),
            "stopped": sum(p.stopped for p in everyone),
            "master_alive": int(master.alive),
        }
        pid, minimum = master.pid, self.params.min_children
        if not master.alive:
            reason = f"master pid {pid} is dead ({_DEAD_STATES[master.state]}), not yet reaped"
        elif master.stopped:
            how = "traced" if master.state == _TRACED else "state T"
            reason = f"master pid {pid} is stopped ({how})"
        elif live and not running:
            reason = f"master pid {pid} alive but all {len(live)} workers stopped"
        elif len(running) < minimum and not live:
            reason = f"master pid {pid} alive but workers gone: 0 children, {minimum} expected"
        elif len(running) < minimum:
            reason = (
                f"master pid {pid} alive but only {len(running)} workers running,"
                f" {minimum} expected ({len(live) - len(running)} stopped)"
            )
        else:
            return ProbeResult.success(**values)
        return ProbeResult.failure(reason, **values)

    def _find_master(self, deadline: float) -> liveness.Process:
        if self.params.pidfile:
            return self._from_pidfile(Path(self.params.pidfile))
        return self._from_cmdline(deadline)

    def _from_pidfile(self, pidfile: Path) -> liveness.Process:
        try:
            text = pidfile.read_text().strip()
        except FileNotFoundError:
            raise _NotFoundError(f"no pid file {pidfile}") from None
        except OSError as exc:
            raise _NotFoundError(f"pid file {pidfile}: {exc.strerror}") from None
        if not text.isdigit():
            raise _NotFoundError(f"pid file {pidfile} holds no pid")
        proc = liveness.read(int(text))
        if proc is None:
            raise _NotFoundError(f"pid {text} of {pidfile} is not running")
        if self._pattern and proc.alive:
            command = liveness.cmdline(proc.pid)
            if not self._pattern.search(command):
                raise _NotFoundError(
                    f"pid {text} of {pidfile} is not the service (runs {command[:80]!r}):"
                    " stale pid file, pid reused"
                )
        return proc

    def _from_cmdline(self, deadline: float) -> liveness.Process:
        """The oldest matching process whose parent does not match (the master, not a worker).

        The master the last scan found is that answer still while it matches and its parent does
        not: every process started since is younger, and a worker that lost its matching parent
        is younger than that parent's master.  Only when it is gone is every command line read
        again (issue 14: a scan of the node's processes per check)."""
        assert self._pattern is not None
        if self._master is not None:
            now = self._still_master(self._master, self._pattern)
            if now is not None:
                return now
        self._master = None
        matching = {p.pid: p for p in liveness.matching(self._pattern)}
        if time.monotonic() > deadline:
            raise _NotFoundError("timeout while scanning the process table")
        masters = [p for p in matching.values() if p.ppid not in matching]
        if not masters:
            raise _NotFoundError(f"no process matches {self.params.cmdline!r}")
        self._master = min(masters, key=lambda p: p.started)
        return self._master

    @staticmethod
    def _still_master(
        master: liveness.Process, pattern: re.Pattern[str]
    ) -> liveness.Process | None:
        """``master`` read now, if it still matches (a dead process has no command line) and its
        parent does not (:func:`liveness.matching` never counts this process)."""
        now = liveness.read(master.pid)
        if now is None or now.started != master.started:
            return None
        if not pattern.search(liveness.cmdline(now.pid)):
            return None
        parent_matches = now.ppid != os.getpid() and bool(
            pattern.search(liveness.cmdline(now.ppid))
        )
        return None if parent_matches else now
