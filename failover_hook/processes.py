"""Finding, judging and ending the processes of a service on this node.

Liveness is :mod:`gardien.node.liveness` (the State in /proc, never ``kill -0``: a killed daemon
stays a zombie that answers ``kill -0`` until its parent reaps it).  The hook makes itself a child
subreaper so that daemons which detach from the commands it runs become its children, and reaps
them itself: :func:`alive` reaps the zombies it looks at, and :func:`reap_orphans_until` the others
(a daemon found by its command line, whose zombie has none).  A service's processes are those of
this node: in the lab and the tests, nodes are network namespaces of one machine.
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

from gardien.command_runner import own_children
from gardien.node import liveness

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
    me = os.getpid()
    with own_children() as ours:
        children = [p for p in liveness.all_processes() if p.ppid == me]
        ours.intersection_update(c.pid for c in children)
        for child in children:
            if child.pid not in ours and not child.alive:
                _reap(child.pid)
                reaped.append(child.pid)
    if reaped:
        log.debug("reaped adopted processes %s", reaped)
    return reaped


def dead_child() -> bool:
    """Whether a child of this process is dead and not reaped yet, asked of the kernel without
    reaping it (``waitid`` with ``WNOWAIT``: the runner's own commands stay its own to reap)."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # no child at all
        return False


def reap_orphans_until(stop: threading.Event, interval: float = 5.0) -> None:
    """:func:`reap_orphans` every ``interval`` seconds until ``stop`` is set (a thread's loop),
    when a child is dead: one system call while nothing died, where :func:`reap_orphans` reads
    every process of the node (what an idle hook would pay every five seconds for nothing)."""
    while not stop.wait(interval):
        if dead_child():
            reap_orphans()


def state(pid: int) -> str | None:
    """The one-letter State of ``pid`` (``R``, ``S``, ``T``, ``Z``...) or None if it is gone."""
    return liveness.state(pid)


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reaping it if it is our own zombie child)."""
    process = liveness.read(pid)
    if process is not None and not process.alive:
        _reap(pid)
        return False
    return process is not None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_from_file(pidfile: str) -> int | None:
    """The live process of this node a pid file names, or None."""
    pid = liveness.pid_in_file(Path(pidfile))
    return pid if pid is not None and alive(pid) and liveness.same_network_namespace(pid) else None


def matching(cmdline: str) -> list[int]:
    """Live processes of this node whose command line (joined by spaces) matches the regex."""
    return [
        p.pid
        for p in liveness.matching(re.compile(cmdline))
        if alive(p.pid) and liveness.same_network_namespace(p.pid)
    ]


def with_descendants(pids: Iterable[int]) -> set[int]:
    """``pids`` and their descendants, those alive (one reading of the process table)."""
    table = liveness.all_processes()
    tree = set(pids)
    for pid in list(tree):
        tree.update(p.pid for p in liveness.descendants(pid, table=table))
    return {pid for pid in tree if alive(pid)}


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to each pid, SIGCONT first: a stopped process acts on TERM only after CONT."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sig != signal.SIGCONT:
                os.kill(pid, signal.SIGCONT)
            os.kill(pid, sig)
