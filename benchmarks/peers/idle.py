"""Which processes are a peer's, for its idle cost (benchmarks/idle_cost.py ``--peers``).

The configurations measured: keepalived as in the failover benchmark, and Pacemaker + Corosync
with 1 s monitors and with the agents' default monitors (:data:`.pacemaker.MONITORS`).  A
node's processes of the tool are its daemons (keepalived's parent and VRRP child; corosync,
tini, pacemakerd and its six daemons): not Apache, and not the short-lived checks they run,
whose CPU their daemon reaps (``cutime``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from benchmarks.peers import keepalived, pacemaker
from benchmarks.peers.lab import PeersLab
from gardien_lab import netns

CONFIGS = (
    (keepalived.NAME, ""),
    (pacemaker.NAME, "1s"),
    (pacemaker.NAME, "default"),
)
"""(tool, monitors) of every configuration measured."""
DAEMONS = ("keepalived", "corosync", "tini", "pacemaker")
"""Beginnings of the daemons' command names (``comm``: pacemakerd, pacemaker-based...)."""


def label(tool: str, monitors: str) -> str:
    return f"{tool} {monitors} monitors" if monitors else tool


def daemons(lab: PeersLab, node: str) -> list[tuple[str, int]]:
    """(command name, pid) of the tool's daemons on ``node``, by pid."""
    holder = lab.holders[node]
    found = []
    for pid in sorted(netns.pids_in_mount_ns(holder.mount_ns()) - {holder.pid}):
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm.startswith(DAEMONS) and netns.alive(pid):
                found.append((comm, pid))
    return found
