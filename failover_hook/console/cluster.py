"""What the console shows of the cluster, read afresh on every page and every refresh.

Every node is asked at once, as ``gardien status`` asks them: this hook reads its own parts, the
peers answer over their API within ``hook.request_timeout``.  A node that does not answer is
shown as such ("node2 did not answer: ..."), never with what it said before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from failover_hook import timeline
from failover_hook.cli import summarize
from failover_hook.cluster_status import ClusterStatus
from failover_hook.decide import ClusterView
from failover_hook.hook import Hook
from failover_hook.outcome import Outcome
from failover_hook.peers import PeerUnreachable
from failover_hook.prometheus import PrometheusReader
from failover_hook.status import NodeStatus

T = TypeVar("T")


@dataclass(frozen=True)
class NodeAnswer:
    """One node's answers; ``problem`` says why it gave none (then ``status`` is None)."""

    name: str
    status: NodeStatus | None
    history: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every node's answers, read at ``at`` (Unix time)."""

    at: float
    nodes: dict[str, NodeAnswer]

    @property
    def statuses(self) -> dict[str, NodeStatus | None]:
        return {n: a.status for n, a in self.nodes.items()}

    def entries(self, group: str | None = None) -> list[dict[str, Any]]:
        """Every answering node's journal entries (each with its ``node``), newest first."""
        found = [
            {"node": n, **e}
            for n, a in self.nodes.items()
            for e in a.history
            if group is None or e["group"] == group
        ]
        return sorted(found, key=lambda e: float(e["started"]), reverse=True)


class ClusterReader:
    """Asks every node of the config in force, all at once (a pool of its own); one reading
    uses one config's parts throughout, even when a reload swaps them meanwhile."""

    def __init__(self, hook: Hook, clock: Callable[[], float] = time.time) -> None:
        self.hook = hook
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="console")

    def _ask_all(
        self, cluster: ClusterStatus, local: Callable[[], T], remote: Callable[[Any], T]
    ) -> dict[str, Future[T]]:
        """``local()`` for this node, ``remote(peer)`` for each of ``cluster``'s peers, all
        submitted at once."""
        asked: dict[str, Future[T]] = {}
        for node in cluster.config.nodes:
            if node == cluster.node:
                asked[node] = self._pool.submit(local)
            else:
                asked[node] = self._pool.submit(remote, cluster.peers[node])
        return asked

    def snapshot(self, group: str | None = None) -> Snapshot:
        """Each node's status (with its resources' check) and its journal."""
        cluster = self.hook.cluster
        statuses = self._ask_all(cluster, lambda: cluster.status(group), lambda p: p.status(group))
        journals = self._ask_all(
            cluster, lambda: cluster.history(group), lambda p: p.history(group)
        )
        answers = {}
        for name, asked in statuses.items():
            try:
                status = NodeStatus.model_validate(asked.result())
                entries = journals[name].result()
            except (PeerUnreachable, ValueError) as exc:
                answers[name] = NodeAnswer(name, None, problem=str(exc))
            else:
                answers[name] = NodeAnswer(name, status, entries)
        return Snapshot(self._clock(), answers)

    def decisions(self) -> dict[str, list[dict[str, Any]] | str]:
        """Each node's decisions log, or why it did not answer."""
        asked = self._ask_all(
            self.hook.cluster, self.hook.receiver.decisions, lambda p: p.decisions()
        )
        found: dict[str, list[dict[str, Any]] | str] = {}
        for name, call in asked.items():
            try:
                found[name] = call.result()
            except PeerUnreachable as exc:
                found[name] = str(exc)
        return found

    def alerts(self) -> Future[tuple[list[dict[str, Any]], str | None]] | None:
        """Prometheus's active alerts, asked now (their answer comes while the nodes are asked),
        when ``hook.prometheus_url`` is configured; else None."""
        hook = self.hook.config.hook
        if hook.prometheus_url is None:
            return None
        return self._pool.submit(PrometheusReader(hook.prometheus_url, hook.request_timeout).alerts)


def overview(hook: Hook, snap: Snapshot) -> dict[str, Any]:
    """The overview's model: ``gardien status``'s document, with for each group why it fails
    (each resource not running on its active node), its last move and its budget."""
    doc = summarize(hook.config, snap.statuses)
    view = ClusterView(hook.node, snap.statuses)
    entries = snap.entries()
    for name, group in doc["groups"].items():
        active = snap.nodes[group["active_node"]].status if group["active_node"] else None
        agent = active.groups[name].agent if active and name in active.groups else {}
        group["failing"] = [
            {"resource": r, "state": s.get("state"), "reason": s.get("reason", "")}
            for r, s in (agent.get("resources") or {}).items()
            if s.get("state") != "running"
        ]
        if agent.get("unchecked"):
            group["failing"].append(
                {"resource": "-", "state": "unchecked", "reason": agent["unchecked"]}
            )
        moves = [e for e in entries if e["group"] == name and e["kind"] == "move"]
        group["last_move"] = moves[0] if moves else None
        group["budget"] = budget(hook, view, name)
        # where it runs is unknown when none of its nodes that answered holds it
        group["silent"] = view.unknown(hook.config.groups[name].nodes)
    for name, node in doc["nodes"].items():
        answer = snap.nodes[name]
        node["problem"] = answer.problem
        node["fencing"] = name in hook.config.fencing
        status = answer.status
        node["network_reason"] = status.network_reason if status else ""
    return doc


def budget(hook: Hook, view: ClusterView, group: str) -> dict[str, Any]:
    """The anti-flap budget of ``group`` as the gates read it (:func:`decide.gate_anti_flap`):
    the cooldown left and the moves left in the window, from every answering node's journal."""
    config = hook.config.hook
    ages = [a for a in view.move_ages(group) if a < config.window]
    cooldown_left = max(config.cooldown - ages[0], 0.0) if ages else 0.0
    return {
        "cooldown": config.cooldown,
        "cooldown_left": cooldown_left,
        "window": config.window,
        "max_moves": config.max_moves,
        "moves_in_window": len(ages),
        "moves_left": max(config.max_moves - len(ages), 0),
        "unknown": view.unknown(hook.config.groups[group].nodes),
    }


def timelines(
    snap: Snapshot, group: str, decisions: dict[str, list[dict[str, Any]] | str], limit: int
) -> list[tuple[dict[str, Any], str]]:
    """The group's last ``limit`` moves, each with its timeline picture (SVG)."""
    entries = snap.entries(group)
    moves = [e for e in entries if e["kind"] == "move"][:limit]
    pictures = []
    for move in moves:
        found = decisions.get(move["node"])
        picture = timeline.build(move, entries, found if isinstance(found, list) else [], snap.at)
        pictures.append((move, timeline.svg(picture)))
    return pictures


def outcome_or_problem(call: Callable[[], Outcome]) -> Outcome | str:
    """The outcome of an action on a node, or why the node did not answer."""
    try:
        return call()
    except PeerUnreachable as exc:
        return f"did not answer: {exc}"
