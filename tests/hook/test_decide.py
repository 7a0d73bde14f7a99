"""The decision as a pure function of the cluster view: cases a two-hook run cannot stage."""

from __future__ import annotations

from typing import Any

from failover_hook.decide import ClusterView, Failure, Move, decide, failures
from failover_hook.outcome import Outcome, Status
from failover_hook.status import GroupStatus, NodeStatus, RestartStatus, ServiceRestarts
from failover_hook.webhook import Alert
from gardien.config import parse_config

CONFIG = parse_config("""
cluster: c
nodes: {node1: {address: 127.0.0.1}, node2: {address: 127.0.0.2}, node3: {address: 127.0.0.3}}
fencing: {node1: {command: [fence-node1]}}
groups:
  php4: {nodes: [node1, node2, node3]}
  mysql1: {nodes: [node1, node3]}
  java: {nodes: [node2, node3]}
""")


def node(
    name: str, held: tuple[str, ...] = (), network: str = "ok", **group_fields: Any
) -> NodeStatus:
    return NodeStatus(
        node=name,
        cluster="c",
        network=network,  # type: ignore[arg-type]
        groups={g: GroupStatus(held=g in held, **group_fields) for g in CONFIG.groups},
    )


def view(me: str, **statuses: NodeStatus | None) -> ClusterView:
    return ClusterView(me, dict(statuses))


def outcome(result: Outcome | Move) -> Outcome:
    assert isinstance(result, Outcome), result
    return result


def test_first_healthy_node_of_the_preference_list_acts() -> None:
    failed = Failure("php4", "node1", "GardienGroupFailed")
    healthy = {"node1": node("node1", ("php4",)), "node2": node("node2"), "node3": node("node3")}
    assert decide(failed, CONFIG, view("node2", **healthy)) == Move("php4", "node1", "node2")
    assert outcome(decide(failed, CONFIG, view("node3", **healthy))).message == (
        "not mine: target is node2"
    )
    # node2's network fails: node3 is the target, as every hook computes
    sick = {**healthy, "node2": node("node2", network="failed")}
    assert decide(failed, CONFIG, view("node3", **sick)) == Move("php4", "node1", "node3")
    # unreachable is unknown, never healthy
    gone = {**healthy, "node2": None, "node3": node("node3", network="failed")}
    assert outcome(decide(failed, CONFIG, view("node3", **gone))).message == (
        "refused: no healthy node to take php4 (node2: unreachable; node3: network failed)"
    )


def test_outage_only_when_no_other_node_reaches_the_targets() -> None:
    failed = Failure("php4", "node1", "GardienGroupFailed")
    down = {
        n: node(n, ("php4",) if n == "node1" else (), network="failed")
        for n in ("node1", "node2", "node3")
    }
    assert outcome(decide(failed, CONFIG, view("node2", **down))).message == (
        "skipped: network-wide outage"
    )
    # the failed node alone cannot reach them: isolated, a move helps
    isolated = {**down, "node2": node("node2"), "node3": node("node3")}
    assert decide(failed, CONFIG, view("node2", **isolated)) == Move("php4", "node1", "node2")


def test_fencing_is_required_for_an_unreachable_or_down_source() -> None:
    statuses = {"node1": None, "node2": node("node2"), "node3": node("node3")}
    # node1 has a fence agent: the move goes ahead, the mover fences
    assert decide(
        Failure("mysql1", "node1", "GardienNodeDown", node_down=True),
        CONFIG,
        view("node3", **statuses),
    ) == Move("mysql1", "node1", "node3", source_silent=True)
    # node2 has none
    statuses = {"node1": node("node1"), "node2": None, "node3": node("node3")}
    assert outcome(
        decide(Failure("java", "node2", "GardienGroupFailed"), CONFIG, view("node3", **statuses))
    ).message == ("refused: node2 unreachable and no fence agent")
    statuses["node2"] = node("node2", ("java",))
    assert outcome(
        decide(
            Failure("java", "node2", "GardienNodeDown", node_down=True),
            CONFIG,
            view("node3", **statuses),
        )
    ).message == ("refused: node2 down and no fence agent")


def test_held_elsewhere_and_split_brain() -> None:
    failed = Failure("php4", "node1", "GardienGroupFailed")
    moved = {"node1": node("node1"), "node2": node("node2", ("php4",)), "node3": node("node3")}
    result = outcome(decide(failed, CONFIG, view("node2", **moved)))
    assert result.status == Status.NOTHING_TO_DO
    assert result.message == "nothing to do: php4 already active on node2 (alert about node1)"
    both = {**moved, "node1": node("node1", ("php4",))}
    assert outcome(decide(failed, CONFIG, view("node2", **both))).message == (
        "refused: php4 held by node1 and node2 (split brain)"
    )


def test_anti_flap_merges_every_node_journal() -> None:
    failed = Failure("php4", "node1", "GardienGroupFailed")
    statuses: dict[str, NodeStatus | None] = {
        "node1": node("node1", ("php4",), moves={"node1#4": 700.0}),
        "node2": node("node2", moves={"node2#1": 2000.0, "node2#2": 4000.0}),
        "node3": node("node3"),
    }
    # two moves in the window (the one 4000 s ago is older), the last 700 s ago: allowed
    assert decide(failed, CONFIG, view("node2", **statuses)) == Move("php4", "node1", "node2")
    statuses["node3"] = node("node3", moves={"node3#9": 100.0})
    assert outcome(decide(failed, CONFIG, view("node2", **statuses))).message == (
        "skipped: php4 moved 100 s ago (cooldown 600 s)"
    )
    statuses["node3"] = node("node3", moves={"node3#9": 1000.0})
    assert outcome(decide(failed, CONFIG, view("node2", **statuses))).message == (
        "skipped: php4 moved 3 times in 3600 s (max_moves 3)"
    )
    # a move journaled by both its ends (node3 ran it, node1 released for it) counts once
    statuses["node1"] = node("node1", ("php4",), moves={"node1#4": 700.0, "node3#9": 1000.5})
    statuses["node2"] = node("node2")
    assert decide(failed, CONFIG, view("node2", **statuses)) == Move("php4", "node1", "node2")


def test_anti_flap_history_of_nodes_that_do_not_answer() -> None:
    failed = Failure("php4", "node1", "GardienGroupFailed")
    # node3 does not answer: its moves are known from node1, which released php4 for them
    statuses: dict[str, NodeStatus | None] = {
        "node1": node("node1", ("php4",), moves={"node3#1": 900.0, "node3#2": 1500.0}),
        "node2": node("node2", moves={"node2#7": 1200.0}),
        "node3": None,
    }
    assert outcome(decide(failed, CONFIG, view("node2", **statuses))).message == (
        "skipped: php4 moved 3 times in 3600 s (max_moves 3)"
    )
    # node1 and node3 do not answer: a move between them is in no journal node2 can read
    statuses = {"node1": None, "node2": node("node2"), "node3": None}
    assert outcome(decide(failed, CONFIG, view("node2", **statuses))).message == (
        "skipped: moves of php4 unknown (node1 and node3 did not answer)"
    )
    # a group of node2 and node3: node1's silence does not hide any of its moves
    java = Failure("java", "node3", "GardienGroupFailed")
    statuses = {"node1": None, "node2": node("node2"), "node3": node("node3", ("java",))}
    assert decide(java, CONFIG, view("node2", **statuses)) == Move("java", "node3", "node2")


def test_node_alerts_expand_to_the_groups_of_the_node() -> None:
    isolated = Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "GardienNodeIsolated", "node": "node1"},
            "startsAt": "2026-11-24T22:55:37Z",
            "fingerprint": "f",
        }
    )
    reachable = view("node2", node1=node("node1", ("php4",)), node2=node("node2"), node3=None)
    assert [f.group for f in failures(isolated, CONFIG, reachable)] == ["php4"]
    # node1 does not answer: every group it may run that no reachable node holds
    silent = view("node2", node1=None, node2=node("node2"), node3=node("node3", ("mysql1",)))
    assert [f.group for f in failures(isolated, CONFIG, silent)] == ["php4"]


def test_the_target_waits_for_the_holders_restart_only_on_a_group_alert() -> None:
    counts = {"apache-php4": ServiceRestarts(attempts=2, used=1, window=600)}
    restarting = RestartStatus(
        restarting=True,
        pending=True,
        restarting_services=["apache-php4"],
        attempt=2,
        attempts=2,
        services=counts,
    )
    statuses = {
        "node1": node("node1", ("php4",), restart=restarting),
        "node2": node("node2"),
        "node3": node("node3"),
    }
    failed = Failure("php4", "node1", "GardienGroupFailed")
    skipped = outcome(decide(failed, CONFIG, view("node2", **statuses)))
    assert skipped.message == "skipped: php4 restarting apache-php4 on node1 (restart 2 of 2)"
    assert skipped.details["gate"] == "restart" and skipped.details["restarting"] is True
    assert skipped.details["recheck"] > 0 and skipped.details["recheck_within"] > 0
    # restarts left, none running yet: the holder is about to decide
    pending = {**statuses, "node1": node("node1", ("php4",), restart=RestartStatus(
        pending=True, services=counts
    ))}  # fmt: skip
    assert outcome(decide(failed, CONFIG, view("node2", **pending))).message == (
        "skipped: php4 may be restarted on node1 (restarts left: apache-php4 1 of 2)"
    )
    # the holder declined (or its restart failed), it does not answer, or the node is at fault
    declined = {**statuses, "node1": node("node1", ("php4",), restart=RestartStatus())}
    assert decide(failed, CONFIG, view("node2", **declined)) == Move("php4", "node1", "node2")
    silent = {**statuses, "node1": None}
    assert decide(failed, CONFIG, view("node2", **silent)) == Move(
        "php4", "node1", "node2", source_silent=True
    )
    isolated = Failure("php4", "node1", "GardienNodeIsolated")
    assert decide(isolated, CONFIG, view("node2", **statuses)) == Move("php4", "node1", "node2")
