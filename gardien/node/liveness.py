"""Processes as /proc shows them: alive or not, stopped or not, and which process a pid names.

Liveness is the process's State in ``/proc/PID/stat``, never ``kill -0``: a killed daemon stays a
zombie that answers ``kill -0`` until its parent (often a slow PID 1) reaps it.
A pid names one process only together with its start time: after a crash the pid in a pid file, or
the parent pid of an old process, may belong to a newer process since, so a child older than its
parent is not taken for its child.  Every reader takes ``proc_root`` (tests point it at recorded
files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")

DEAD = frozenset({"Z", "X", "x"})
"""Zombie (dead, not reaped yet) and dead (being removed)."""
STOPPED = frozenset({"T", "t"})
"""Stopped by a signal (SIGSTOP) and stopped by a tracer."""

_STARTTIME = 19
"""Index of field 22 (starttime) among the fields after the command name of /proc/PID/stat."""


@dataclass(frozen=True)
class Process:
    """One process at one reading of /proc."""

    pid: int
    state: str
    """The one-letter State: ``R``, ``S``, ``D``, ``T``, ``t``, ``Z``..."""
    ppid: int
    started: int
    """Start time in clock ticks after boot: with the pid, it names this process and no other."""

    @property
    def alive(self) -> bool:
        return self.state not in DEAD

    @property
    def stopped(self) -> bool:
        return self.state in STOPPED


def parse_stat(pid: int, text: str) -> Process | None:
    """A ``/proc/PID/stat`` line (the command name, in parentheses, may hold anything)."""
    _comm, paren, rest = text.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) <= _STARTTIME:
        return None
    try:
        return Process(pid, fields[0], int(fields[1]), int(fields[_STARTTIME]))
    except ValueError:
        return None


def _read_file(path: str) -> bytes:
    """A whole /proc file by its path: a scrape reads dozens of them, and ``Path.read_text``
    (path objects, a text wrapper, a codec) costs ten times the read itself here."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 65536)]
        while chunks[-1]:
            chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks)


def read(pid: int, proc_root: Path = PROC) -> Process | None:
    """The process ``pid`` now; None when there is none."""
    try:
        data = _read_file(f"{proc_root}/{pid}/stat")
    except OSError:
        return None
    return parse_stat(pid, data.decode(errors="replace"))


def state(pid: int, proc_root: Path = PROC) -> str | None:
    """The one-letter State of ``pid``, or None if it is gone."""
    process = read(pid, proc_root)
    return process.state if process else None


def is_alive(pid: int, proc_root: Path = PROC) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    process = read(pid, proc_root)
    return process is not None and process.alive


def still_alive(process: Process, proc_root: Path = PROC) -> bool:
    """Whether that same process (pid and start time) is still alive, not a newer one on its pid."""
    now = read(process.pid, proc_root)
    return now is not None and now.started == process.started and now.alive


def all_processes(proc_root: Path = PROC) -> list[Process]:
    """Every process of the pid namespace /proc shows, zombies included."""
    found = []
    try:
        names = os.listdir(proc_root)
    except OSError:
        return []
    for name in names:
        if name.isdigit():
            process = read(int(name), proc_root)
            if process is not None:
                found.append(process)
    return found


def descendants(
    pid: int, proc_root: Path = PROC, table: Iterable[Process] | None = None
) -> list[Process]:
    """Children of ``pid``, theirs and so on (zombies included), from ``table`` (one reading of
    :func:`all_processes` when not given).  A child older than its parent is a leftover of an
    earlier process on that pid, not a descendant."""
    processes = list(all_processes(proc_root) if table is None else table)
    by_pid = {p.pid: p for p in processes}
    children: dict[int, list[Process]] = {}
    for process in processes:
        children.setdefault(process.ppid, []).append(process)
    found: list[Process] = []
    parents = [by_pid.get(pid)]
    while parents:
        parent = parents.pop()
        if parent is None:
            continue
        for child in children.get(parent.pid, []):
            if child.pid != parent.pid and child.started >= parent.started:
                found.append(child)
                parents.append(child)
    return found


def tree(process: Process, proc_root: Path = PROC) -> list[Process]:
    """The descendants of ``process``, as :func:`descendants` finds them, reading only the
    processes of its tree: the kernel lists each thread's children in ``task/TID/children``
    (a check of one service need not read every process of the node).  Where the kernel keeps no
    such lists (``CONFIG_PROC_CHILDREN`` off, or a recorded /proc), the whole table is read."""
    if not os.path.exists(f"{proc_root}/{process.pid}/task/{process.pid}/children"):
        return descendants(process.pid, proc_root)
    found: list[Process] = []
    parents = [process]
    while parents:
        parent = parents.pop()
        for pid in _children(parent.pid, proc_root):
            child = read(pid, proc_root)
            # read after the list: the pid may name a newer process since, not a child
            if child is None or child.ppid != parent.pid or child.started < parent.started:
                continue
            found.append(child)
            parents.append(child)
    return found


def _children(pid: int, proc_root: Path) -> list[int]:
    """Pids of the children of every thread of ``pid`` (none when it or its thread is gone)."""
    tasks = f"{proc_root}/{pid}/task"
    try:
        threads = os.listdir(tasks)
    except OSError:
        return []
    pids: list[int] = []
    for tid in threads:
        try:
            pids.extend(int(word) for word in _read_file(f"{tasks}/{tid}/children").split())
        except OSError:
            continue
    return pids


def cmdline(pid: int, proc_root: Path = PROC) -> str:
    """The command line, arguments joined by spaces (empty for zombies and kernel threads)."""
    try:
        data = _read_file(f"{proc_root}/{pid}/cmdline")
    except OSError:
        return ""
    return data.removesuffix(b"\0").replace(b"\0", b" ").decode(errors="replace")


def matching(pattern: re.Pattern[str], proc_root: Path = PROC) -> list[Process]:
    """Processes other than this one whose command line matches ``pattern`` (searched), in pid
    order; dead ones have no command line, so they never match."""
    me = os.getpid()
    found = []
    for process in sorted(all_processes(proc_root), key=lambda p: p.pid):
        if process.pid != me and pattern.search(cmdline(process.pid, proc_root)):
            found.append(process)
    return found


def pid_in_file(pidfile: Path) -> int | None:
    """The pid a pid file holds (its first word), or None when it holds none."""
    try:
        words = pidfile.read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    if not words or not words[0].isdigit() or int(words[0]) <= 0:
        return None
    return int(words[0])


def same_network_namespace(pid: int, proc_root: Path = PROC) -> bool:
    """Whether ``pid`` shares the network namespace of the reading process.

    On a real node this is every process; in the lab and the tests, where nodes are namespaces of
    one machine sharing one pid namespace, it tells one node's daemons from another's.  The mount
    namespace would be wrong here: systemd services often have a private one (PrivateTmp).
    """
    try:
        return os.readlink(proc_root / str(pid) / "ns" / "net") == os.readlink(
            proc_root / "self" / "ns" / "net"
        )
    except OSError:
        return False
