"""The acquire API's guard and force between two real hooks on loopback (groups without
resources: the held markers are the truth, and the peers' status is asked for real)."""

from __future__ import annotations

import pytest

from tests.support.hooks import HookPair


@pytest.fixture(scope="module")
def pair(make_pair) -> HookPair:
    return make_pair(hook={"settle": 0, "cooldown": 0})


def _acquire(pair: HookPair, node: str, group: str, body: object = None) -> dict[str, object]:
    response = pair.post(node, f"/api/v1/groups/{group}/acquire", json=body)
    response.raise_for_status()
    answer: dict[str, object] = response.json()
    return answer


def _acquires(pair: HookPair, node: str, group: str) -> list[dict[str, object]]:
    history = pair.get(node, f"/api/v1/history?group={group}")["moves"]
    return [m for m in history if m["kind"] == "acquire"]


def test_held_elsewhere_is_refused_and_force_overrides(pair: HookPair) -> None:
    assert _acquire(pair, "node1", "g1")["status"] == "done"

    refused = _acquire(pair, "node2", "g1")
    assert (refused["status"], refused["message"]) == ("refused", "refused: g1 is held by node1")
    assert refused["details"] == {"node": "node2", "holders": ["node1"], "silent": {}}
    assert not pair.held("node2", "g1")

    forced = _acquire(pair, "node2", "g1", {"force": True})
    assert forced["status"] == "done", forced
    assert pair.held("node2", "g1")  # both now: the operator's word, journaled
    [newest, first] = _acquires(pair, "node2", "g1")
    assert (newest["forced"], newest["steps"][0]["state"]) == (True, "skipped")
    assert (first["forced"], first["status"]) == (False, "refused")
    # the history says so to people too
    lines = [line for line in pair.cli("history", "g1").stdout.splitlines() if " acquire " in line]
    assert len(lines) == 3, lines  # node1's acquire, node2's refused one, node2's forced one
    [forced_line] = [line for line in lines if "(forced)" in line]
    assert " done (forced): " in forced_line, lines


def test_not_held_elsewhere_is_acquired_and_journals_who_answered(pair: HookPair) -> None:
    assert _acquire(pair, "node2", "g2", {"force": False})["status"] == "done"
    [entry] = _acquires(pair, "node2", "g2")
    assert not entry["forced"]
    assert (entry["steps"][0]["state"], entry["steps"][0]["message"]) == (
        "done",
        "not held by node1",
    )


def test_acquire_body_is_checked(pair: HookPair) -> None:
    for body in ({"force": "yes"}, {"forced": True}, {"given_back_by": "node9"}):
        response = pair.post("node2", "/api/v1/groups/g3/acquire", json=body)
        assert response.status_code == 400, response.text
    assert not pair.held("node2", "g3")


def test_a_group_given_back_does_not_ask_the_node_giving_it(pair: HookPair) -> None:
    """A move's undo: node1 gives g4 back to node2 and says so; it is not asked (a recovering
    hook does not serve yet), and nothing is forced."""
    given = _acquire(pair, "node2", "g4", {"given_back_by": "node1"})
    assert given["status"] == "done", given
    [entry] = _acquires(pair, "node2", "g4")
    assert not entry["forced"]
    assert entry["steps"][0]["message"] == "node1 gives the group back (nothing of it is up there)"
