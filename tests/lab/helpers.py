"""Helpers of the lab tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gardien.lab import (
    agents,
    clusterconfig,
    faults,
    lifecycle,
    monitoring,
    services,
    timeline,
    topology,
    volumes,
)
from gardien.lab.topology import NODES, Lab

T = TypeVar("T")

FAILOVER_ALERTS = (
    "GardienGroupFailed",
    "GardienNodeIsolated",
    "GardienNodeDown",
    "GardienNetworkOutage",
    "GardienSplitBrain",
)

HOME = {"php4": "node1", "php5": "node2", "mysql1": "node1", "mysql2": "node2", "java": "node2"}


def lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("ip", "nsenter", "losetup", "apache2", "smbd", "mariadbd", "prometheus"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed"
    return None


def gardien_on(
    lab: Lab, node: str, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``gardien ARGS`` on ``node`` with the lab's config (as an operator would)."""
    return subprocess.run(
        [*lab.prefix_argv(node), sys.executable, "-m", "gardien.cli", *args],
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
    """``predicate()``'s first truthy value within ``timeout`` seconds (bounded polling)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def vips_by_node(lab: Lab) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in NODES:
        out = subprocess.run(
            ["ip", "-n", lab.netns(node), "-o", "-4", "addr", "show"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        ).stdout
        found[node] = {w.split("/")[0] for w in out.split() if w.count(".") == 3 and "/" in w}
    return found


def mounts_by_node(lab: Lab) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in NODES:
        holder = lab.holder(node)
        try:
            text = Path(f"/proc/{holder}/mounts").read_text() if holder else ""
        except OSError:
            text = ""
        found[node] = {
            line.split()[0] for line in text.splitlines() if line.startswith("/dev/loop")
        }
    return found


class Sampler(threading.Thread):
    """Watches, during a scenario, where each group's volume and VIP are: records every sample
    in which a group was active (volume mounted or VIP present) on two nodes at once, and the
    set of nodes each group was seen on.  Bounded: it stops by itself after ``limit`` seconds."""

    def __init__(self, lab: Lab, interval: float = 0.1, limit: float = 300.0) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.interval = interval
        self.limit = limit
        self.groups = services.lab_groups(lab)
        self.devices = {g: volumes.loop_of(volumes.image(lab, g)) for g in self.groups}
        self.double: list[tuple[float, str, list[str]]] = []
        self.seen_on: dict[str, set[str]] = {g: set() for g in self.groups}
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            vips, mounts = vips_by_node(self.lab), mounts_by_node(self.lab)
            for name, group in self.groups.items():
                active = [
                    n
                    for n in NODES
                    if str(group.vip.ip) in vips[n] or self.devices[name] in mounts[n]
                ]
                self.seen_on[name].update(active)
                if len(active) > 1:
                    self.double.append((time.time(), name, active))
            self.samples += 1
            self._stop_event.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def answers(lab: Lab, group: str) -> bool:
    return services.answers_from_client(lab, services.lab_groups(lab)[group])


def runs_only_on(lab: Lab, group: str, node: str) -> bool:
    """``group`` is active on ``node`` alone and its service answers on the VIP from the client."""
    return placement(lab)[group] == [node] and answers(lab, group)


def firing(lab: Lab, alertname: str) -> list[dict[str, str]]:
    """Label sets of the firing alerts named ``alertname`` (Prometheus' view)."""
    series = monitoring.query(lab, f'ALERTS{{alertname="{alertname}",alertstate="firing"}}')
    return [s["metric"] for s in series]


def moves(lab: Lab, group: str) -> list[dict[str, object]]:
    """Finished moves of ``group`` journaled by the hooks (each move is in its target's journal)."""
    found = []
    for node in NODES:
        answer = timeline.hook_get(lab, node, f"/api/v1/history?group={group}") or {}
        found += [m for m in answer.get("moves", []) if m.get("kind") == "move"]
    return found


def reset_hooks(lab: Lab) -> None:
    """Restart both hooks with an empty journal: every scenario starts without anti-flap history
    left by the previous one."""
    for node in NODES:
        pid = topology.running(lab, node, "hook")
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_for(
                lambda pid=pid: (
                    not Path(f"/proc/{pid}").exists()
                    or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
                ),
                15,
            )
        for path in services.node_state_dir(lab, node).glob("journal.db*"):
            path.unlink()
        agents.start(lab, node)


def restore(lab: Lab) -> None:
    """Back to the lab's initial state: faults undone, fenced nodes on, every group at home
    and answering, no failover alert firing, hooks without history."""
    for node in NODES:
        if lab.holder(node) is not None:
            faults.freeze_agents(lab, node, frozen=False)
    faults.router(lab, up=True)
    lifecycle.up(lab)
    for group, home in HOME.items():
        where = placement(lab)[group]
        other = next(n for n in NODES if n != home)
        if where == [home] and not answers(lab, group):
            gardien_on(lab, home, "migrate", group, "--to", other, "--force")
        if placement(lab)[group] != [home]:
            done = gardien_on(lab, home, "migrate", group, "--to", home, "--force")
            assert done.returncode == 0, done.stdout + done.stderr
    assert wait_for(lambda: all(runs_only_on(lab, g, n) for g, n in HOME.items()), 120), placement(
        lab
    )
    quiet = wait_for(lambda: not any(firing(lab, a) for a in FAILOVER_ALERTS), 90)
    assert quiet, {a: firing(lab, a) for a in FAILOVER_ALERTS}
    reset_hooks(lab)


def explain(lab: Lab, since: float, *groups: str) -> str:
    """Placement plus the timeline of ``groups`` since ``since``: the message of a failed wait."""
    lines = [f"placement: {placement(lab)}"]
    for group in groups:
        events = timeline.collect(lab, group, None, since, time.time())
        lines += [f"{group}:", timeline.format_events(events, since)]
    return "\n".join(lines)
