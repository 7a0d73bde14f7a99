"""Remove everything of the peers' lab, from its fixed names alone (also after a crashed run).

Every process in one of the lab's network namespaces is stopped (TERM after CONT, then KILL:
daemons, Apache, the holders); the node's mount namespaces die with their last process, and the
volume's mounts with them; then the namespaces, the loop devices of the lab's image, the guard
route and the lab's folder go.  :func:`lab` wraps a run so that this happens whatever fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
from collections.abc import Iterator

from benchmarks.peers.lab import DIR, IMAGE, NETNS, SUPERNET, PeersLab, up
from gardien_lab import netns

LOCK = DIR.with_name(DIR.name + ".lock")


def _lab_processes() -> set[int]:
    found: set[int] = set()
    for name in NETNS:
        found |= netns.pids_in_netns(name)
    return found


def down() -> list[str]:
    """Tear the lab down; returns what could not be removed (empty: nothing is left)."""
    left = [f"process {pid}" for pid in netns.kill_all(_lab_processes)]
    for name in NETNS:
        netns.delete_netns(name)
    left += [f"netns {n}" for n in NETNS if netns.netns_exists(n)]
    if IMAGE.exists():
        for line in netns.run(["losetup", "-j", str(IMAGE)], check=False).stdout.splitlines():
            device = line.split(":", 1)[0]
            netns.run(["losetup", "-d", device], check=False)
        attached = netns.run(["losetup", "-j", str(IMAGE)], check=False).stdout.strip()
        left += [f"loop device {line}" for line in attached.splitlines()]
    if not left:
        netns.unguard(SUPERNET)
        shutil.rmtree(DIR, ignore_errors=True)
    return left


@contextlib.contextmanager
def lab() -> Iterator[PeersLab]:
    """A fresh lab (what an earlier run left removed first), torn down at the end whatever
    happens; what could not be removed is reported, never hidden.  One run at a time: the
    names are fixed, so a second run would tear the first one's lab down (:data:`LOCK`)."""
    with LOCK.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise netns.LabError(f"another run uses the peers lab ({LOCK} is locked)") from None
        if left := down():
            raise netns.LabError(f"an earlier peers lab could not be removed: {', '.join(left)}")
        try:
            yield up()
        finally:
            if left := down():  # said, not raised: an error of the run itself must stay seen
                print(f"peers lab: left behind: {', '.join(left)}", file=sys.stderr)
            LOCK.unlink()  # still held: a run starting now locks a file of its own
