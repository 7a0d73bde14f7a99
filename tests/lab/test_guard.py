"""The guard of an acquire on the lab (issue 9): a node that does not hold a group never mounts its
volume, whichever way it is asked, read from each node's own mount table every 10 ms during the
call (not from gardien's report)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from gardien_lab import agents, faults, services
from gardien_lab.hookapi import _auth_header
from gardien_lab.scenario import answers, explain, gardien_on, runs_only_on, wait_for
from gardien_lab.topology import NODES, Lab, on
from tests.lab.helpers import HOME, Sampler

MOVE_TIMEOUT = 120.0


pytestmark = pytest.mark.usefixtures("home_at_the_end", "home_at_the_start")


class MountWatch(threading.Thread):
    """Reads every node's mount table (its holder's ``/proc/PID/mountinfo``) every 10 ms and
    records each sample in which ``mountpoint`` is mounted there.  Bounded by ``limit`` s."""

    def __init__(self, lab: Lab, mountpoint: str, limit: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.holders = {n: lab.holder(n) for n in NODES}
        self.mountpoint = mountpoint
        self.limit = limit
        self.samples = 0
        self.seen: dict[str, list[float]] = {n: [] for n in NODES}
        """Per node, the times of the samples in which the volume was mounted there."""
        self.double: list[float] = []
        """The times of the samples in which it was mounted on two nodes."""
        self._stop_event = threading.Event()

    def _mounted(self, holder: int | None) -> bool:
        if holder is None:
            return False
        try:
            table = Path(f"/proc/{holder}/mountinfo").read_text()
        except OSError:
            return False
        return any(line.split()[4] == self.mountpoint for line in table.splitlines())

    def _sample(self) -> None:
        now = time.time()
        mounted = [n for n, holder in self.holders.items() if self._mounted(holder)]
        for node in mounted:
            self.seen[node].append(now)
        if len(mounted) > 1:
            self.double.append(now)
        self.samples += 1

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            self._sample()
            self._stop_event.wait(0.01)

    def __enter__(self) -> MountWatch:
        self._sample()  # one sample before the call, whatever the thread's start takes
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self._sample()  # and one after it


def _mountpoint(lab: Lab, group: str) -> str:
    return services.lab_groups(lab)[group].mountpoint


def test_acquire_on_the_node_that_does_not_hold_the_group_is_refused(lab: Lab) -> None:
    group, other = "php4", "node2"
    with MountWatch(lab, _mountpoint(lab, group)) as watch:
        done = gardien_on(lab, other, "acquire", group, answer="y\n")
    assert done.returncode != 0, done.stdout + done.stderr
    assert "node1" in done.stdout + done.stderr, done.stdout + done.stderr  # names the holder
    assert watch.samples >= 3  # before the call, from the thread while it ran, after it
    assert watch.seen[other] == [], f"{group}'s volume appeared on {other}"
    assert runs_only_on(lab, group, HOME[group]) and answers(lab, group)


def test_acquire_through_the_api_is_refused_with_nothing_mounted(lab: Lab) -> None:
    group, other = "mysql1", "node2"
    url = f"{agents.hook_url(lab, other)}/api/v1/groups/{group}/acquire"
    with MountWatch(lab, _mountpoint(lab, group)) as watch:
        done = on(
            lab,
            "mon",
            ["curl", "-sS", "-m", "60", "-X", "POST", "-H", f"@{_auth_header(lab)}",
             "-w", "\n%{http_code}", url],
            check=False,
            timeout=90,
        )  # fmt: skip
    body, _, code = done.stdout.rpartition("\n")
    # an action's answer is its outcome (failover_hook/app.py: 409 only for "in progress")
    assert code == "200", done.stdout
    outcome = json.loads(body)
    assert outcome["status"] == "refused", body
    assert outcome["details"]["holders"] == ["node1"], body
    assert watch.samples >= 3  # before the call, from the thread while it ran, after it
    assert watch.seen[other] == [], f"{group}'s volume appeared on {other}"
    assert runs_only_on(lab, group, HOME[group]) and answers(lab, group)


def test_migrate_racing_a_webhook_move_never_mounts_twice(lab: Lab) -> None:
    """php4's Apache killed on node1 (the hooks move it) while an operator migrates it to node2
    again and again: one move happens, the volume is never on both nodes."""
    group, source, target = "php4", "node1", "node2"
    t0 = time.time()
    results: list[int] = []
    with MountWatch(lab, _mountpoint(lab, group)) as watch, Sampler(lab) as sampler:
        faults.kill_apache(lab, source, group)
        deadline = time.monotonic() + MOVE_TIMEOUT
        while time.monotonic() < deadline and len(results) < 40:
            results.append(
                gardien_on(lab, target, "migrate", group, "--to", target, answer="y\n").returncode
            )
            if runs_only_on(lab, group, target) and answers(lab, group):
                break
    moved = wait_for(lambda: runs_only_on(lab, group, target) and answers(lab, group), 60)
    assert moved, explain(lab, t0, group)
    assert watch.samples > 10
    assert watch.double == [], f"{group}'s volume mounted on both nodes at {watch.double[:5]}"
    assert watch.seen[source] and watch.seen[target]  # it was seen moving
    assert sampler.double == [], sampler.double
