"""The safety gates, on real hook pairs: each answers with its outcome and starts no move."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.hooks import HookPair, alert, payload
from tests.support.netns import guard_supernet, have_root_and_netns


def _decided(pair: HookPair, hook: str, group: str, **labels: str) -> str:
    """Send one fresh alert about ``group`` to ``hook``; its decision's message."""
    before = len(pair.decisions(hook, group))
    pair.send(hook, payload(alert(group=group, **labels))).raise_for_status()
    return str(pair.wait_decisions(hook, group, before + 1)[-1]["message"])


def _migrated(pair: HookPair, group: str, target: str) -> str:
    """A migrate of ``group`` to ``target`` asked on the target's hook, not forced; its message."""
    answer = pair.post(target, f"/api/v1/groups/{group}/migrate", json={"target": target})
    return str(answer.json()["message"])


@pytest.fixture(scope="module")
def pair(make_pair) -> HookPair:
    return make_pair(hook={"settle": 30, "cooldown": 600})


def test_frozen_group_and_cluster(pair: HookPair) -> None:
    assert pair.cli("freeze", "g1").returncode == 0
    assert _decided(pair, "node2", "g1", node="node1") == "skipped: g1 frozen"
    assert _migrated(pair, "g1", "node2") == "refused: g1 frozen (use --force)"
    assert pair.cli("freeze", "--all").returncode == 0
    assert pair.cli("unfreeze", "g1").returncode == 0
    assert _decided(pair, "node2", "g1", node="node1").startswith("skipped: cluster frozen")
    assert _migrated(pair, "g1", "node2") == "refused: cluster frozen (use --force)"
    assert pair.cli("unfreeze", "--all").returncode == 0
    assert pair.moves("node2", "g1") == []


def test_only_the_target_acts(pair: HookPair) -> None:
    assert _decided(pair, "node1", "g2", node="node1") == "not mine: target is node2"
    assert _decided(pair, "node2", "g2", node="node2") == "not mine: target is node1"
    assert pair.moves("node1", "g2") == pair.moves("node2", "g2") == []


def test_settle_after_a_change_on_either_node(pair: HookPair) -> None:
    pair.post("node1", "/api/v1/groups/g3/acquire").raise_for_status()
    assert _decided(pair, "node2", "g3", node="node1").startswith(
        "skipped: g3 moved 0 s ago (settle 30 s)"
    )
    # the group's services are still starting: an alert about the node that just took it
    # starts no move back either
    assert _decided(pair, "node1", "g3", node="node2").endswith("(settle 30 s)")
    assert pair.moves("node1", "g3") == pair.moves("node2", "g3") == []
    assert pair.held("node1", "g3")


def test_cooldown_after_a_move(make_pair) -> None:
    pair = make_pair(hook={"settle": 0, "cooldown": 600})
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    assert _decided(pair, "node2", "g1", node="node1").startswith("moved g1 node1 -> node2")
    # the move is in node2's journal; node1, the target of the way back, learns it from node2
    message = _decided(pair, "node1", "g1", node="node2")
    assert message.startswith("skipped: g1 moved ") and message.endswith("(cooldown 600 s)")
    assert pair.held("node2", "g1") and pair.moves("node1", "g1") == []


def test_max_moves_in_window_and_node_alerts(make_pair) -> None:
    pair = make_pair(hook={"settle": 0, "cooldown": 0, "max_moves": 1, "window": "1h"})
    for group in ("g1", "g2", "g3"):
        pair.post("node1", f"/api/v1/groups/{group}/acquire").raise_for_status()
    assert _decided(pair, "node2", "g1", node="node1").startswith("moved g1 node1 -> node2")
    assert _decided(pair, "node1", "g1", node="node2") == (
        "skipped: g1 moved 1 time in 3600 s (max_moves 1)"
    )
    # a node alert moves every group active on that node, and only those
    pair.send("node2", payload(alert("GardienNodeIsolated", node="node1"))).raise_for_status()
    for group in ("g2", "g3"):
        assert pair.wait_decisions("node2", group)[-1]["message"].startswith(
            f"moved {group} node1 -> node2"
        )
        assert pair.held("node2", group) and not pair.held("node1", group)
    assert pair.decisions("node2", "g4") == []


def _slow_service(name: str, pidfile: Path) -> dict[str, Any]:
    """A daemon that takes a second to start: its pid file appears after 1 s."""
    start = f"sleep 1; echo $$ > {pidfile}; exec sleep 600"
    return {"name": name, "start": ["sh", "-c", start], "process": {"pidfile": str(pidfile)}}


def test_a_node_alert_moves_its_groups_at_once(make_pair, tmp_path: Path) -> None:
    """Every group of a failed node moves in parallel: one slow start must not hold the others."""
    groups = {
        g: {"nodes": ["node1", "node2"], "services": [_slow_service(g, tmp_path / f"{g}.pid")]}
        for g in ("g1", "g2", "g3")
    }
    pair = make_pair(hook={"settle": 0}, groups=groups)
    for group in groups:
        pair.post("node1", f"/api/v1/groups/{group}/acquire").raise_for_status()
    pair.send("node2", payload(alert("GardienNodeIsolated", node="node1"))).raise_for_status()
    spans = []
    for group in groups:
        decided = pair.wait_decisions("node2", group)[-1]["message"]
        assert decided.startswith(f"moved {group} node1 -> node2"), decided
        assert pair.held("node2", group) and not pair.held("node1", group)
        [move] = pair.moves("node2", group)
        spans.append((move["started"], move["finished"]))
    # each move ran while the others did: every start came before every end
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_max_moves_counts_the_moves_of_a_node_that_does_not_answer(make_pair) -> None:
    """The lab's flapping group: the hook that ran the last moves hangs; the other must still
    count them (node1 journaled its release of each), not see "no moves" and move again."""
    pair = make_pair(
        hook={"settle": 0, "cooldown": 0, "max_moves": 1, "window": "1h", "request_timeout": 1},
        fencing={"node2": {"command": ["true"], "timeout": 5}},
    )
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    assert _decided(pair, "node2", "g1", node="node1").startswith("moved g1 node1 -> node2")
    with pair.frozen("node2"):
        assert _decided(pair, "node1", "g1", node="node2") == (
            "skipped: g1 moved 1 time in 3600 s (max_moves 1)"
        )
    assert pair.moves("node1", "g1") == []
    assert pair.held("node2", "g1") and not pair.held("node1", "g1")


def test_source_that_does_not_answer_is_fenced_without_asking_it_to_release(make_pair) -> None:
    """A release sent to a frozen hook would wait the group's whole budget before the fence."""
    pair = make_pair(
        hook={"settle": 0, "cooldown": 0, "request_timeout": 1},
        fencing={"node1": {"command": ["true"], "timeout": 5}},
    )
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    with pair.frozen("node1"):
        message = _decided(pair, "node2", "g1", node="node1")
        assert message.startswith("moved g1 node1 -> node2 in "), message
        fenced = (
            " s (fenced node1: no answer from its agent in 1 s; "
            "status unanswered 3 times on fresh connections (1 s each, "
        )
        assert fenced in message, message
        assert message.endswith(" s); no Prometheus configured to ask)"), message
    [move] = pair.moves("node2", "g1")
    assert [(s["state"], s["message"]) for s in move["steps"][:2]] == [
        ("failed", "node1 unreachable: no answer from its agent in 1 s; no release asked"),
        ("done", move["steps"][1]["message"]),
    ]
    # nothing was asked of node1: its journal has no release
    assert pair.get("node1", "/api/v1/history?group=g1")["moves"][0]["kind"] == "acquire"


@pytest.mark.skipif(not have_root_and_netns(), reason="needs root for the 10.213/16 route guard")
def test_network_wide_outage(make_pair) -> None:
    guard_supernet()  # the target below is unreachable at once and never leaves this machine
    pair = make_pair(
        hook={"settle": 0},
        network={"interface": "lo", "internal": ["10.213.255.254"], "timeout": 0.5},
    )
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    for node in ("node1", "node2"):
        assert pair.get(node, "/api/v1/status")["network"] == "failed"
        assert _decided(pair, node, "g1", node="node1") == "skipped: network-wide outage"
    status = pair.cli("status", "--output", "json")
    assert '"network": "outage"' in status.stdout
    assert pair.held("node1", "g1") and pair.moves("node2", "g1") == []


def test_status_answers_in_time_while_a_probe_hangs(tmp_path: Path) -> None:
    """A hung service must not make its node look unreachable (peers fence unreachable nodes)."""
    with socket.socket() as silent:  # accepts connections, never says anything
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        service = {
            "name": "mute",
            "probes": [{"tcp": {"host": "127.0.0.1", "port": port, "expect": "hi", "timeout": 4}}],
        }
        hooks = HookPair(
            tmp_path,
            hook={"request_timeout": 2},
            groups={"g1": {"nodes": ["node1", "node2"], "services": [service]}},
        )
        hooks.start()
        try:
            status = hooks.get("node1", "/api/v1/status?group=g1")
            group = status["groups"]["g1"]
            # answered from the bounded check (half the 2 s request timeout), not after the probe
            assert "did not answer within 1 s" in group["agent"]["unchecked"], group
            assert group["held"] is False
        finally:
            hooks.stop()


def _accepted(listener: socket.socket) -> int:
    """Connections waiting on a listening socket (accepted and closed here)."""
    listener.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_decisions_do_not_check_resources(tmp_path: Path) -> None:
    """A decision reads what each node holds, its journal and network; it never runs the groups'
    probes (a hung service would hold it for the probe's timeout on both nodes)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        service = {
            "name": "mute",
            "probes": [{"tcp": {"host": "127.0.0.1", "port": silent.getsockname()[1]}}],
        }
        hooks = HookPair(
            tmp_path, groups={"g1": {"nodes": ["node1", "node2"], "services": [service]}}
        )
        hooks.start()
        try:
            light = hooks.get("node1", "/api/v1/status?group=g1&resources=0")["groups"]["g1"]
            assert light["agent"] == {} and light["held"] is False
            bad = hooks.session.get(hooks.url("node1", "/api/v1/status?resources=yes"), timeout=10)
            assert bad.status_code == 400, bad.text
            assert (
                "invalid status query: resources: Input should be '0', '1' or 'until-failure'"
                in bad.text
            )
            assert _accepted(silent) == 0
            # node1 decides (target node2: "not mine") on both nodes' statuses
            assert _decided(hooks, "node1", "g1", node="node1") == "not mine: target is node2"
            assert _accepted(silent) == 0
            # the full status, as `gardien status` asks it, does check the resources
            hooks.get("node1", "/api/v1/status?group=g1")
            assert _accepted(silent) >= 1
        finally:
            hooks.stop()
