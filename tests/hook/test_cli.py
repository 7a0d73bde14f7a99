"""The operator CLI against real hooks: status, acquire/release, migrate, history, replay."""

from __future__ import annotations

import json

import pytest

from gardien import exitcodes
from tests.support.hooks import HookPair, alert, payload


@pytest.fixture(scope="module")
def pair(make_pair) -> HookPair:
    return make_pair(hook={"settle": 0, "cooldown": 0})


def test_status_shows_groups_by_node(pair: HookPair) -> None:
    assert pair.cli("acquire", "g1", "--node", "node1", "--force").returncode == exitcodes.OK
    done = pair.cli("status", "--output", "json")
    assert done.returncode == exitcodes.OK, done.stderr
    doc = json.loads(done.stdout)
    assert doc["groups"]["g1"] == {
        "active_node": "node1",
        "held_by": ["node1"],
        "healthy": True,
        "frozen": False,
        "settling": False,
        "move_in_progress": False,
        "last_change_seconds_ago": doc["groups"]["g1"]["last_change_seconds_ago"],
        "restarting": False,
        "restarts": {},
    }
    assert doc["groups"]["g2"]["active_node"] is None
    assert doc["nodes"]["node1"] == {
        "reachable": True,
        "network": "ok",
        "network_verdict": "ok",
        "cluster_frozen": False,
    }
    text = pair.cli("status").stdout
    assert text.splitlines()[0] == "Cluster test"
    g1 = next(line for line in text.splitlines() if line.startswith("g1 "))
    assert g1.split()[:4] == ["g1", "ACTIVE", "-", "ok"]


def test_actions_ask_for_confirmation(pair: HookPair) -> None:
    refused = pair.cli("acquire", "g2", "--node", "node2", stdin="n\n")
    assert refused.returncode == exitcodes.ABORTED
    assert not pair.held("node2", "g2")
    done = pair.cli("acquire", "g2", "--node", "node2", stdin="y\n")
    assert done.returncode == exitcodes.OK, done.stdout
    assert pair.held("node2", "g2")
    released = pair.cli("release", "g2", "--node", "node2", "--force", "--output", "json")
    assert released.returncode == exitcodes.OK
    assert json.loads(released.stdout)["node2"]["group"] == "g2"
    assert not pair.held("node2", "g2")


def test_migrate_dry_run_then_for_real_and_history(pair: HookPair) -> None:
    pair.cli("acquire", "g3", "--node", "node1", "--force")
    dry = pair.cli("migrate", "g3", "--to", "node2", "--dry-run")
    assert dry.returncode == exitcodes.OK
    assert "dry run: would move g3 node1 -> node2" in dry.stdout
    assert "release g3 on node1" in dry.stdout  # the printed plan
    assert pair.held("node1", "g3") and pair.moves("node2", "g3") == []
    done = pair.cli("migrate", "g3", "--to", "node2", "--force")
    assert done.returncode == exitcodes.OK, done.stdout
    assert done.stdout.startswith("node2: moved g3 node1 -> node2")
    assert pair.held("node2", "g3") and not pair.held("node1", "g3")
    again = pair.cli("migrate", "g3", "--to", "node2", "--force")
    assert again.stdout.strip() == "node2: g3 already active on node2"
    history = pair.cli("history", "g3", "--output", "json")
    kinds = [(m["node"], m["kind"]) for m in json.loads(history.stdout)]
    assert ("node2", "move") in kinds and ("node1", "release") in kinds
    text = pair.cli("history", "g3").stdout
    assert "move" in text and "node1 -> node2" in text and "done" in text


def test_replay_is_a_dry_run_unless_executed(pair: HookPair) -> None:
    pair.cli("acquire", "g4", "--node", "node1", "--force")
    saved = pair.tmp / "payload.json"
    saved.write_text(json.dumps(payload(alert(group="g4", node="node1"))))
    dry = pair.cli("replay", str(saved))
    assert dry.returncode == exitcodes.OK, dry.stderr
    assert "node1#1: not mine: target is node2" in dry.stdout
    assert "node2#1: dry run: would move g4 node1 -> node2" in dry.stdout
    assert pair.held("node1", "g4") and pair.moves("node2", "g4") == []
    done = pair.cli("replay", str(saved), "--execute", "--force")
    assert "node2#1: moved g4 node1 -> node2" in done.stdout
    assert pair.held("node2", "g4")
    broken = pair.tmp / "broken.json"
    broken.write_text('{"version": "3"}')
    assert pair.cli("replay", str(broken)).returncode == exitcodes.CONFIG_INVALID


def test_unreachable_hook(pair: HookPair) -> None:
    pair.stop("node2")
    try:
        status = pair.cli("status", "--output", "json")
        assert status.returncode == exitcodes.OK
        assert json.loads(status.stdout)["nodes"]["node2"]["reachable"] is False
        assert "UNREACHABLE" in pair.cli("status").stdout
        migrate = pair.cli("migrate", "g1", "--to", "node2", "--force")
        assert migrate.returncode == exitcodes.UNREACHABLE
        freeze = pair.cli("freeze", "g1")
        assert freeze.returncode == exitcodes.UNREACHABLE
        assert "node1: g1 frozen on node1" in freeze.stdout
    finally:
        pair.start("node2")
    # the freeze is kept in the state folder: it survives a restart
    pair.stop("node1")
    pair.start("node1")
    assert pair.get("node1", "/api/v1/status")["groups"]["g1"]["frozen"] is True
    assert json.loads(pair.cli("status", "--output", "json").stdout)["groups"]["g1"]["frozen"]
