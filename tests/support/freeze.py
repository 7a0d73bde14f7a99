"""Freezing a test's daemon with SIGSTOP, and knowing when the freeze has taken hold.

A stop is asynchronous: ``kill`` returns once the signal is queued, and until the thread the
kernel picked acts on it, the other threads of a multi-threaded server (slapd, smbd's workers,
mariadbd) keep answering.  A test that asserts "a frozen server fails the probe" must wait until
every thread is in state T, or the probe it runs next can still get an answer (it did, in CI:
slapd answered a bind 1.5 ms after its SIGSTOP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _stat(path: Path) -> tuple[str, int]:
    """State letter and process group of a /proc/PID[/task/TID]/stat file."""
    fields = path.read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def _threads_stopped(proc: Path) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return all(_stat(task / "stat")[0] in "tTZX" for task in (proc / "task").iterdir())
    return True  # gone: nothing of it can answer


def all_stopped(pid: int, *, group: bool) -> bool:
    """Every thread of ``pid`` (or of every process of process group ``pid``) is stopped."""
    if not group:
        return _threads_stopped(Path("/proc") / str(pid))
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if _stat(proc / "stat")[1] == pid and not _threads_stopped(proc):
                return False
    return True


def freeze(pid: int, *, group: bool = False, timeout: float = 10.0) -> None:
    """SIGSTOP ``pid`` (``group``: its process group) and return once every thread is stopped."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, signal.SIGSTOP)
        else:
            os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not all_stopped(pid, group=group):
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid} not stopped {timeout} s after SIGSTOP")
        time.sleep(0.005)


def thaw(pid: int, *, group: bool = False) -> None:
    """SIGCONT; a process already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, signal.SIGCONT)
        else:
            os.kill(pid, signal.SIGCONT)
