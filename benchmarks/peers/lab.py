"""The peers' namespace lab: two nodes, a client, two switches, a volume, the VIP, Apache.

Network safety: every address is in :data:`SUPERNET` (10.98.0.0/24), which exists only inside
these namespaces; while they exist the root namespace holds an ``unreachable`` route for it
(:func:`gardien_lab.netns.guard`), and the root namespace never gets an address there.  The
public switch (nodes, client, VIP) is 10.98.0.0/25, the cluster switch (Corosync's ring)
10.98.0.128/25: as in gardien's lab, a node whose public link is down still sees its peer.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gardien_lab import netns
from gardien_lab.daemons import apache
from gardien_lab.freeze import freeze
from gardien_lab.services import PAGE, page_check, page_text

SUPERNET = ipaddress.IPv4Network("10.98.0.0/24")
PUBLIC = ipaddress.IPv4Network("10.98.0.0/25")
CLUSTER = ipaddress.IPv4Network("10.98.0.128/25")
SWITCH = "pr-sw"
NODES = ("pr-a", "pr-b")
CLIENT = "pr-c"
NETNS = (SWITCH, *NODES, CLIENT)
ADDRESSES = {"pr-a": 11, "pr-b": 12, CLIENT: 100}
VIP = ipaddress.IPv4Interface("10.98.0.50/25")
GROUP = "peers"
"""The group's name in its page text (``gardien lab peers: volume OK``)."""
DIR = Path("/var/tmp/gardien-peers")
"""Everything of the lab on disk: the image, configs, per-node state and logs.  A fixed place, so
that :mod:`.teardown` finds what a crashed run left."""
IMAGE = DIR / "vol1.img"
MOUNTPOINT = DIR / "mnt" / "vol1"


def public_address(machine: str) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(f"{PUBLIC[ADDRESSES[machine]]}/{PUBLIC.prefixlen}")


def cluster_address(node: str) -> ipaddress.IPv4Interface:
    host = CLUSTER[ADDRESSES[node]]
    return ipaddress.IPv4Interface(f"{host}/{CLUSTER.prefixlen}")


@dataclass
class PeersLab:
    holders: dict[str, netns.Holder]
    device: str
    """The loop device of the volume's image (one device, seen by both nodes)."""

    def prefix(self, machine: str) -> list[str]:
        return self.holders[machine].prefix()

    def fs_root(self, machine: str) -> Path:
        return Path(f"/proc/{self.holders[machine].pid}/root")

    def run(
        self, machine: str, argv: list[str], check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return netns.run([*self.prefix(machine), *argv], check=check, timeout=timeout)

    def spawn(self, machine: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """A daemon on ``machine`` in a session of its own, its output to ``log`` (the pid is
        the daemon's: nsenter execs it)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return subprocess.Popen(
                [*self.prefix(machine), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def vip_on(self, node: str) -> bool:
        out = netns.run(["ip", "-n", node, "-o", "-4", "addr", "show"], check=False).stdout
        return f" {VIP.ip}/" in out

    def placement(self) -> list[str]:
        """The nodes holding the VIP."""
        return [n for n in NODES if self.vip_on(n)]

    def answers(self) -> bool:
        """The client gets the group's page on the VIP (gardien's lab check, same argv)."""
        check = page_check(f"http://{VIP.ip}/{PAGE}", GROUP)
        return self.run(CLIENT, check, check=False, timeout=10).returncode == 0

    def served_from(self, node: str) -> bool:
        """The page answers on the VIP, held by ``node`` alone."""
        return self.placement() == [node] and self.answers()


def node_dir(node: str) -> Path:
    return DIR / node


def up() -> PeersLab:
    """Namespaces, holders (own /run and /dev/shm), the formatted image on a loop device."""
    netns.guard(SUPERNET)
    for name in NETNS:
        netns.add_netns(name)
    netns.add_bridge(SWITCH, "br0")
    netns.add_bridge(SWITCH, "br1")
    holders = {}
    for machine in (*NODES, CLIENT):
        holders[machine] = netns.start_holder(machine, machine)
        port = f"{machine.removeprefix('pr-')}0"
        netns.plug(SWITCH, port, machine, "eth0", public_address(machine), bridge="br0")
        if machine in NODES:
            port = f"{machine.removeprefix('pr-')}1"
            netns.plug(SWITCH, port, machine, "eth1", cluster_address(machine), bridge="br1")
    for node in NODES:
        for point in ("/run", "/dev/shm"):
            netns.run([*holders[node].prefix(), "mount", "-t", "tmpfs", "tmpfs", point])
    MOUNTPOINT.mkdir(parents=True, exist_ok=True)
    netns.run(["truncate", "-s", "256M", str(IMAGE)])
    netns.run(["mkfs.ext4", "-q", "-F", "-L", "peers", str(IMAGE)])
    device = netns.run(["losetup", "-f", "--show", str(IMAGE)]).stdout.strip()
    return PeersLab(holders, device)


def apache_on_volume() -> apache.ApacheInstance:
    """The group's Apache: everything on the volume, listening on the VIP and on loopback (where
    Pacemaker's agent reads /server-status)."""
    return apache.ApacheInstance(
        name=GROUP,
        root=MOUNTPOINT / "apache",
        address=str(VIP.ip),
        extra="Listen 127.0.0.1:80\n",
    )


def apache_of_node(node: str) -> apache.ApacheInstance:
    """A node's own Apache (keepalived moves only the address): on every address of the node."""
    return apache.ApacheInstance(name=node, root=node_dir(node) / "apache", address="0.0.0.0")


def pages() -> dict[str, str]:
    return {"index.html": f"gardien lab {GROUP}\n", PAGE: page_text(GROUP)}


def seed_volume(lab: PeersLab, inst: apache.ApacheInstance) -> None:
    """The Apache of ``inst`` laid out on the volume (mounted on pr-a for that, then unmounted)."""
    node = NODES[0]
    lab.run(node, ["mount", lab.device, str(MOUNTPOINT)])
    try:
        apache.write_config(inst, pages(), fs_root=lab.fs_root(node))
    finally:
        lab.run(node, ["umount", str(MOUNTPOINT)])


def apache_pgid(lab: PeersLab, node: str, inst: apache.ApacheInstance) -> int | None:
    """Process group of ``inst``'s Apache on ``node`` (from its pid file), if it runs."""
    try:
        pidfile = lab.fs_root(node) / str(inst.pidfile).lstrip("/")
        return os.getpgid(int(pidfile.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


def inject(lab: PeersLab, node: str, failure: str, inst: apache.ApacheInstance) -> None:
    """The fault of gardien's benchmark: SIGKILL (crash) or SIGSTOP (hang) of Apache's whole
    process group, or the node's public link down (isolation)."""
    if failure == "isolation":
        netns.set_links(node, up=False, names=("eth0",))
        return
    pgid = apache_pgid(lab, node, inst)
    if pgid is None:
        raise netns.LabError(f"no Apache runs on {node}")
    if failure == "crash":
        os.killpg(pgid, signal.SIGKILL)
    else:
        freeze(pgid, group=True)


def undo(lab: PeersLab, node: str, inst: apache.ApacheInstance) -> None:
    """What :func:`inject` did, undone where it can be: the link up, a stopped Apache resumed
    (a crashed one is the tool's to restart)."""
    netns.set_links(node, up=True, names=("eth0",))
    pgid = apache_pgid(lab, node, inst)
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGCONT)
