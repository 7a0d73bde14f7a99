"""Network namespaces and "nodes" (netns + private mount/UTS namespace) created by the tests.

Network safety: every address a test uses is inside ``TEST_SUPERNET``, which only exists inside
namespaces these helpers create.  While any test namespace exists, the root namespace holds an
``unreachable`` route for the whole supernet, so a command run outside a namespace by mistake fails
at once instead of leaving the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

TEST_SUPERNET = ipaddress.ip_network("10.213.0.0/16")
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
    run(["ip", "route", "replace", "unreachable", str(TEST_SUPERNET), "metric", "4000"])


def new_subnet() -> ipaddress.IPv4Network:
    """A /24 of the test supernet not used by this process before."""
    index = next(_subnets) % 256
    return ipaddress.ip_network(f"10.213.{index}.0/24")


def unique(prefix: str) -> str:
    """A short unique name (interface names are limited to 15 characters)."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


class Node:
    """A network namespace plus a holder process that owns a private mount and UTS namespace.

    Commands run "on the node" through ``nsenter -t HOLDER -m -u -n`` so they see the node's
    mounts (``ip netns exec`` would create a fresh mount namespace per call, LAB.md section 3).
    """

    def __init__(self, name: str, hostname: str | None = None) -> None:
        self.name = name
        self.netns = unique(f"gt{name[:4]}")
        run(["ip", "netns", "add", self.netns])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        self._holder = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                "unshare",
                "-m",
                "-u",
                "--propagation",
                "slave",
                "sh",
                "-c",
                f"hostname {hostname or name}; exec sleep infinity",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self._holder.pid
        # ip netns exec -> unshare -> sh all exec in turn: the holder is ready once it *is* sleep
        # (its argv, not just a command line that mentions it), in its own mount namespace; a
        # loaded machine may take seconds to run the four programs
        deadline = time.monotonic() + 30
        while Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":
            if time.monotonic() > deadline or self._holder.poll() is not None:
                raise RuntimeError(f"holder of {name} did not start")
            time.sleep(0.01)

    def prefix(self) -> list[str]:
        """argv prefix that runs a command on this node."""
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "--"]

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 30, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.prefix(), *argv], check=check, timeout=timeout, **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen([*self.prefix(), *argv], **kwargs)  # type: ignore[call-overload, no-any-return]

    def mount_ns(self) -> Path:
        return Path(f"/proc/{self.pid}/ns/mnt").resolve()

    def processes(self) -> list[int]:
        """Every process in this node's mount namespace except the holder."""
        mine = os.readlink(f"/proc/{self.pid}/ns/mnt")
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.pid:
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "mnt") == mine:
                        found.append(int(entry.name))
        return found

    def mounts(self) -> str:
        return Path(f"/proc/{self.pid}/mounts").read_text()

    def destroy(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, sig)
            deadline = time.monotonic() + 3
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.05)
        self._holder.kill()
        self._holder.wait(timeout=5)
        run(["ip", "netns", "del", self.netns], check=False)


class Switch:
    """A bridge in its own namespace; nodes plug into it with veth pairs (one L2 segment)."""

    def __init__(self) -> None:
        guard_supernet()
        self.netns = unique("gtsw")
        run(["ip", "netns", "add", self.netns])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        run(["ip", "-n", self.netns, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", self.netns, "link", "set", "br0", "up"])
        self.subnet = new_subnet()
        self._hosts = iter(self.subnet.hosts())
        self._ports = itertools.count(1)

    def next_address(self) -> ipaddress.IPv4Address:
        return next(self._hosts)  # type: ignore[return-value]

    def plug(
        self, node: Node, ifname: str = "eth0", address: ipaddress.IPv4Address | None = None
    ) -> ipaddress.IPv4Interface:
        """Connect ``node`` to the switch as ``ifname`` with an address of the switch's subnet."""
        port = f"p{next(self._ports)}{uuid.uuid4().hex[:6]}"
        run(
            [
                "ip",
                "-n",
                self.netns,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                ifname,
                "netns",
                node.netns,
            ]
        )
        run(["ip", "-n", self.netns, "link", "set", port, "master", "br0", "up"])
        iface = ipaddress.ip_interface(f"{address or self.next_address()}/{self.subnet.prefixlen}")
        run(["ip", "-n", node.netns, "addr", "add", str(iface), "dev", ifname])
        run(["ip", "-n", node.netns, "link", "set", ifname, "up"])
        return iface  # type: ignore[return-value]

    def destroy(self) -> None:
        run(["ip", "netns", "del", self.netns], check=False)


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
