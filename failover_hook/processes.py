"""Finding, judging and ending the processes of a service on this node.

Liveness is judged by ``/proc/PID/status`` State, never ``kill -0``: a killed daemon stays a zombie
that answers ``kill -0`` until its parent (often a slow PID 1) reaps it (LAB.md section 10).  The
hook makes itself a child subreaper so that daemons which detach from the commands it runs become
its children, and reaps them itself: :func:`alive` reaps the zombies it looks at, and
:func:`reap_orphans_until` the others (a daemon found by its command line, whose zombie has none).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

import psutil

from gardien.command_runner import own_children

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``prctl``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans() -> list[int]:
    """Reap the dead children this subreaper adopted; the runner's own commands stay its own."""
    reaped: list[int] = []
    with own_children() as ours:
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return reaped
        ours.intersection_update(c.pid for c in children)
        for child in children:
            with contextlib.suppress(psutil.Error):
                if child.pid not in ours and child.status() == psutil.STATUS_ZOMBIE:
                    _reap(child.pid)
                    reaped.append(child.pid)
    if reaped:
        log.debug("reaped adopted processes %s", reaped)
    return reaped


def reap_orphans_until(stop: threading.Event, interval: float = 5.0) -> None:
    """:func:`reap_orphans` every ``interval`` seconds until ``stop`` is set (a thread's loop)."""
    while not stop.wait(interval):
        reap_orphans()


def state(pid: int) -> str | None:
    """The one-letter State of ``pid`` (``R``, ``S``, ``T``, ``Z``...) or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except (OSError, IndexError):
        return None
    return None


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reaping it if it is our own zombie child)."""
    current = state(pid)
    if current in ("Z", "X"):
        _reap(pid)
        return False
    return current is not None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _same_netns(pid: int) -> bool:
    """A service process of *this node* shares our network namespace.

    On a real node this is every process; in the lab and the tests, where nodes are namespaces of
    one machine, it keeps node2's agent away from node1's daemons of the same name.  The mount
    namespace would be wrong here: systemd services often have a private one (PrivateTmp).
    """
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def pid_from_file(pidfile: str) -> int | None:
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid > 0 and alive(pid) and _same_netns(pid) else None


def matching(cmdline: str) -> list[int]:
    """Live processes of this node whose command line (joined by spaces) matches the regex."""
    pattern = re.compile(cmdline)
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        args = " ".join(proc.info.get("cmdline") or [])
        if proc.pid != me and pattern.search(args) and alive(proc.pid) and _same_netns(proc.pid):
            found.append(proc.pid)
    return found


def with_descendants(pids: Iterable[int]) -> set[int]:
    tree: set[int] = set()
    for pid in pids:
        tree.add(pid)
        with contextlib.suppress(psutil.Error):
            tree.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return {pid for pid in tree if alive(pid)}


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to each pid, SIGCONT first: a stopped process acts on TERM only after CONT."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sig != signal.SIGCONT:
                os.kill(pid, signal.SIGCONT)
            os.kill(pid, sig)
