"""Network namespaces and the machines in them: the one copy of this plumbing, for the lab and the
tests (``tests/support/netns.py`` builds on it).

A *machine* is a network namespace plus a *holder*: a ``sleep infinity`` started inside that netns
which owns a private mount and UTS namespace.  Commands run "on" the machine through
``nsenter -t HOLDER -m -u -n`` so they see its mounts (``ip netns exec`` would make a fresh mount
namespace per call: docs/lab.md section 3).  A *switch* is a bridge in a namespace of its own;
machines plug into it with veth pairs.

Network safety: the lab and the tests each use a supernet that exists only inside the namespaces
they make; while those exist the root namespace holds an ``unreachable`` route for it
(:func:`guard`), so a command run outside a namespace by mistake fails at once.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import signal
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gardien.errors import GardienError
from gardien.polling import wait_until

GUARD_METRIC = "4000"
"""Metric of the guard routes: above any route a test or an operator would add by hand."""


class LabError(GardienError):
    """The lab (or a test's namespaces) could not be built, used or removed."""


def run(
    argv: Sequence[str], check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command of the plumbing; a failure raises :class:`LabError` with its stderr.
    ``input``: what the command reads on stdin (nothing by default)."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)}: no answer within {timeout:g} s") from exc
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


# -- the root namespace's guard ----------------------------------------------------------------


def guard(supernet: ipaddress.IPv4Network) -> None:
    """Root namespace: an ``unreachable`` route for ``supernet`` (idempotent)."""
    run(["ip", "route", "replace", "unreachable", str(supernet), "metric", GUARD_METRIC])


def unguard(supernet: ipaddress.IPv4Network) -> None:
    run(["ip", "route", "del", "unreachable", str(supernet), "metric", GUARD_METRIC], check=False)


# -- namespaces --------------------------------------------------------------------------------


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def netns_exists(name: str) -> bool:
    return netns_inode(name) is not None


def add_netns(name: str, tag: str = "") -> int:
    """Create the namespace ``name`` with its loopback up; returns its inode.

    ``tag`` goes on its loopback as the link alias: a mark inside the namespace itself, so that
    whoever made it can tell it later from a namespace someone else made under the same name
    (an inode number can be reused once a namespace is gone)."""
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    if tag:
        run(["ip", "-n", name, "link", "set", "lo", "alias", tag])
    inode = netns_inode(name)
    if inode is None:
        raise LabError(f"network namespace {name} vanished as it was made")
    return inode


def netns_tag(name: str) -> str:
    """The alias of the namespace's loopback (see :func:`add_netns`); empty when it has none."""
    out = run(["ip", "-n", name, "-o", "link", "show", "lo"], check=False).stdout
    words = out.split()
    return words[words.index("alias") + 1] if "alias" in words else ""


def delete_netns(name: str) -> None:
    run(["ip", "netns", "del", name], check=False)


def link_exists(netns: str, ifname: str) -> bool:
    return run(["ip", "-n", netns, "link", "show", ifname], check=False).returncode == 0


def add_bridge(netns: str, bridge: str = "br0") -> None:
    """A bridge (the switch itself) in ``netns``, up (idempotent)."""
    if not link_exists(netns, bridge):
        run(["ip", "-n", netns, "link", "add", bridge, "type", "bridge"])
    run(["ip", "-n", netns, "link", "set", bridge, "up"])


def plug(  # noqa: PLR0917 - the two ends of the cable, in the order they are plugged
    switch_netns: str,
    port: str,
    netns: str,
    ifname: str,
    address: ipaddress.IPv4Interface,
    bridge: str = "br0",
) -> None:
    """A veth pair from the switch's bridge (``port``) to ``netns`` (``ifname`` with ``address``),
    both ends up.  Idempotent: an existing ``ifname`` is kept, its address replaced."""
    if not link_exists(netns, ifname):
        run(["ip", "-n", switch_netns, "link", "del", port], check=False)
        run(
            [
                *("ip", "-n", switch_netns, "link", "add", port, "type", "veth"),
                *("peer", "name", ifname, "netns", netns),
            ]
        )
    run(["ip", "-n", switch_netns, "link", "set", port, "master", bridge, "up"])
    run(["ip", "-n", netns, "addr", "replace", str(address), "dev", ifname])
    run(["ip", "-n", netns, "link", "set", ifname, "up"])


def set_links(netns: str, up: bool, names: Iterable[str]) -> None:
    """Each existing link of ``names`` in ``netns`` up or down."""
    for ifname in names:
        if link_exists(netns, ifname):
            run(["ip", "-n", netns, "link", "set", ifname, "up" if up else "down"])


# -- holders -----------------------------------------------------------------------------------


def start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat`` (clock ticks after boot): with the pid, it names one
    process for good, since a pid can be reused once its process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie waiting for its reaper counts as gone: docs/lab.md section 9.8)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@dataclass(frozen=True)
class Holder:
    """The process owning a machine's mount and UTS namespaces, by pid and start time."""

    pid: int
    started: int
    """:func:`start_time` of the process when it was made."""

    def runs_in(self, netns: str) -> bool:
        """This very process is alive, still ``sleep``, in network namespace ``netns``."""
        try:
            argv0 = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")[0]
            ns_inode = os.stat(f"/proc/{self.pid}/ns/net").st_ino
        except OSError:
            return False
        return (
            argv0.endswith(b"sleep")
            and alive(self.pid)
            and start_time(self.pid) == self.started
            and ns_inode == netns_inode(netns)
        )

    def prefix(self) -> list[str]:
        """argv prefix that runs a command on the machine (its net, mount and UTS namespaces)."""
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "--"]

    def mount_ns(self) -> str:
        return os.readlink(f"/proc/{self.pid}/ns/mnt")


def start_holder(netns: str, hostname: str, timeout: float = 30.0) -> Holder:
    """Start a holder in ``netns`` with host name ``hostname``, detached (own session: it
    outlives its starter); returns once it *is* ``sleep`` in a mount namespace of its own (a
    loaded machine may take seconds to run ip, unshare, sh and sleep in turn)."""
    proc = subprocess.Popen(
        [
            *("ip", "netns", "exec", netns, "unshare", "-m", "-u", "--propagation", "slave"),
            *("sh", "-c", f"hostname {hostname}; exec sleep infinity"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ours = os.readlink("/proc/self/ns/mnt")

    def ready() -> bool:
        started = start_time(proc.pid)
        holder = Holder(proc.pid, started or 0)
        with contextlib.suppress(OSError):
            return started is not None and holder.runs_in(netns) and holder.mount_ns() != ours
        return False

    if not wait_until(lambda: ready() or proc.poll() is not None, timeout) or not ready():
        proc.kill()
        raise LabError(f"the holder of {hostname} in {netns} did not start")
    return Holder(proc.pid, start_time(proc.pid) or 0)


# -- processes of a machine --------------------------------------------------------------------


def pids_in_mount_ns(ns_link: str) -> set[int]:
    """Every process whose mount namespace is ``ns_link`` (``mnt:[INODE]``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == ns_link:
                    found.add(int(entry.name))
    return found


def pids_in_netns(netns: str) -> set[int]:
    if not netns_exists(netns):
        return set()
    out = run(["ip", "netns", "pids", netns], check=False).stdout
    return {int(p) for p in out.split() if p.isdigit()}


def kill_all(find: Callable[[], Iterable[int]], grace: float = 3.0) -> list[int]:
    """TERM (after CONT: a stopped process acts on TERM only then), then KILL, every process
    ``find`` answers, asking again after each signal (children started meanwhile are found
    too).  ``grace=0`` goes to KILL at once.  Returns the pids still alive (empty: all gone)."""
    signals = [(signal.SIGTERM, grace)] if grace > 0 else []
    for sig, wait in [*signals, (signal.SIGKILL, 3.0)]:
        pids = [p for p in find() if p != os.getpid()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, sig)
        wait_until(functools.partial(_all_gone, pids), wait)
    return [p for p in find() if p != os.getpid() and alive(p)]


def _all_gone(pids: Iterable[int]) -> bool:
    return not any(alive(p) for p in pids)


def wait_exit(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` exits within ``timeout`` seconds."""
    return wait_until(functools.partial(_all_gone, (pid,)), timeout)
