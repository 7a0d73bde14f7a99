"""Restart in place, on real hook pairs and a real service whose process the test kills.

The group runs two services on loopback (tests/support/webgroup.py): ``web``, a Python HTTP server
whose page the hook's ``http`` probe checks, and its dependant ``worker``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from failover_hook.metrics import HookMetrics
from failover_hook.outcome import Outcome, Status
from failover_hook.receiver import Receiver
from failover_hook.webhook import Alert, Payload, parse_payload
from gardien.polling import wait_until
from tests.support.hooks import HookPair, alert, payload
from tests.support.webgroup import (
    alive,
    answers,
    crash,
    entries,
    kill_services,
    last_decision,
    pid_of,
    restarts_counted,
    send_failed,
    settling,
    start_time,
    web_pair,
)


def test_a_crash_is_restarted_in_place_with_its_dependants(make_pair, tmp_path: Path) -> None:
    pair = web_pair(make_pair, tmp_path, attempts=1)
    old_web, old_worker = pid_of(tmp_path, "web"), pid_of(tmp_path, "worker")
    assert _counted_zero(pair)
    crash(tmp_path)
    send_failed(pair)
    restarted = last_decision(pair, "node1", 0)
    assert restarted["status"] == "done", restarted
    assert restarted["message"].startswith("restarted web on node1 in "), restarted
    assert restarted["message"].endswith("(restart 1 of 1)"), restarted
    # the service is back, a new process; its dependant was restarted after it
    web, worker = pid_of(tmp_path, "web"), pid_of(tmp_path, "worker")
    assert web != old_web and alive(web) and answers(pair)
    assert worker != old_worker and alive(worker) and not alive(old_worker)
    assert start_time(worker) > start_time(web)
    [entry] = entries(pair, "node1", "restart")
    assert entry["status"] == "done" and entry["services"] == ["web"], entry
    assert [s["description"] for s in entry["steps"]] == [
        "stop service worker",
        "stop service web",
        "start service web",
        "start service worker",
    ]
    assert all(s["state"] == "done" for s in entry["steps"]), entry
    assert restarts_counted(pair, "node1", "web", "done") == 1
    # the target skipped while the holder restarted, then while the group settles; no move
    node2 = pair.wait_decisions(
        "node2", "web", settle=lambda found: found[-1]["details"].get("gate") == "settle"
    )
    assert all(d["status"] == "skipped" for d in node2), node2
    assert {d["details"]["gate"] for d in node2} <= {"restart", "settle"}, node2
    assert pair.held("node1", "web") and not pair.held("node2", "web")
    assert pair.moves("node2", "web") == [] and pair.moves("node1", "web") == []
    restarts = pair.get("node1", "/api/v1/status?group=web")["groups"]["web"]["restart"]
    assert restarts["services"]["web"] == {"attempts": 1, "used": 1, "window": 600.0}
    assert restarts["pending"] is True  # worker still has its restart
    _shown(pair)

    # a second crash within the window: the restarts of web are used up, the group moves
    assert wait_until(lambda: not settling(pair), 10)
    before = len(pair.decisions("node2", "web"))
    crash(tmp_path)
    send_failed(pair)
    declined = last_decision(pair, "node1", 1)
    assert declined["status"] == "refused", declined
    assert declined["message"] == (
        "not restarted: web has no restart left (1 of 1 in 600 s); web moves"
    )
    moved = pair.wait_decisions(
        "node2", "web", before + 1, settle=lambda f: f[-1]["status"] == "done"
    )[-1]
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert pair.held("node2", "web") and not pair.held("node1", "web")
    assert alive(pid_of(tmp_path, "web")) and answers(pair)
    assert restarts_counted(pair, "node1", "web", "done") == 1


def _shown(pair: HookPair) -> None:
    """``gardien status`` and ``gardien history`` show the restart and what is left of them."""
    doc = json.loads(pair.cli("status", "--output", "json").stdout)["groups"]["web"]
    assert doc["restarts"] == {
        "web": {"attempts": 1, "used": 1, "left": 0, "window_seconds": 600.0},
        "worker": {"attempts": 1, "used": 0, "left": 1, "window_seconds": 600.0},
    }
    assert doc["restarting"] is False and doc["active_node"] == "node1"
    text = pair.cli("status").stdout
    assert "  restarts on node1: web 1 used, 0 left in 600 s; worker 0 used, 1 left in 600 s" in (
        text.splitlines()
    ), text
    history = pair.cli("history", "web").stdout.splitlines()
    [line] = [row for row in history if " restart " in row]
    assert "on node1: web" in line and "done: restarted web on node1 in " in line, history
    steps = history[history.index(line) + 1 : history.index(line) + 5]
    assert [row.split()[0] for row in steps] == ["done"] * 4, history
    assert steps[0].endswith("stop service worker") and steps[3].endswith("start service worker")


def _counted_zero(pair: HookPair) -> bool:
    return all(
        restarts_counted(pair, "node1", s, r) == 0
        for s in ("web", "worker")
        for r in ("done", "failed")
    )


def test_a_restart_that_fails_moves_the_group_at_once(make_pair, tmp_path: Path) -> None:
    """No second alert: the target decides again while the holder restarts, and moves."""
    pair = web_pair(make_pair, tmp_path, attempts=2)
    (tmp_path / "broken").touch()
    crash(tmp_path)
    send_failed(pair)
    failed = last_decision(pair, "node1", 0)
    assert failed["status"] == "failed", failed
    assert failed["message"].startswith(
        "restart of web on node1 failed at start service web: start of web failed: sh exited 3"
    ), failed
    assert failed["message"].endswith("; web moves"), failed
    moved = pair.wait_decisions("node2", "web", settle=lambda f: f[-1]["status"] == "done")[-1]
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert pair.held("node2", "web") and alive(pid_of(tmp_path, "web")) and answers(pair)
    assert restarts_counted(pair, "node1", "web", "failed") == 1
    [entry] = entries(pair, "node1", "restart")
    assert [s["state"] for s in entry["steps"]] == ["done", "done", "failed", "pending"], entry


def test_no_attempts_moves_at_once_as_before(make_pair, tmp_path: Path) -> None:
    pair = web_pair(make_pair, tmp_path, attempts=0)
    crash(tmp_path)
    send_failed(pair)
    assert last_decision(pair, "node1", 0)["message"] == "not mine: target is node2"
    moved = last_decision(pair, "node2", 0)
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert entries(pair, "node1", "restart") == []
    assert answers(pair)


def test_a_node_alert_moves_without_restarting(make_pair, tmp_path: Path) -> None:
    pair = web_pair(make_pair, tmp_path, attempts=1)
    crash(tmp_path)
    send_failed(pair, alertname="GardienNodeIsolated")
    moved = last_decision(pair, "node2", 0)
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert entries(pair, "node1", "restart") == []
    assert pair.held("node2", "web") and answers(pair)


@pytest.fixture(autouse=True)
def _no_service_left(tmp_path: Path) -> Any:
    """Whatever a test leaves running of its services is killed at its end."""
    yield
    kill_services(tmp_path)


def _receiver(outcomes: list[Outcome]) -> tuple[Receiver, list[float]]:
    """A receiver whose decisions are ``outcomes`` in turn (the last one repeated); the times
    (monotonic) it decided at."""
    calls: list[float] = []

    def handle(alert: Alert, execute: bool, received: float | None) -> list[Outcome]:
        calls.append(time.monotonic())
        return [outcomes[min(len(calls), len(outcomes)) - 1]]

    metrics = HookMetrics(["web"], lambda: (False, {}))
    return Receiver(handle, metrics, dry_run=False, workers=2), calls


def _skip(within: float) -> Outcome:
    details = {"gate": "restart", "recheck": 0.05, "recheck_within": within}
    return Outcome(Status.SKIPPED, "skipped: web restarting web on node1", "web", details)


def _alert() -> Payload:
    return parse_payload(json.dumps(payload(alert(group="web", node="node1"))).encode())


def test_a_skip_for_a_restart_is_decided_again_until_the_move() -> None:
    moved = Outcome(Status.DONE, "moved web node1 -> node2 in 1.0 s", "web")
    receiver, calls = _receiver([_skip(30), _skip(30), _skip(30), moved])
    try:
        receiver.receive(_alert())
        assert wait_until(lambda: len(receiver.decisions()) == 2, 10)
        # the same skip three times is recorded once, then the move; nothing after it
        assert [d["message"] for d in receiver.decisions()] == [
            "skipped: web restarting web on node1",
            "moved web node1 -> node2 in 1.0 s",
        ]
        assert not wait_until(lambda: len(calls) > 4, 1)
    finally:
        receiver.shutdown()


def test_re_decisions_of_a_skip_end_within_its_bound() -> None:
    receiver, calls = _receiver([_skip(1)])
    try:
        started = time.monotonic()
        receiver.receive(_alert())
        assert wait_until(lambda: len(calls) >= 2, 5)
        assert not wait_until(lambda: calls[-1] - started > 1.5, 3), calls
        assert len(calls) < 20 and len(receiver.decisions()) == 1
    finally:
        receiver.shutdown()
