"""Process probe: the service's master process and its workers, judged by their /proc state.

The master is found by pid file or by a command-line regex.  Liveness is the process's state in
/proc (psutil), never ``kill -0``: a killed daemon whose parent has not reaped it yet is a zombie
that still answers ``kill -0`` (LAB.md section 10).  When both a pid file and a pattern are given,
the pid file's process must match the pattern, so a pid reused by another program after a crash is
not taken for the service.

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

import psutil
from pydantic import Field, model_validator

from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import Regex

_STOPPED = frozenset({psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP})
_DEAD = frozenset({psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD})


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

    def check(self, timeout: float) -> ProbeResult:
        none = {"processes": 0, "children": 0, "zombies": 0, "stopped": 0, "master_alive": 0}
        try:
            master = self._find_master(time.monotonic() + timeout)
            master_state = master.status()
            states: list[str] = []
            for child in master.children(recursive=True):
                try:
                    states.append(child.status())
                except psutil.NoSuchProcess:
                    continue  # exited meanwhile
        except _NotFoundError as exc:
            return ProbeResult.failure(str(exc), **none)
        except psutil.NoSuchProcess:
            return ProbeResult.failure("master process exited during the check", **none)
        except psutil.Error as exc:
            return ProbeResult.failure(f"cannot read the process: {exc}", **none)
        return self._judge(master.pid, master_state, states)

    def _judge(self, pid: int, master_state: str, states: list[str]) -> ProbeResult:
        live = [s for s in states if s not in _DEAD]
        running = [s for s in live if s not in _STOPPED]
        master_alive = master_state not in _DEAD
        values = {
            "processes": len(live) + master_alive,
            "children": len(live),
            "zombies": sum(s == psutil.STATUS_ZOMBIE for s in [master_state, *states]),
            "stopped": sum(s in _STOPPED for s in [master_state, *states]),
            "master_alive": int(master_alive),
        }
        minimum = self.params.min_children
        if not master_alive:
            reason = f"master pid {pid} is dead ({master_state}), not yet reaped"
        elif master_state in _STOPPED:
            how = "traced" if master_state == psutil.STATUS_TRACING_STOP else "state T"
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

    def _find_master(self, deadline: float) -> psutil.Process:
        if self.params.pidfile:
            return self._from_pidfile(Path(self.params.pidfile))
        return self._from_cmdline(deadline)

    def _from_pidfile(self, pidfile: Path) -> psutil.Process:
        try:
            text = pidfile.read_text().strip()
        except FileNotFoundError:
            raise _NotFoundError(f"no pid file {pidfile}") from None
        except OSError as exc:
            raise _NotFoundError(f"pid file {pidfile}: {exc.strerror}") from None
        if not text.isdigit():
            raise _NotFoundError(f"pid file {pidfile} holds no pid")
        try:
            proc = psutil.Process(int(text))
            if self._pattern and proc.status() not in _DEAD:
                command = " ".join(proc.cmdline())
                if not self._pattern.search(command):
                    raise _NotFoundError(
                        f"pid {text} of {pidfile} is not the service (runs {command[:80]!r}):"
                        " stale pid file, pid reused"
                    )
        except psutil.NoSuchProcess:
            raise _NotFoundError(f"pid {text} of {pidfile} is not running") from None
        return proc

    def _from_cmdline(self, deadline: float) -> psutil.Process:
        """The oldest matching process whose parent does not match (the master, not a worker)."""
        assert self._pattern is not None
        me = os.getpid()
        matching: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["cmdline", "ppid", "create_time"]):
            if time.monotonic() > deadline:
                raise _NotFoundError("timeout while scanning the process table")
            command = " ".join(proc.info["cmdline"] or ())
            if proc.pid != me and command and self._pattern.search(command):
                matching[proc.pid] = proc
        masters = [p for p in matching.values() if p.info["ppid"] not in matching]
        if not masters:
            raise _NotFoundError(f"no process matches {self.params.cmdline!r}")
        return min(masters, key=lambda p: p.info["create_time"])
