"""The network verdict in the decision: each row of docs/alerting.md's table, for one node and
for both, as a pure decision, then on real hook pairs whose targets are really (un)reachable.

On the hook pairs both hooks run in this machine's namespace, so they see the same network: the
rows "for both nodes".  A target that must not answer is an address of the test supernet, for
which the root namespace holds an ``unreachable`` route (``guard_supernet``): the ping fails at
once and never leaves the machine; one that must answer is loopback.
"""

from __future__ import annotations

import json

import pytest

from failover_hook.decide import ClusterView, Failure, Move, decide
from failover_hook.outcome import Outcome
from failover_hook.status import GroupStatus, NodeStatus
from gardien.config import parse_config
from gardien.node.verdict import NetworkState
from tests.support.hooks import HookPair, alert, payload
from tests.support.netns import guard_supernet

CONFIG = parse_config("""
cluster: c
nodes: {node1: {address: 127.0.0.1}, node2: {address: 127.0.0.2}, node3: {address: 127.0.0.3}}
groups:
  php4: {nodes: [node1, node2, node3]}
  java: {nodes: [node2, node3]}
""")

OK, ISOLATED = NetworkState.OK, NetworkState.ISOLATED
FAULTS = {  # the table's faults, each as the verdict it gives a node (tests/unit's judge rows)
    "link down": ISOLATED,
    "internal down only": NetworkState.DEGRADED_INTERNAL,
    "external down only": NetworkState.DEGRADED_EXTERNAL,
    "both down": ISOLATED,
}
CRASH = Failure("php4", "node1", "GardienGroupFailed")
"""A local crash: php4's service failed on node1, which holds it."""


def status(name: str, state: NetworkState, held: tuple[str, ...] = ()) -> NodeStatus:
    legacy = "failed" if state.isolated else "ok"
    return NodeStatus(
        node=name,
        cluster="c",
        network=legacy,
        network_verdict=state,
        groups={g: GroupStatus(held=g in held) for g in CONFIG.groups},
    )


def two_nodes(me: str, node1: NetworkState, node2: NetworkState) -> ClusterView:
    """node1 holds php4; node3 is down (its hook does not answer)."""
    nodes = {"node1": status("node1", node1, ("php4",)), "node2": status("node2", node2)}
    return ClusterView(me, {**nodes, "node3": None})


@pytest.mark.parametrize("fault", FAULTS)
def test_the_fault_on_the_node_that_holds_the_group(fault: str) -> None:
    """node1 alone: a crash there moves php4 to node2, whether node1 is cut off or degraded."""
    view = two_nodes("node2", FAULTS[fault], OK)
    assert decide(CRASH, CONFIG, view) == Move("php4", "node1", "node2")


@pytest.mark.parametrize("fault", FAULTS)
def test_the_fault_on_the_peer(fault: str) -> None:
    """node2 alone: a degraded node2 still takes php4; an isolated one does not."""
    result = decide(CRASH, CONFIG, two_nodes("node2", OK, FAULTS[fault]))
    if FAULTS[fault].isolated:
        assert isinstance(result, Outcome)
        assert result.message == (
            "refused: no healthy node to take php4 (node2: network failed; node3: unreachable)"
        )
    else:
        assert result == Move("php4", "node1", "node2")


@pytest.mark.parametrize("fault", FAULTS)
def test_the_fault_on_both_nodes(fault: str) -> None:
    """Both: cut off everywhere is a network-wide outage and nothing moves; degraded everywhere is
    not, and a crash moves the group (the peer serves as well as the node it leaves)."""
    state = FAULTS[fault]
    result = decide(CRASH, CONFIG, two_nodes("node2", state, state))
    if state.isolated:
        assert isinstance(result, Outcome)
        assert result.message == "skipped: network-wide outage"
        assert result.details["gate"] == "outage"
    else:
        assert result == Move("php4", "node1", "node2")


def test_a_node_with_its_whole_network_is_preferred_to_a_degraded_one() -> None:
    statuses = {
        "node1": status("node1", OK, ("php4",)),
        "node2": status("node2", NetworkState.DEGRADED_EXTERNAL),
        "node3": status("node3", OK),
    }
    assert decide(CRASH, CONFIG, ClusterView("node3", statuses)) == Move("php4", "node1", "node3")
    statuses["node3"] = status("node3", NetworkState.DEGRADED_INTERNAL)
    assert decide(CRASH, CONFIG, ClusterView("node2", statuses)) == Move("php4", "node1", "node2")


def test_statuses_of_other_hook_versions() -> None:
    """A hook that predates the verdict reports only ``network`` (failed = isolated); a state
    this version does not know falls back on it instead of making the status unreadable."""
    old = NodeStatus.model_validate(
        {"node": "n", "cluster": "c", "network": "failed", "groups": {}}
    )
    assert old.verdict is ISOLATED
    newer = NodeStatus.model_validate(
        {"node": "n", "cluster": "c", "network": "ok", "network_verdict": "flaky", "groups": {}}
    )
    assert newer.network_verdict is None and newer.verdict is OK


# ---- real hooks --------------------------------------------------------------------------------

ANSWERS = "127.0.0.1"
SILENT = "10.213.255.254"


def _decided(pair: HookPair, hook: str, group: str, **labels: str) -> str:
    """Send one fresh alert about ``group`` to ``hook``; its decision's message."""
    before = len(pair.decisions(hook, group))
    pair.send(hook, payload(alert(group=group, **labels))).raise_for_status()
    return str(pair.wait_decisions(hook, group, before + 1)[-1]["message"])


def _pair(make_pair, internal: str, external: str, interface: str = "lo") -> HookPair:
    guard_supernet()
    network = {"interface": interface, "internal": [internal], "external": [external]}
    pair: HookPair = make_pair(hook={"settle": 0}, network={**network, "timeout": 0.5})
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    return pair


def _nodes(pair: HookPair) -> dict[str, dict[str, object]]:
    return dict(json.loads(pair.cli("status", "--output", "json").stdout)["nodes"])


@pytest.mark.parametrize(
    ("internal", "external", "verdict"),
    [(ANSWERS, SILENT, "degraded-external"), (SILENT, ANSWERS, "degraded-internal")],
    ids=["external-only outage", "internal-only outage"],
)
def test_a_local_crash_during_a_one_scope_outage_moves_the_group(
    make_pair, internal: str, external: str, verdict: str
) -> None:
    """Both nodes lose one scope of targets (the rules fire no outage then): a crash on node1
    moves g1 to node2, which reaches the rest of the network as well as node1 did."""
    pair = _pair(make_pair, internal, external)
    for node in ("node1", "node2"):
        reported = pair.get(node, "/api/v1/status")
        assert (reported["network"], reported["network_verdict"]) == ("ok", verdict)
        assert SILENT in reported["network_reason"], reported
    assert _nodes(pair)["node1"]["network"] == "ok"
    assert _nodes(pair)["node1"]["network_verdict"] == verdict
    assert f"network ok ({verdict})" in pair.cli("status").stdout
    assert _decided(pair, "node2", "g1", node="node1").startswith("moved g1 node1 -> node2")
    assert pair.held("node2", "g1") and not pair.held("node1", "g1")


@pytest.mark.parametrize(
    ("internal", "external", "interface"),
    [(SILENT, SILENT, "lo"), (ANSWERS, ANSWERS, "gtnolink0")],
    ids=["every target down", "link down"],
)
def test_the_whole_network_down_moves_nothing(
    make_pair, internal: str, external: str, interface: str
) -> None:
    """Both nodes cut off (no target answers; or their link is down, here an interface that does
    not exist, whatever answers): a network-wide outage, the crash moves nothing."""
    pair = _pair(make_pair, internal, external, interface)
    for node in ("node1", "node2"):
        reported = pair.get(node, "/api/v1/status")
        assert (reported["network"], reported["network_verdict"]) == ("failed", "isolated")
        assert _decided(pair, node, "g1", node="node1") == "skipped: network-wide outage"
    assert {n["network"] for n in _nodes(pair).values()} == {"outage"}
    assert pair.held("node1", "g1") and pair.moves("node2", "g1") == []
