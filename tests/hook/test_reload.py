"""The hook reloads its config on SIGHUP and ``POST /-/reload``, and refuses, keeping the config
in force, one that is invalid, drops a group it holds, or comes while a move runs."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import requests
import yaml

from gardien.polling import wait_until
from tests.support.hooks import HookPair, alert, payload


def _config(pair: HookPair) -> dict[str, Any]:
    return dict(yaml.safe_load(pair.config_file.read_text()))


def _write(pair: HookPair, config: dict[str, Any]) -> None:
    pair.config_file.write_text(yaml.safe_dump(config))


def _reload(pair: HookPair, node: str) -> requests.Response:
    return pair.post(node, "/-/reload")


def _metric(pair: HookPair, node: str, name: str) -> float:
    text = pair.session.get(pair.url(node, "/metrics"), timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in {node}'s metrics"
    return float(found.group(1))


def _groups(pair: HookPair, node: str) -> set[str]:
    return set(pair.get(node, "/api/v1/status?resources=0")["groups"])


def _decided(pair: HookPair, hook: str, group: str, **labels: str) -> str:
    before = len(pair.decisions(hook, group))
    pair.send(hook, payload(alert(group=group, **labels))).raise_for_status()
    return str(pair.wait_decisions(hook, group, before + 1)[-1]["message"])


def _sighup(pair: HookPair, node: str) -> None:
    os.kill(pair.procs[node].pid, signal.SIGHUP)


def test_a_changed_config_is_put_in_force_by_reload_and_sighup(make_pair) -> None:
    groups = {g: {"nodes": ["node1", "node2"]} for g in ("g1", "g2")}
    pair = make_pair(hook={"settle": 30, "cooldown": 600}, groups=groups)
    started = _metric(pair, "node2", "gardien_hook_config_last_reload_success_timestamp_seconds")
    assert _metric(pair, "node2", "gardien_hook_config_last_reload_successful") == 1
    config = _config(pair)
    config["groups"]["g3"] = {"nodes": ["node1", "node2"]}
    config["hook"].update(settle=0, cooldown=0)
    _write(pair, config)

    answer = _reload(pair, "node2")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "done" and answer.json()["details"]["added"] == ["g3"]
    _sighup(pair, "node1")
    assert wait_until(lambda: "g3" in _groups(pair, "node1"), 30), pair.log("node1")
    assert _groups(pair, "node2") == {"g1", "g2", "g3"}

    # the new group and the new settle act: g3 just acquired on node1 moves at once
    pair.post("node1", "/api/v1/groups/g3/acquire").raise_for_status()
    assert _decided(pair, "node2", "g3", node="node1").startswith("moved g3 node1 -> node2")
    assert pair.held("node2", "g3") and not pair.held("node1", "g3")
    for node in ("node1", "node2"):
        assert _metric(pair, node, "gardien_hook_config_last_reload_successful") == 1
        assert (
            _metric(pair, node, "gardien_hook_config_last_reload_success_timestamp_seconds")
            >= started
        )
    metrics = pair.session.get(pair.url("node2", "/metrics"), timeout=10).text
    assert 'gardien_hook_moves_total{group="g3"} 1.0' in metrics
    assert "config reloaded" in pair.log("node1")


def test_an_invalid_config_is_refused_and_the_old_one_stays(make_pair) -> None:
    pair = make_pair(hook={"settle": 0, "cooldown": 0})
    good = _config(pair)
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["groups"]["g9"] = {"nodes": ["node1", "node3"], "vip": {"address": "10.213.0.9"}}
    _write(pair, bad)

    answer = _reload(pair, "node2")
    assert answer.status_code == 500, answer.text
    refused = answer.json()
    assert refused["status"] == "refused" and refused["details"]["reason"] == "invalid"
    problems = "\n".join(refused["details"]["problems"])
    assert "unknown node 'node3'" in problems and "needs a prefix length" in problems
    assert _metric(pair, "node2", "gardien_hook_config_last_reload_successful") == 0
    assert "unknown node 'node3'" in pair.log("node2")  # the log says why

    _sighup(pair, "node1")
    assert wait_until(
        lambda: _metric(pair, "node1", "gardien_hook_config_last_reload_successful") == 0, 30
    ), pair.log("node1")
    # the config in force still acts on both nodes
    for node in ("node1", "node2"):
        assert _groups(pair, node) == set(good["groups"])
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    assert _decided(pair, "node2", "g1", node="node1").startswith("moved g1 node1 -> node2")

    _write(pair, good)
    assert _reload(pair, "node2").status_code == 200
    assert _metric(pair, "node2", "gardien_hook_config_last_reload_successful") == 1


def test_a_config_dropping_a_held_group_is_refused(make_pair) -> None:
    pair = make_pair()
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    config = _config(pair)
    del config["groups"]["g1"]
    _write(pair, config)

    answer = _reload(pair, "node1")
    assert answer.status_code == 500, answer.text
    refused = answer.json()
    assert refused["details"]["reason"] == "drops_held" and refused["group"] == "g1"
    assert _metric(pair, "node1", "gardien_hook_config_last_reload_successful") == 0
    assert "g1" in _groups(pair, "node1") and pair.held("node1", "g1")
    assert "drops g1" in pair.log("node1")
    # node2 does not hold g1: the same file is put in force there
    assert _reload(pair, "node2").status_code == 200
    assert "g1" not in _groups(pair, "node2")
    # node1 still releases g1 with the config it kept
    released = pair.post("node1", "/api/v1/groups/g1/release")
    assert released.json()["status"] == "done", released.text


def test_a_reload_during_a_move_is_refused_and_the_move_goes_on(make_pair, tmp_path: Path) -> None:
    pidfile = tmp_path / "slow.pid"
    slow = {
        "name": "slow",
        "start": ["sh", "-c", f"sleep 3; echo $$ > {pidfile}; exec sleep 600"],
        "process": {"pidfile": str(pidfile)},
    }
    groups = {"g1": {"nodes": ["node1", "node2"], "services": [slow]}}
    pair = make_pair(groups=groups)
    config = _config(pair)
    config["hook"]["cooldown"] = 60
    _write(pair, config)
    answers: list[requests.Response] = []
    acquire = threading.Thread(
        target=lambda: answers.append(pair.post("node1", "/api/v1/groups/g1/acquire"))
    )
    acquire.start()
    try:
        in_progress = wait_until(
            lambda: pair.get("node1", "/api/v1/status?resources=0")["groups"]["g1"][
                "move_in_progress"
            ],
            30,
        )
        assert in_progress
        answer = _reload(pair, "node1")
        assert answer.status_code == 409, answer.text
        assert answer.json()["status"] == "in_progress" and answer.json()["group"] == "g1"
        assert _metric(pair, "node1", "gardien_hook_config_last_reload_successful") == 0
    finally:
        acquire.join(timeout=60)
    assert answers and answers[0].json()["status"] == "done", answers
    assert pair.held("node1", "g1")
    assert _reload(pair, "node1").status_code == 200  # once the move ended
    released = pair.post("node1", "/api/v1/groups/g1/release")
    assert released.json()["status"] == "done", released.text


def test_reload_needs_authentication(make_pair) -> None:
    pair = make_pair()
    assert requests.post(pair.url("node1", "/-/reload"), timeout=10).status_code == 401
    assert requests.get(pair.url("node1", "/-/healthy"), timeout=10).status_code == 200
    assert pair.session.get(pair.url("node1", "/-/reload"), timeout=10).status_code == 405
    assert _metric(pair, "node1", "gardien_hook_config_last_reload_successful") == 1
