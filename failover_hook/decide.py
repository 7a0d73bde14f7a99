"""From a firing alert to a decision: which group fails where, and whether this hook moves it.

Pure functions over a :class:`ClusterView` (every node's reported status, ``None`` for a node
whose hook did not answer: unknown, never assumed down).  Every hook receives every notification
and computes the same target, the first healthy node of the group's preference list other than the
failed one; only that node's hook acts.  Each safety gate is a function returning an
:class:`Outcome` that explains why not to act, or ``None``, in the manner of Patroni's
``failover_limitation()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from failover_hook.outcome import Outcome, Status
from failover_hook.status import NodeStatus
from failover_hook.webhook import Alert
from gardien.alerts import GROUP_FAILED, NODE_DOWN
from gardien.config import ClusterConfig
from gardien.node.verdict import NetworkState, cluster_view


@dataclass(frozen=True)
class ClusterView:
    """The statuses of every configured node, gathered just before deciding."""

    me: str
    statuses: dict[str, NodeStatus | None]

    def status(self, node: str) -> NodeStatus | None:
        return self.statuses.get(node)

    def holders(self, group: str) -> list[str]:
        return [
            name
            for name, s in self.statuses.items()
            if s is not None and group in s.groups and s.groups[group].held
        ]

    def cluster_frozen(self) -> bool:
        return any(s is not None and s.cluster_frozen for s in self.statuses.values())

    def frozen(self, group: str) -> bool:
        return any(
            s is not None and group in s.groups and s.groups[group].frozen
            for s in self.statuses.values()
        )

    def last_change_age(self, group: str) -> float | None:
        ages = [
            s.groups[group].last_change_age
            for s in self.statuses.values()
            if s is not None and group in s.groups and s.groups[group].last_change_age is not None
        ]
        return min(ages) if ages else None  # type: ignore[type-var]

    def move_ages(self, group: str) -> list[float]:
        """Ages of the group's recent moves, youngest first, each move once.

        A move is journaled by both its ends (the node that ran it, and its source when it
        released on request), so the moves of a node that does not answer are still counted
        through the node they took the group from.
        """
        moves: dict[str, float] = {}
        for s in self.statuses.values():
            if s is not None and group in s.groups:
                for key, age in s.groups[group].moves.items():
                    moves[key] = min(age, moves.get(key, age))
        return sorted(moves.values())

    def unknown(self, nodes: tuple[str, ...]) -> list[str]:
        """The nodes among ``nodes`` whose hook did not answer."""
        return [n for n in nodes if self.statuses.get(n) is None]


@dataclass(frozen=True)
class Failure:
    """One group failed on one node, as an alert says."""

    group: str
    node: str
    alertname: str
    node_down: bool = False


@dataclass(frozen=True)
class Move:
    """The decision to move ``group`` from ``source`` (``None``: runs nowhere) to ``target``.

    ``source_silent``: the source's agent did not answer its status (unknown), so the mover fences
    it at once instead of asking it to release (:meth:`failover_hook.move.Mover.execute`).
    """

    group: str
    source: str | None
    target: str
    source_silent: bool = False

    def describe(self) -> str:
        return f"{self.group} {self.source or '(nowhere)'} -> {self.target}"


def failures(alert: Alert, config: ClusterConfig, view: ClusterView) -> list[Failure]:
    """The failed groups an alert reports (labels were checked by ``webhook.check_labels``).

    ``GardienNodeIsolated``/``GardienNodeDown`` name a node: every group active on it fails.  When
    that node's hook does not answer, the groups it may run that no reachable node holds count.
    """
    node = alert.labels["node"]
    if alert.alertname == GROUP_FAILED:
        return [Failure(alert.labels["group"], node, alert.alertname)]
    status = view.status(node)
    if status is not None:
        groups = [g for g in config.groups if g in status.groups and status.groups[g].held]
    else:
        groups = [g for g, gc in config.groups.items() if node in gc.nodes and not view.holders(g)]
    return [Failure(g, node, alert.alertname, alert.alertname == NODE_DOWN) for g in groups]


Gate = Callable[[Failure, ClusterView, ClusterConfig], Outcome | None]


def frozen_reason(group: str, view: ClusterView) -> str | None:
    """Why no move of ``group`` may start on its own: "cluster frozen", "php4 frozen"; or None."""
    if view.cluster_frozen():
        return "cluster frozen"
    if view.frozen(group):
        return f"{group} frozen"
    return None


def split_brain(group: str, view: ClusterView) -> Outcome | None:
    """The refusal when more than one node holds ``group``: nobody may move it then."""
    holders = view.holders(group)
    if len(holders) < 2:
        return None
    return Outcome(
        Status.REFUSED,
        f"refused: {group} held by {' and '.join(holders)} (split brain)",
        group,
        {"gate": "held"},
    )


def gate_frozen(f: Failure, view: ClusterView, _config: ClusterConfig) -> Outcome | None:
    reason = frozen_reason(f.group, view)
    if reason is None:
        return None
    where = f" ({f.group} on {f.node})" if view.cluster_frozen() else ""
    return Outcome(Status.SKIPPED, f"skipped: {reason}{where}", f.group, {"gate": "frozen"})


def gate_settle(f: Failure, view: ClusterView, config: ClusterConfig) -> Outcome | None:
    """Right after a move the group's services are still starting and both nodes alert about it
    (docs/lab.md section 7): no alert about the group starts a move meanwhile, whatever its node."""
    age = view.last_change_age(f.group)
    if age is not None and age < config.hook.settle:
        return Outcome(
            Status.SKIPPED,
            f"skipped: {f.group} moved {age:.0f} s ago (settle {config.hook.settle:g} s)",
            f.group,
            {"gate": "settle", "age": age},
        )
    return None


def gate_held_elsewhere(f: Failure, view: ClusterView, _config: ClusterConfig) -> Outcome | None:
    refusal = split_brain(f.group, view)
    if refusal is not None:
        return refusal
    others = [n for n in view.holders(f.group) if n != f.node]
    if others:
        return Outcome(
            Status.NOTHING_TO_DO,
            f"nothing to do: {f.group} already active on {others[0]} (alert about {f.node})",
            f.group,
        )
    return None


RECHECK = 0.25
"""Seconds after which the target's hook decides again on a failure it skipped because the
holder restarts the group (failover_hook/receiver.py re-decides, doubling up to 1 s)."""


def gate_restart(f: Failure, view: ClusterView, config: ClusterConfig) -> Outcome | None:
    """The holder restarts the group in place (or may, having restarts left): no move meanwhile.

    Only for ``GardienGroupFailed`` (a node alert moves at once) about the node that holds the
    group and answers; the holder's status says whether a restart runs or would (restart.py).
    ``details.recheck`` asks the receiver to decide again soon, for at most ``recheck_within``
    (the group's stops and starts, and two calls of slack): when the holder's restart fails or
    its attempts are used up, its status says so and the next decision moves the group, without
    waiting for Alertmanager to send the alert again.
    """
    source = view.status(f.node)
    if f.alertname != GROUP_FAILED or source is None or f.group not in source.groups:
        return None
    group = source.groups[f.group]
    restart = group.restart
    if not group.held or not (restart.restarting or restart.pending):
        return None
    if restart.restarting:
        what = (
            f"{f.group} restarting {', '.join(restart.restarting_services)} on {f.node} "
            f"(restart {restart.attempt} of {restart.attempts})"
        )
    else:
        left = ", ".join(
            f"{name} {c.attempts - c.used} of {c.attempts}"
            for name, c in restart.services.items()
            if c.used < c.attempts
        )
        what = f"{f.group} may be restarted on {f.node} (restarts left: {left})"
    services = config.groups[f.group].services
    budget = sum(s.start_timeout + s.stop_timeout for s in services)
    return Outcome(
        Status.SKIPPED,
        f"skipped: {what}",
        f.group,
        {
            "gate": "restart",
            "restarting": restart.restarting,
            "recheck": RECHECK,
            "recheck_within": budget + 2 * config.hook.request_timeout,
        },
    )


def gate_outage(f: Failure, view: ClusterView, _config: ClusterConfig) -> Outcome | None:
    """Not a local failure: the source is cut off (or silent) and so is every peer that answers.

    A degraded node (one scope of targets lost, :mod:`gardien.node.verdict`) is not cut off, so
    an external-only or internal-only outage is no reason to leave a failed group where it is.
    """
    source = view.status(f.node)
    own = NetworkState.ISOLATED if source is None else source.verdict
    others = [s.verdict for n, s in view.statuses.items() if n != f.node and s is not None]
    if cluster_view(own, others) == "outage":
        return Outcome(Status.SKIPPED, "skipped: network-wide outage", f.group, {"gate": "outage"})
    return None


def gate_anti_flap(f: Failure, view: ClusterView, config: ClusterConfig) -> Outcome | None:
    """Cooldown and max_moves over every node's journal.

    A move between two nodes that both do not answer is in no journal anyone can read: the
    group's history is unknown then, and unknown is never "no moves".  With one such node, its
    moves are known from the nodes it took the group from (see :meth:`ClusterView.move_ages`).
    """
    hook = config.hook
    unknown = view.unknown(config.groups[f.group].nodes)
    if len(unknown) > 1:
        return Outcome(
            Status.SKIPPED,
            f"skipped: moves of {f.group} unknown ({' and '.join(unknown)} did not answer)",
            f.group,
            {"gate": "history"},
        )
    ages = [a for a in view.move_ages(f.group) if a < hook.window]
    if ages and ages[0] < hook.cooldown:
        return Outcome(
            Status.SKIPPED,
            f"skipped: {f.group} moved {ages[0]:.0f} s ago (cooldown {hook.cooldown:g} s)",
            f.group,
            {"gate": "cooldown"},
        )
    if len(ages) >= hook.max_moves:
        return Outcome(
            Status.SKIPPED,
            f"skipped: {f.group} moved {len(ages)} time{'s' if len(ages) > 1 else ''} in "
            f"{hook.window:g} s "
            f"(max_moves {hook.max_moves})",
            f.group,
            {"gate": "max_moves"},
        )
    return None


def unhealthy_reason(node: str, view: ClusterView) -> str | None:
    """Why ``node`` cannot take a group, or None."""
    status = view.status(node)
    if status is None:
        return "unreachable"
    if status.verdict.isolated:
        return "network failed"
    return None


def choose_target(
    group: str, failed: str, config: ClusterConfig, view: ClusterView
) -> tuple[str | None, list[str]]:
    """The first healthy node of the preference list other than ``failed``; and why not others.

    A degraded node (it reaches one scope of targets only) takes the group only when no node of
    the list has its whole network: it serves, but fewer clients reach it.
    """
    why_not: list[str] = []
    fit: list[tuple[str, bool]] = []  # (node, degraded)
    for node in (n for n in config.groups[group].nodes if n != failed):
        status, reason = view.status(node), unhealthy_reason(node, view)
        if status is not None and reason is None:
            fit.append((node, status.verdict.degraded))
        else:
            why_not.append(f"{node}: {reason}")
    best = sorted(fit, key=lambda nd: nd[1])  # stable: the list's order among equals
    return (best[0][0] if best else None), why_not


def gate_fencing(f: Failure, view: ClusterView, config: ClusterConfig) -> Outcome | None:
    """A source that cannot be asked to release must be fenced first; no fence agent, no move."""
    if f.node in config.fencing:
        return None
    if view.status(f.node) is None:
        why = "unreachable"
    elif f.node_down:
        why = "down"
    else:
        return None
    return Outcome(
        Status.REFUSED, f"refused: {f.node} {why} and no fence agent", f.group, {"gate": "fencing"}
    )


GATES: tuple[Gate, ...] = (
    gate_frozen,
    gate_settle,
    gate_held_elsewhere,
    gate_restart,
    gate_outage,
    gate_anti_flap,
)


def decide(f: Failure, config: ClusterConfig, view: ClusterView) -> Outcome | Move:
    """The gates in order, then the target; a :class:`Move` only on the target's own hook."""
    for gate in GATES:
        outcome = gate(f, view, config)
        if outcome is not None:
            return outcome
    target, why_not = choose_target(f.group, f.node, config, view)
    if target is None:
        return Outcome(
            Status.REFUSED,
            f"refused: no healthy node to take {f.group} ({'; '.join(why_not)})",
            f.group,
            {"gate": "target"},
        )
    if target != view.me:
        return Outcome(
            Status.NOT_MINE, f"not mine: target is {target}", f.group, {"target": target}
        )
    fencing = gate_fencing(f, view, config)
    if fencing is not None:
        return fencing
    return Move(f.group, f.node, target, source_silent=view.status(f.node) is None)
