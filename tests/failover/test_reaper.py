"""The hook's reaper reads the process table only when a child of the hook is dead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SEEN = """
import json, subprocess, sys, time
from pathlib import Path
from failover_hook import processes
from gardien.node import liveness

seen = [processes.dead_child()]
child = subprocess.Popen([sys.executable, "-c", "pass"])
deadline = time.monotonic() + 20
while liveness.state(child.pid) not in liveness.DEAD and time.monotonic() < deadline:
    time.sleep(0.01)
seen += [processes.dead_child(), Path(f"/proc/{child.pid}").exists(), child.wait(10)]
seen.append(processes.dead_child())
print(json.dumps(seen))
"""
"""Run in a process of its own, whose only children are the ones it makes."""


def test_a_dead_child_is_seen_and_left_to_its_parent_to_reap() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    ran = subprocess.run(
        [sys.executable, "-c", SEEN],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    # none dead; its child dead, still there for its runner to reap, reaped; none dead again
    assert json.loads(ran.stdout) == [False, True, True, 0, False]
