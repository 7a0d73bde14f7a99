"""Freezing a daemon with SIGSTOP, and knowing when the freeze has taken hold.

A stop is asynchronous: ``kill`` returns once the signal is queued, and until the thread the
kernel picked acts on it, the other threads of a multi-threaded server (slapd, smbd's workers,
mariadbd) keep answering.  A fault that says "the server is frozen", and a test that asserts "a
frozen server fails the probe", must wait until every thread is in state T, or the probe that
runs next can still get an answer (it did, in CI: slapd answered a bind 1.5 ms after its
SIGSTOP).  The lab's hang faults and the tests freeze through this one module.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from gardien.node import liveness
from gardien.polling import wait_until

_PGRP = 2
"""Index of field 5 (pgrp) among the fields after the command name of /proc/PID/stat."""


def _threads_stopped(proc: Path) -> bool:
    """Every thread of the process at ``proc`` is stopped (or gone: nothing of it can answer)."""
    with contextlib.suppress(OSError):
        for task in (proc / "task").iterdir():
            with contextlib.suppress(OSError):
                thread = liveness.parse_stat(int(task.name), (task / "stat").read_text())
                if thread is not None and thread.alive and not thread.stopped:
                    return False
    return True


def _in_group(proc: Path, pgrp: int) -> bool:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[_PGRP]) == pgrp
    return False


def all_stopped(pid: int, *, group: bool) -> bool:
    """Every thread of ``pid`` (or of every process of process group ``pid``) is stopped."""
    if not group:
        return _threads_stopped(liveness.PROC / str(pid))
    return all(
        _threads_stopped(proc)
        for proc in liveness.PROC.iterdir()
        if proc.name.isdigit() and _in_group(proc, pid)
    )


def freeze(pid: int, *, group: bool = False, timeout: float = 10.0) -> None:
    """SIGSTOP ``pid`` (``group``: its process group) and return once every thread is stopped."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, signal.SIGSTOP)
        else:
            os.kill(pid, signal.SIGSTOP)
    if not wait_until(lambda: all_stopped(pid, group=group), timeout, interval=0.005):
        raise TimeoutError(f"pid {pid} not stopped {timeout} s after SIGSTOP")


def thaw(pid: int, *, group: bool = False) -> None:
    """SIGCONT; a process already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, signal.SIGCONT)
        else:
            os.kill(pid, signal.SIGCONT)
