"""Scenario building blocks shared by the lab tests, the demo and the lab benchmark: bounded
waits, where groups run, alerts, the hooks' journals, and the way back to the initial placement."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from failover_hook.outcome import Status
from gardien import alerts, polling
from gardien_lab import (
    agents,
    clusterconfig,
    faults,
    hookapi,
    lifecycle,
    monitoring,
    netns,
    services,
    timeline,
    topology,
)
from gardien_lab.netns import LabError
from gardien_lab.topology import NODES, Lab

T = TypeVar("T")

ALERTS_CLEAR_AT_HOME = (
    alerts.GROUP_FAILED,
    alerts.NODE_ISOLATED,
    alerts.NODE_DOWN,
    alerts.NETWORK_OUTAGE,
    alerts.SPLIT_BRAIN,
)
"""Alerts that must have cleared once every group is back home, before a scenario starts: any of
them still firing would move a group or be blamed on the next fault."""


def home(lab: Lab) -> dict[str, str]:
    """Each group's first preferred node, where ``lab up`` starts it."""
    return {name: group.nodes[0] for name, group in services.lab_groups(lab).items()}


def gardien_on(
    lab: Lab, node: str, *args: str, timeout: float = 180, answer: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``gardien ARGS`` on ``node`` with the lab's config (as an operator would); ``answer``
    is what the operator types at its confirmation."""
    return subprocess.run(
        [*lab.prefix_argv(node), sys.executable, "-m", "gardien.cli", *args],
        input=answer,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "GARDIEN_CONFIG": str(clusterconfig.config_path(lab))},
    )


def placement(lab: Lab) -> dict[str, list[str]]:
    up = [n for n in NODES if lab.holder(n) is not None]
    return {name: services.where(lab, g, up) for name, g in services.lab_groups(lab).items()}


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.25) -> T | None:
    """:func:`gardien.polling.wait_for` at the lab's pace: each check runs commands on machines
    of the lab, a few a second are enough."""
    return polling.wait_for(predicate, timeout, interval)


def answers(lab: Lab, group: str) -> bool:
    return services.answers_from_client(lab, services.lab_groups(lab)[group])


def move_finished(lab: Lab, group: str) -> bool:
    """No hook that answers has a move of ``group`` under way.

    The first service of a group can answer while the next ones are still starting (php4's page
    before its Samba share): a move is over when the acting hook says so, not at the first answer.
    """
    return not moving(lab, group)


def moving(lab: Lab, group: str | None = None) -> bool:
    """A hook that answers has a move of ``group`` (of any group, without one) under way."""
    for node in NODES:
        status = hookapi.status(lab, node, group)
        if status is not None and any(
            g.move_in_progress for name, g in status.groups.items() if group in (None, name)
        ):
            return True
    return False


def runs_only_on(lab: Lab, group: str, node: str) -> bool:
    """``group`` is active on ``node`` alone, no move of it is under way, and its service answers
    on the VIP from the client."""
    return placement(lab)[group] == [node] and answers(lab, group) and move_finished(lab, group)


def firing(lab: Lab, alertname: str) -> list[dict[str, str]]:
    """Label sets of the firing alerts named ``alertname`` (Prometheus' view)."""
    series = monitoring.query(lab, f'ALERTS{{alertname="{alertname}",alertstate="firing"}}')
    return [s["metric"] for s in series]


def moves(lab: Lab, group: str) -> list[hookapi.JournaledMove]:
    """Moves of ``group`` journaled by the hooks (each move is in its target's journal)."""
    return [m for n in NODES for m in hookapi.history(lab, n, group) if m.kind == "move"]


def reset_hooks(lab: Lab) -> None:
    """Restart both hooks with an empty journal: every scenario starts without anti-flap history
    left by the previous one."""
    for node in NODES:
        pid = topology.running(lab, node, "hook")
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            netns.wait_exit(pid, 15)
        for path in services.node_state_dir(lab, node).glob("journal.db*"):
            path.unlink()
        agents.start(lab, node)


IN_PROGRESS_WAIT = 60.0
"""How long :func:`restore` asks again a move home answered "in progress": right after a
test's move the other node may still be deciding about the group on an alert of the move (its
confirmation call, its gates), holding the group's claim for a moment."""


def _migrate_home(lab: Lab, group: str, node: str) -> None:
    """``gardien migrate GROUP --to NODE --force`` on ``node``, asked again while an answer is
    "in progress" (within :data:`IN_PROGRESS_WAIT`); any other failure raises."""

    def migrate() -> subprocess.CompletedProcess[str] | None:
        done = gardien_on(lab, node, "migrate", group, "--to", node, "--force", "--output", "json")
        if done.returncode != 0 and _any_in_progress(done.stdout):
            return None
        return done

    done = wait_for(migrate, IN_PROGRESS_WAIT, interval=1.0)
    if done is None or done.returncode != 0:
        answer = "still in progress" if done is None else f"{done.stdout}{done.stderr}"
        raise LabError(f"migrate {group} to {node}: {answer}")


def _any_in_progress(output: str) -> bool:
    """Whether a node's outcome in ``gardien ... --output json``'s answer is "in progress"."""
    try:
        outcomes = json.loads(output)
    except ValueError:
        return False
    return isinstance(outcomes, dict) and any(
        isinstance(o, dict) and o.get("status") == Status.IN_PROGRESS.value
        for o in outcomes.values()
    )


def restore(lab: Lab) -> None:
    """Back to the lab's initial state: faults undone, fenced nodes on, every group at home
    and answering, no failover alert firing, hooks without history."""
    for node in NODES:
        if lab.holder(node) is not None:
            faults.freeze_agents(lab, node, frozen=False)
    faults.router(lab, up=True)
    lifecycle.up(lab)
    homes = home(lab)
    for group, node in homes.items():
        other = next(n for n in NODES if n != node)
        if placement(lab)[group] == [node] and not answers(lab, group):
            gardien_on(lab, node, "migrate", group, "--to", other, "--force")
        if placement(lab)[group] != [node]:
            _migrate_home(lab, group, node)
    if not wait_for(lambda: all(runs_only_on(lab, g, n) for g, n in homes.items()), 120):
        raise LabError(f"groups not back home: {placement(lab)}")
    if not wait_for(lambda: not any(firing(lab, a) for a in ALERTS_CLEAR_AT_HOME), 90):
        still = [firing(lab, a) for a in ALERTS_CLEAR_AT_HOME]
        raise LabError(f"failover alerts still firing: {still}")
    reset_hooks(lab)


def explain(lab: Lab, since: float, *groups: str) -> str:
    """Placement plus the timeline of ``groups`` since ``since``: the message of a failed wait.

    Best effort: it explains a failure, so it never raises over it.  A part that cannot be told
    (a machine off, Prometheus or a hook not answering) is replaced by why it could not be."""
    parts: list[Callable[[], str]] = [lambda: f"placement: {placement(lab)}"]
    parts += [functools.partial(_group_timeline, lab, group, since) for group in groups]
    return "\n".join(_told(part) for part in parts)


def _group_timeline(lab: Lab, group: str, since: float) -> str:
    events = timeline.collect(lab, group, None, since, time.time())
    return f"{group}:\n{timeline.format_events(events, since)}"


def _told(part: Callable[[], str]) -> str:
    try:
        return part()
    except Exception as exc:
        return f"(could not tell: {type(exc).__name__}: {exc})"
