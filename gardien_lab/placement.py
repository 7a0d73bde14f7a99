"""Where ``lab up`` starts each group that runs nowhere, and how: the node's agent acquires it,
as an operator's ``gardien acquire`` would on a cluster.

A fresh volume is first laid out on the node that will run the group (files, a MariaDB's system
tables and users), mounted there without the group's VIP, then unmounted.  Then the node's agent
(:class:`failover_hook.agent.LocalAgent`) acquires the group: mount, VIP with gratuitous ARP,
services in order (each start ending once its probes pass), the held marker and the journal.
When the node's hook runs, through it (``gardien acquire`` on the node: the hook's API, under its
per-group lock, so that a move the hook makes at the same time cannot race it); otherwise (before
the hooks start, or with ``--groups-only``) by running the agent itself on the node
(:mod:`gardien_lab.node_agent`): the same code, one process for all of a node's groups.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from failover_hook.client import group_budget
from failover_hook.outcome import Outcome
from gardien.config.loader import load_config
from gardien_lab import clusterconfig, topology, volumes
from gardien_lab.netns import LabError, run
from gardien_lab.services import LabGroup, client_credentials, lab_groups, node_state_dir, where
from gardien_lab.topology import Lab

log = logging.getLogger(__name__)

READY_MARKER = ".gardien-lab-ready"
"""Written on a volume once it is laid out and seeded (a crash before leaves it to be redone)."""


def lay_out(lab: Lab, group: LabGroup, node: str, device: str) -> None:
    """Lay out ``group``'s volume on ``node`` unless it was; the volume is left unmounted."""
    volumes.mount(lab, node, device, group.mountpoint)
    try:
        marker = lab.fs_root(node) / group.mountpoint.lstrip("/") / READY_MARKER
        if not marker.exists():
            log.info("%s: laying out the fresh volume on %s", group.name, node)
            group.prepare(lab.fs_root(node), lab.prefix_argv(node))
            marker.touch()
    finally:
        volumes.umount(lab, node, group.mountpoint)


@dataclass(frozen=True)
class Plan:
    placement: dict[str, str]
    """Each group's node: where it runs, else where it is to start."""
    to_start: dict[str, str]
    """The groups that run nowhere: the node each is to start on, its volume laid out there."""


def plan(lab: Lab, nodes: Sequence[str]) -> Plan:
    """Each group where it runs, else on its first preferred node that is on (its volume laid
    out there).  Refuses a group active on several nodes."""
    client = client_credentials(lab)
    if not client.exists():
        client.parent.mkdir(parents=True, exist_ok=True)
        client.touch(mode=0o600)
        client.write_text("[client]\nuser=lab\npassword=lab\n")
    placement, to_start = {}, {}
    for group in lab_groups(lab).values():
        device = volumes.ensure_volume(lab, group.name, nodes)
        held = where(lab, group, nodes)
        if len(held) > 1:
            raise LabError(f"group {group.name} is active on {held}: fix by hand before 'lab up'")
        if held:
            placement[group.name] = held[0]
            continue
        target = next((n for n in group.nodes if lab.holder(n) is not None), None)
        if target is None:
            raise LabError(f"no node of {group.nodes} is running to start {group.name}")
        lay_out(lab, group, target, device)
        placement[group.name] = to_start[group.name] = target
    return Plan(placement, to_start)


def _through_hook(lab: Lab, node: str, group: str, budget: float) -> Outcome:
    """``gardien acquire GROUP`` on ``node``: its hook's API answers with the outcome."""
    done = run(
        [
            *lab.prefix_argv(node),
            *(sys.executable, "-m", "gardien.cli", "acquire", group),
            *("--node", node, "--output", "json"),
            *("--config.file", str(clusterconfig.config_path(lab))),
        ],
        # confirmed, not forced: a forced acquire would skip the check that no other node
        # holds the group (failover_hook.guard)
        input="y\n",
        check=False,
        timeout=budget,
    )
    try:
        answer = json.loads(done.stdout)[node]
        return Outcome.from_json(answer)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"gardien acquire {group} on {node}: {done.stdout}{done.stderr}") from exc


def _by_agent(lab: Lab, node: str, groups: Sequence[str], budget: float) -> list[Outcome]:
    """The agent itself run on ``node``: one outcome per group acquired (it stops at a failure)."""
    state_dir = node_state_dir(lab, node)
    state_dir.mkdir(parents=True, exist_ok=True)
    done = run(
        [
            *lab.prefix_argv(node),
            *(sys.executable, "-m", "gardien_lab.node_agent"),
            *(str(clusterconfig.config_path(lab)), node, str(state_dir), *groups),
        ],
        check=False,
        timeout=budget,
    )
    try:
        return [Outcome.from_json(json.loads(line)) for line in done.stdout.splitlines()]
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"the agent of {node}: {done.stdout}{done.stderr}") from exc


def acquire_on(lab: Lab, node: str, groups: Sequence[str]) -> list[Outcome]:
    """``node``'s agent acquires ``groups`` in order (see the module's docstring)."""
    config = load_config(clusterconfig.config_path(lab))
    budgets = {g: group_budget(config, g) for g in groups}
    if topology.running(lab, node, "hook") is not None:
        return [_through_hook(lab, node, g, budgets[g]) for g in groups]
    return _by_agent(lab, node, groups, sum(budgets.values()))


def start(lab: Lab, to_start: dict[str, str]) -> None:
    """Each group of ``to_start`` acquired on its node by the node's agent; a failure raises."""
    for node in sorted(set(to_start.values())):
        groups = [g for g, n in to_start.items() if n == node]
        outcomes = acquire_on(lab, node, groups)
        failed = [o for o in outcomes if not o.ok]
        if failed or len(outcomes) < len(groups):
            told = "; ".join(o.message for o in failed) or "no outcome for every group"
            raise LabError(f"acquiring {', '.join(groups)} on {node}: {told}")
        for outcome in outcomes:
            log.info("%s", outcome.message)
