"""Building the lab's machines and networks, and removing them: only what this lab made.

Everything made is recorded at once in the lab's state folder (:mod:`gardien_lab.made`).  A
namespace of a lab machine's name that the record does not name (someone else's, or a lab of an
older gardien) stops ``lab up`` and is left alone by ``lab down``, which says so.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gardien_lab import made, netns
from gardien_lab.netns import LabError, run
from gardien_lab.topology import MACHINES, NODE_TMPFS, NODES, SWITCHES, Lab

log = logging.getLogger(__name__)


def guard_supernet(lab: Lab) -> None:
    """Root namespace: an ``unreachable`` route for the lab's supernet (docs/lab.md section 2)."""
    netns.guard(lab.supernet)


def unguard_supernet(lab: Lab) -> None:
    """Remove the guard, unless another lab instance still exists."""
    others = (
        [p for p in lab.root.iterdir() if p.is_dir() and p.name != lab.name]
        if lab.root.is_dir()
        else []
    )
    if others:
        log.info(
            "keeping the route guard of %s: lab(s) %s still exist",
            lab.supernet,
            [p.name for p in others],
        )
        return
    netns.unguard(lab.supernet)


# -- building ---------------------------------------------------------------------------------


def _ensure_netns(lab: Lab, name: str) -> None:
    """The namespace ``name`` exists and is this lab's: made (and recorded) when missing."""
    record = made.load(lab.dir)
    if name in record.netns and made.is_ours(name, record.netns[name]):
        return
    if netns.netns_exists(name):
        raise LabError(
            f"network namespace {name} exists but lab {lab.name!r} did not make it: "
            f"remove it yourself ('ip netns pids {name}' shows what runs there) "
            "or use another lab name (--lab)"
        )
    tag = made.new_tag(lab.name)
    inode = netns.add_netns(name, tag)
    record = made.load(lab.dir)
    record.netns[name] = made.MadeNetns(inode, tag)
    made.save(lab.dir, record)


def _ensure_port(
    lab: Lab, switch: str, machine: str, ifname: str, address: ipaddress.IPv4Address
) -> None:
    """Plug ``machine`` into ``switch`` as ``ifname`` with ``address`` (idempotent)."""
    netns.plug(
        lab.switch_netns(switch),
        f"p-{machine}",
        lab.netns(machine),
        ifname,
        ipaddress.IPv4Interface(f"{address}/24"),
    )


def _ensure_router(lab: Lab) -> None:
    ns = lab.netns("router")
    for ifname, subnet, targets in (
        ("internal", lab.internal, lab.internal_targets()),
        ("external", lab.external, lab.external_targets()),
    ):
        if not netns.link_exists(ns, ifname):
            # a veth pair inside the router stands for the network (no dummy driver on this kernel)
            run(
                [
                    "ip",
                    "-n",
                    ns,
                    "link",
                    "add",
                    ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"{ifname}-end",
                ]
            )
        for target in targets:
            run(["ip", "-n", ns, "addr", "replace", f"{target}/{subnet.prefixlen}", "dev", ifname])
        run(["ip", "-n", ns, "link", "set", f"{ifname}-end", "up"])
        run(["ip", "-n", ns, "link", "set", ifname, "up"])


def _ensure_routes(lab: Lab, machine: str) -> None:
    """Nodes and client reach the router's subnets through its public address."""
    gateway = str(lab.public_address("router"))
    for subnet in (lab.internal, lab.external):
        run(["ip", "-n", lab.netns(machine), "route", "replace", str(subnet), "via", gateway])


def _ensure_tmpfs(lab: Lab, machine: str) -> None:
    """The machine's own tmpfs on each of ``NODE_TMPFS``, recognised by its source name (a mount
    copied from the root namespace at that path would be shared with the other nodes)."""
    source = f"lab-{machine}"
    mounts = Path(f"/proc/{lab.require_holder(machine)}/mounts").read_text().splitlines()
    mine = {fields[1] for fields in (line.split() for line in mounts) if fields[0] == source}
    prefix = lab.prefix_argv(machine)
    for path in NODE_TMPFS:
        if path not in mine:
            run([*prefix, "mkdir", "-p", path])
            run([*prefix, "mount", "-t", "tmpfs", "-o", "size=32m,mode=755", source, path])


def ensure_machine(lab: Lab, machine: str) -> int:
    """The machine's netns and holder exist (the holder is the machine being "powered on")."""
    _ensure_netns(lab, lab.netns(machine))
    pid = lab.holder(machine)
    if pid is None:
        holder = netns.start_holder(lab.netns(machine), machine)
        record = made.load(lab.dir)
        record.holders[machine] = holder
        made.save(lab.dir, record)
        pid = holder.pid
        log.info("%s: holder %d", machine, pid)
    if machine in (*NODES, "dc"):
        _ensure_tmpfs(lab, machine)
    return pid


def ensure_network(lab: Lab, machine: str) -> None:
    """Links, addresses and routes of ``machine`` (idempotent; also brings downed links back up)."""
    if machine in NODES:
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
        _ensure_port(lab, "cluster", machine, "eth1", lab.cluster_address(machine))
        _ensure_routes(lab, machine)
    elif machine == "client":
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
        _ensure_routes(lab, machine)
    elif machine == "router":
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
        _ensure_router(lab)
    elif machine == "dc":
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
    elif machine == "mon":
        _ensure_port(lab, "cluster", machine, "eth0", lab.cluster_address(machine))


def build(lab: Lab) -> None:
    """Every namespace, bridge, link, address, route and holder of the lab (idempotent)."""
    lab.dir.mkdir(parents=True, exist_ok=True)
    guard_supernet(lab)
    for switch in SWITCHES:
        _ensure_netns(lab, lab.switch_netns(switch))
        netns.add_bridge(lab.switch_netns(switch))
    for machine in MACHINES:
        ensure_machine(lab, machine)
        ensure_network(lab, machine)


# -- processes and links of a machine ----------------------------------------------------------


def _own_netns(lab: Lab, name: str) -> bool:
    record = made.load(lab.dir).netns.get(name)
    return record is not None and made.is_ours(name, record)


def machine_processes(lab: Lab, machine: str, include_holder: bool = False) -> list[int]:
    """Every process of a machine: in its netns (when this lab made it) or in its holder's
    mount namespace."""
    ns = lab.netns(machine)
    pids = netns.pids_in_netns(ns) if _own_netns(lab, ns) else set()
    holder = lab.holder(machine)
    if holder is not None:
        with contextlib.suppress(OSError):
            pids |= netns.pids_in_mount_ns(os.readlink(f"/proc/{holder}/ns/mnt"))
    pids.discard(os.getpid())
    if not include_holder and holder is not None:
        pids.discard(holder)
    return sorted(pids)


def kill_machine(
    lab: Lab, machine: str, grace: float = 3.0, include_holder: bool = True
) -> list[int]:
    """TERM then KILL every process of ``machine`` (:func:`netns.kill_all`); with the holder
    gone its mount namespace and every mount in it vanish.  Returns the PIDs still alive."""
    return netns.kill_all(lambda: machine_processes(lab, machine, include_holder), grace)


def set_links(lab: Lab, machine: str, up: bool, names: Sequence[str] = ("eth0", "eth1")) -> None:
    netns.set_links(lab.netns(machine), up, names)


# -- tearing down -----------------------------------------------------------------------------


@dataclass
class Removal:
    """What ``lab down`` could not remove (``problems``) and what it left on purpose because
    this lab did not make it (``not_ours``); both empty when the lab is gone."""

    problems: list[str] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)


def teardown(lab: Lab) -> Removal:
    """Kill every process of every machine this lab made and delete its namespaces."""
    removal = Removal()
    record = made.load(lab.dir)
    for machine in MACHINES:
        left = kill_machine(lab, machine, grace=2.0)
        if left:
            removal.problems.append(f"{machine}: processes {left} survived SIGKILL")
    for ns in lab.all_netns():
        if not netns.netns_exists(ns):
            continue
        if ns not in record.netns or not made.is_ours(ns, record.netns[ns]):
            removal.not_ours.append(f"network namespace {ns} (not made by lab {lab.name!r})")
            continue
        netns.kill_all(functools.partial(netns.pids_in_netns, ns), grace=0)
        netns.delete_netns(ns)
        if netns.netns_exists(ns):
            removal.problems.append(f"network namespace {ns} could not be deleted")
    return removal
