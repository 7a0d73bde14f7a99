"""The guard of an acquire on the lab (issue 9): a node that does not hold a group never mounts its
volume, whichever way it is asked, read from each node's own mount table every 10 ms during the
call (not from gardien's report)."""

from __future__ import annotations

import json
import time

import pytest

from gardien_lab import agents, faults, services
from gardien_lab.hookapi import auth_header
from gardien_lab.scenario import answers, explain, gardien_on, runs_only_on, wait_for
from gardien_lab.topology import Lab, on
from tests.lab.helpers import HOME, MountWatch, Sampler

MOVE_TIMEOUT = 120.0


pytestmark = pytest.mark.usefixtures("home_at_the_end", "home_at_the_start")


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
            ["curl", "-sS", "-m", "60", "-X", "POST", "-H", f"@{auth_header(lab)}",
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
