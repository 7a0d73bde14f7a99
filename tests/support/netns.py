"""Network namespaces and "nodes" (netns + private mount/UTS namespace) created by the tests, on
the lab's plumbing (:mod:`gardien_lab.netns`): unique names, a subnet of their own per switch.

Network safety: every address a test uses is inside ``TEST_SUPERNET``, which only exists inside
namespaces these helpers create.  While any test namespace exists, the root namespace holds an
``unreachable`` route for the whole supernet, so a command run outside a namespace by mistake fails
at once instead of leaving the machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from gardien_lab import netns

TEST_SUPERNET = ipaddress.IPv4Network("10.213.0.0/16")
_subnets = itertools.count((os.getpid() % 200) + 1)


def run(
    argv: Sequence[str], check: bool = True, timeout: float = 30, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        list(argv), check=check, timeout=timeout, capture_output=True, text=True, **kwargs
    )


def have_root_and_netns() -> bool:
    return (
        os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("nsenter") is not None
    )


def guard_supernet() -> None:
    """Install the root-namespace ``unreachable`` route for the test supernet (idempotent)."""
    netns.guard(TEST_SUPERNET)


def new_subnet() -> ipaddress.IPv4Network:
    """A /24 of the test supernet not used by this process before."""
    index = next(_subnets) % 256
    return ipaddress.IPv4Network(f"10.213.{index}.0/24")


def unique(prefix: str) -> str:
    """A short unique name (interface names are limited to 15 characters)."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


class Node:
    """A network namespace plus a holder process that owns a private mount and UTS namespace.

    Commands run "on the node" through ``nsenter -t HOLDER -m -u -n`` so they see the node's
    mounts (``ip netns exec`` would create a fresh mount namespace per call, docs/lab.md section 3).
    """

    def __init__(self, name: str, hostname: str | None = None) -> None:
        self.name = name
        self.netns = unique(f"gt{name[:4]}")
        netns.add_netns(self.netns)
        self._holder = netns.start_holder(self.netns, hostname or name)
        self.pid = self._holder.pid

    def prefix(self) -> list[str]:
        """argv prefix that runs a command on this node."""
        return self._holder.prefix()

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 30, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.prefix(), *argv], check=check, timeout=timeout, **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen([*self.prefix(), *argv], **kwargs)  # type: ignore[call-overload, no-any-return]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread in this node's network namespace, for an in-process client (a
        socket is born in its thread's namespace, and so is a thread started meanwhile)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            enter_netns(f"/proc/{self.pid}/ns/net")
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)

    def mount_ns(self) -> Path:
        return Path(f"/proc/{self.pid}/ns/mnt").resolve()

    def processes(self) -> list[int]:
        """Every process in this node's mount namespace except the holder."""
        return sorted(netns.pids_in_mount_ns(self._holder.mount_ns()) - {self.pid})

    def mounts(self) -> str:
        return Path(f"/proc/{self.pid}/mounts").read_text()

    def destroy(self) -> None:
        netns.kill_all(self.processes)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # this process started it: reap it
            os.waitpid(self.pid, 0)
        netns.delete_netns(self.netns)


_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)  # Python 3.11 has no os.setns
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns({fd}) into a network namespace")


def enter_netns(path: str) -> None:
    """Move the calling thread (only it: a network namespace is a thread's) into the network
    namespace at ``path`` (``/proc/PID/ns/net``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


class Switch:
    """A bridge in its own namespace; nodes plug into it with veth pairs (one L2 segment)."""

    def __init__(self) -> None:
        guard_supernet()
        self.netns = unique("gtsw")
        netns.add_netns(self.netns)
        netns.add_bridge(self.netns)
        self.subnet = new_subnet()
        self._hosts = iter(self.subnet.hosts())
        self._ports = itertools.count(1)

    def next_address(self) -> ipaddress.IPv4Address:
        return next(self._hosts)

    def plug(
        self, node: Node, ifname: str = "eth0", address: ipaddress.IPv4Address | None = None
    ) -> ipaddress.IPv4Interface:
        """Connect ``node`` to the switch as ``ifname`` with an address of the switch's subnet."""
        port = f"p{next(self._ports)}{uuid.uuid4().hex[:6]}"
        iface = ipaddress.IPv4Interface(f"{address or self.next_address()}/{self.subnet.prefixlen}")
        netns.plug(self.netns, port, node.netns, ifname, iface)
        return iface

    def destroy(self) -> None:
        netns.delete_netns(self.netns)


@contextlib.contextmanager
def nodes(*names: str) -> Iterator[tuple[Switch, list[Node]]]:
    """A switch with one node per name plugged in as eth0; everything removed afterwards."""
    switch = Switch()
    made: list[Node] = []
    try:
        for name in names:
            node = Node(name)
            made.append(node)
            switch.plug(node)
        yield switch, made
    finally:
        for node in made:
            node.destroy()
        switch.destroy()
