"""The failure confirmed on the source before a move (``hook.confirm_failure``), on real hook pairs
and a real service (tests/support/webgroup.py): a group that runs again is not moved, a crashed
or hung one is, and the move's journal says what its source found.  Facts are read from the
service's own pid file and /proc, and from its page fetched by the test.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from failover_hook.client import HttpPeer
from failover_hook.confirm import ask
from gardien.config.loader import load_config
from tests.support.webgroup import (
    alive,
    answers,
    crash,
    kill_services,
    last_decision,
    pid_of,
    send_failed,
    web_pair,
)


@pytest.fixture(autouse=True)
def _no_service_left(tmp_path: Path) -> Any:
    """Whatever a test leaves of its services (stopped ones too) is killed at its end."""
    yield
    kill_services(tmp_path)


def test_a_group_that_runs_on_its_node_is_not_moved(make_pair, tmp_path: Path) -> None:
    """One failed probe (the alert) is not a failure its node still sees: no move."""
    pair = web_pair(make_pair, tmp_path, attempts=0, confirm_failure=True)
    web = pid_of(tmp_path, "web")
    send_failed(pair)
    skipped = last_decision(pair, "node2", 0)
    assert skipped["status"] == "skipped", skipped
    assert skipped["details"]["gate"] == "confirm", skipped
    assert skipped["message"].startswith(
        "skipped: web not failing on node1 now (every resource of web runs, checked there in "
    ), skipped
    # the same process serves the page, nothing was stopped or started anywhere
    assert pid_of(tmp_path, "web") == web and alive(web) and answers(pair)
    assert pair.moves("node2", "web") == [] and pair.moves("node1", "web") == []
    assert pair.held("node1", "web") and not pair.held("node2", "web")


def test_the_same_alert_moves_without_confirmation(make_pair, tmp_path: Path) -> None:
    """``confirm_failure: false``: the alert alone decides, as before the confirmation."""
    pair = web_pair(make_pair, tmp_path, attempts=0, confirm_failure=False)
    web = pid_of(tmp_path, "web")
    send_failed(pair)
    moved = last_decision(pair, "node2", 0)
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert pid_of(tmp_path, "web") != web and not alive(web) and answers(pair)


def test_a_crash_is_confirmed_and_moves(make_pair, tmp_path: Path) -> None:
    pair = web_pair(make_pair, tmp_path, attempts=0, confirm_failure=True)
    crashed = crash(tmp_path)
    send_failed(pair)
    moved = last_decision(pair, "node2", 0)
    assert moved["status"] == "done", moved
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    web = pid_of(tmp_path, "web")
    assert web != crashed and alive(web) and answers(pair)
    [move] = pair.moves("node2", "web")
    [note] = [n for n in move["notes"] if n.startswith("failure confirmed on node1 in ")]
    assert note.endswith(": service web not running (no process of web)"), note
    history = pair.cli("history", "web").stdout
    assert f"note: {note}" in history, history


def test_a_hang_is_confirmed(make_pair, tmp_path: Path) -> None:
    """SIGSTOP: the process is there, its page never comes; its node sees it stopped."""
    pair = web_pair(make_pair, tmp_path, attempts=0, confirm_failure=True)
    hung = pid_of(tmp_path, "web")
    os.kill(hung, signal.SIGSTOP)
    send_failed(pair)
    moved = last_decision(pair, "node2", 0)
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    [move] = pair.moves("node2", "web")
    [note] = [n for n in move["notes"] if n.startswith("failure confirmed on node1 in ")]
    assert note.endswith(f": service web error (probe process failed: master pid {hung} is stopped "
                         "(state T))"), note  # fmt: skip
    assert not alive(hung)  # the release stopped it, stopped as it was
    assert alive(pid_of(tmp_path, "web")) and answers(pair)


def test_the_check_stops_at_the_first_failed_resource(make_pair, tmp_path: Path) -> None:
    """What a confirmation asks: the group's resources in order, up to the first that fails."""
    pair = web_pair(make_pair, tmp_path, attempts=0, confirm_failure=True)
    everything = pair.get("node1", "/api/v1/status?group=web")["groups"]["web"]["agent"]
    assert list(everything["resources"]) == ["service web", "service worker"], everything
    crash(tmp_path)
    until = pair.get("node1", "/api/v1/status?group=web&resources=until-failure")
    agent = until["groups"]["web"]["agent"]
    assert list(agent["resources"]) == ["service web"], agent  # worker left unchecked
    assert agent["resources"]["service web"]["state"] == "not_running" and not agent["healthy"]
    bad = pair.session.get(pair.url("node1", "/api/v1/status?resources=some"), timeout=10)
    assert bad.status_code == 400, bad.text


def test_a_source_that_does_not_answer_confirms_nothing(make_pair, tmp_path: Path) -> None:
    """Asked directly: a hook that does not answer is no answer (the move then goes on as
    before: release asked, fence only once the node is confirmed gone)."""
    pair = web_pair(make_pair, tmp_path, attempts=0, confirm_failure=True)
    config = load_config(pair.config_file, check_files=False)
    peer = HttpPeer.for_node(config, "node1", pair.token)
    assert ask(peer, "web").failed is False
    crash(tmp_path)
    assert ask(peer, "web").failed is True
    pair.stop("node1")
    silent = ask(peer, "web")
    assert silent.failed is None, silent
    assert silent.what.startswith("node1 did not answer: "), silent
