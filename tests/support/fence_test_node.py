"""The tests' fence agent: "power off" a test node, then verify it is off.

Usage: fence_test_node.py HOLDER_PID NETNS.  Downs the node's eth0 and SIGKILLs every process of
its mount namespace, the holder included, so the namespace and every volume mounted in it vanish
(docs/lab.md section 3).  Exit 0 only when no process is left and the link is down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def members(mnt: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == mnt and int(entry.name) != os.getpid():
                    found.append(int(entry.name))
    return found


def describe(pid: int) -> str:
    """``1234 (httpd, D)``: what a process left behind is and its state, to see why."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid} (gone)"
    name, rest = stat.split("(", 1)[1].rsplit(")", 1)
    return f"{pid} ({name}, {rest.split()[0]})"


def main() -> int:
    holder, netns = int(sys.argv[1]), sys.argv[2]
    subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "down"], check=False, timeout=10)
    try:
        mnt = os.readlink(f"/proc/{holder}/ns/mnt")
    except OSError:
        mnt = ""  # the holder is gone already: nothing runs there
    # SIGKILL is not instant: a process blocked in uninterruptible I/O (a write to the node's
    # loop-mounted volume) dies once that I/O is done, which a loaded machine may take seconds
    # to finish; the fencing timeout of the tests' config is 20 s
    deadline = time.monotonic() + 15
    while mnt and members(mnt) and time.monotonic() < deadline:
        for pid in members(mnt):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    link = subprocess.run(
        ["ip", "-n", netns, "-o", "link", "show", "eth0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout
    up = "<" in link and "UP" in link.split("<", 1)[1].split(">", 1)[0].split(",")
    left = members(mnt) if mnt else []
    if left or up:
        print(
            f"not off: processes {[describe(pid) for pid in left]}, link up: {up}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
