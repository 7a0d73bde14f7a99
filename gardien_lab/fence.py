"""The lab's fence agent: "power off" a node, then check that it is off.

Powering off a lab node means: kill every process of the node (everything in its network namespace
or its mount namespace, the holder included, so the mount namespace and every volume mounted in it
vanish: docs/lab.md section 3), down its links and drop their addresses (VIPs included).  As
fence-agents do, the state is verified after acting; the agent succeeds (exit 0) only when the
node has no process left, no link up and no address on them.
``gardien lab up`` powers a fenced node on again.
"""

from __future__ import annotations

import logging

from gardien_lab.machines import kill_machine, machine_processes, set_links
from gardien_lab.netns import netns_exists, run
from gardien_lab.topology import Lab

log = logging.getLogger(__name__)

LINKS = ("eth0", "eth1")


def addresses(lab: Lab, node: str) -> list[str]:
    """Addresses left on the node's links."""
    found = []
    for ifname in LINKS:
        out = run(["ip", "-n", lab.netns(node), "-o", "addr", "show", "dev", ifname], check=False)
        found += [w for w in out.stdout.split() if "/" in w and w.count(".") == 3]
    return found


def links_up(lab: Lab, node: str) -> list[str]:
    ns = lab.netns(node)
    if not netns_exists(ns):
        return []
    up = []
    for ifname in LINKS:
        out = run(["ip", "-n", ns, "-o", "link", "show", ifname], check=False).stdout
        flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
        if "UP" in flags:
            up.append(ifname)
    return up


def fence(lab: Lab, node: str) -> list[str]:
    """Power ``node`` off; returns what is still on (empty: fenced)."""
    set_links(lab, node, up=False, names=LINKS)
    kill_machine(lab, node, grace=0, include_holder=True)
    for ifname in LINKS:  # a machine that is off keeps no address (VIPs included)
        run(["ip", "-n", lab.netns(node), "addr", "flush", "dev", ifname], check=False)
    problems = []
    left = machine_processes(lab, node, include_holder=True)
    if left:
        problems.append(f"processes still running: {left}")
    up = links_up(lab, node)
    if up:
        problems.append(f"links still up: {', '.join(up)}")
    left_addresses = addresses(lab, node)
    if left_addresses:
        problems.append(f"addresses left: {', '.join(left_addresses)}")
    log.info("fence %s: %s", node, "; ".join(problems) or "off (no process, links down)")
    return problems
