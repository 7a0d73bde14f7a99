"""The network verdict (gardien.node.verdict): every row of docs/alerting.md's table, for one node
(:func:`judge`) and for the cluster (:func:`cluster_view`).

The rows are shared with the rules' test (tests/render/test_network_verdict_rules.py), which runs
the same inputs through the recording rule and requires the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gardien.node.verdict import NetworkState, cluster_view, judge

OK, ISOLATED = NetworkState.OK, NetworkState.ISOLATED
DEGRADED_EXTERNAL = NetworkState.DEGRADED_EXTERNAL
DEGRADED_INTERNAL = NetworkState.DEGRADED_INTERNAL

INTERNAL = ("10.0.0.254", "10.0.0.20")
EXTERNAL = ("192.0.2.1", "198.51.100.1")


@dataclass(frozen=True)
class Row:
    """One node's network: its link, and which targets of each scope answer."""

    name: str
    link: bool
    internal: dict[str, bool]
    external: dict[str, bool]
    state: NetworkState


def _answers(targets: tuple[str, ...], *up: bool) -> dict[str, bool]:
    return dict(zip(targets, up, strict=True))


ROWS = [
    Row("all up", True, _answers(INTERNAL, 1, 1), _answers(EXTERNAL, 1, 1), OK),
    Row("link down", False, _answers(INTERNAL, 0, 0), _answers(EXTERNAL, 0, 0), ISOLATED),
    Row(
        "link down, targets answering (another route)",
        False,
        _answers(INTERNAL, 1, 1),
        _answers(EXTERNAL, 1, 1),
        ISOLATED,
    ),
    Row(
        "internal down only",
        True,
        _answers(INTERNAL, 0, 0),
        _answers(EXTERNAL, 1, 1),
        DEGRADED_INTERNAL,
    ),
    Row(
        "external down only",
        True,
        _answers(INTERNAL, 1, 1),
        _answers(EXTERNAL, 0, 0),
        DEGRADED_EXTERNAL,
    ),
    Row("both down", True, _answers(INTERNAL, 0, 0), _answers(EXTERNAL, 0, 0), ISOLATED),
    Row(
        "one target of each scope answers",
        True,
        _answers(INTERNAL, 0, 1),
        _answers(EXTERNAL, 1, 0),
        OK,
    ),
    Row("internal targets only, answering", True, _answers(INTERNAL, 1, 0), {}, OK),
    Row("internal targets only, down", True, _answers(INTERNAL, 0, 0), {}, ISOLATED),
    Row("external targets only, down", True, {}, _answers(EXTERNAL, 0, 0), ISOLATED),
    Row("no targets", True, {}, {}, NetworkState.UNKNOWN),
    Row("no targets, link down", False, {}, {}, NetworkState.UNKNOWN),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_one_node(row: Row) -> None:
    verdict = judge(row.link, row.internal, row.external)
    assert verdict.state is row.state
    assert verdict.reason


def test_the_reason_names_the_scope_and_its_targets() -> None:
    verdict = judge(True, _answers(INTERNAL, 1, 1), _answers(EXTERNAL, 0, 0))
    assert "external" in verdict.reason and all(t in verdict.reason for t in EXTERNAL)


FAULTS = {  # the table's faults, each as the state it gives a node
    "link down": ISOLATED,
    "internal down only": DEGRADED_INTERNAL,
    "external down only": DEGRADED_EXTERNAL,
    "both down": ISOLATED,
}


@pytest.mark.parametrize("fault", FAULTS)
def test_the_cluster_for_one_node_and_for_both(fault: str) -> None:
    state = FAULTS[fault]
    cut_off = state.isolated
    # one node: cut off alone is isolated (its groups move), degraded is not cut off
    assert cluster_view(state, [OK]) == ("isolated" if cut_off else "ok")
    assert cluster_view(OK, [state]) == "ok"
    # both nodes: cut off everywhere is the network's fault, degraded everywhere is not an outage
    assert cluster_view(state, [state]) == ("outage" if cut_off else "ok")


def test_an_isolated_node_beside_a_degraded_peer_is_isolated() -> None:
    """The peer still reaches part of the network: a move to it helps."""
    assert cluster_view(ISOLATED, [DEGRADED_EXTERNAL]) == "isolated"
    assert cluster_view(ISOLATED, [DEGRADED_INTERNAL, ISOLATED]) == "isolated"
    assert cluster_view(ISOLATED, []) == "isolated"  # nobody to compare with
    assert cluster_view(NetworkState.UNKNOWN, [ISOLATED]) == "unknown"
