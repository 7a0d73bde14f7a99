"""Restart in place, on real hook pairs and a real service whose process the test kills.

The group runs two services on loopback: ``web``, a Python HTTP server whose page the hook's
``http`` probe checks, and its dependant ``worker``.  Each writes its pid file when it starts; the
test reads the pid files and the processes' start times in /proc itself, not gardien's report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from failover_hook.metrics import HookMetrics
from failover_hook.outcome import Outcome, Status
from failover_hook.receiver import Receiver
from failover_hook.webhook import Alert, Payload, parse_payload
from gardien.polling import wait_until
from tests.support.hooks import HookPair, alert, payload

PAGE = "restart test OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _services(folder: Path, attempts: int) -> list[dict[str, Any]]:
    """``web`` (fails to start once when ``folder/broken`` exists, removing it) and ``worker``."""
    (folder / "www").mkdir()
    (folder / "www" / "index.html").write_text(PAGE + "\n")
    port = _free_port()
    web = (
        f"if [ -e {folder}/broken ]; then rm {folder}/broken; exit 3; fi; "
        f"echo $$ > {folder}/web.pid; "
        f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1 --directory {folder}/www"
    )
    restart = {"attempts": attempts, "window": "10m"}
    return [
        {
            "name": "web",
            "start": ["sh", "-c", web],
            "process": {"pidfile": str(folder / "web.pid")},
            "probes": [
                {"http": {"url": f"http://127.0.0.1:{port}/", "expect_regex": PAGE, "timeout": 1}}
            ],
            "start_timeout": "10s",
            "stop_timeout": "5s",
            "restart": restart,
        },
        {
            "name": "worker",
            "start": ["sh", "-c", f"echo $$ > {folder}/worker.pid; exec sleep 600"],
            "process": {"pidfile": str(folder / "worker.pid")},
            "start_timeout": "5s",
            "stop_timeout": "5s",
            "restart": restart,
        },
    ]


def _pair(make_pair: Any, tmp_path: Path, attempts: int, settle: float = 2) -> HookPair:
    groups = {"web": {"nodes": ["node1", "node2"], "services": _services(tmp_path, attempts)}}
    pair: HookPair = make_pair(hook={"settle": settle, "cooldown": 0}, groups=groups)
    pair.post("node1", "/api/v1/groups/web/acquire").raise_for_status()
    assert wait_until(lambda: not _settling(pair), 10)  # a failure while it settles: no action
    return pair


def _pid(folder: Path, service: str) -> int:
    return int((folder / f"{service}.pid").read_text())


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command (field 3, the state, first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def _started(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22)."""
    return int(_stat(pid)[19])


def _crash(folder: Path) -> int:
    """SIGKILL of web's process; its pid."""
    pid = _pid(folder, "web")
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not _alive(pid), 10)
    return pid


def _failed(pair: HookPair, *nodes: str, alertname: str = "GardienGroupFailed") -> None:
    """The alert, fresh, to every hook (as Alertmanager sends it)."""
    labels = {"group": "web", "node": "node1"} if alertname == "GardienGroupFailed" else {}
    body = payload(alert(alertname, starts_at=_now(), **{"node": "node1", **labels}))
    for node in nodes or ("node1", "node2"):
        pair.send(node, body).raise_for_status()


def _now() -> str:
    """A fresh ``startsAt``: each failure is a new alert, as Alertmanager would send it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _answers(pair: HookPair) -> bool:
    """The page, from the test itself, at the probe's URL."""
    url = re.search(r"url: (http://127\.0\.0\.1:\d+/)", pair.config_file.read_text())
    assert url is not None
    try:
        return PAGE in requests.get(url.group(1), timeout=2).text
    except requests.RequestException:
        return False


def _entries(pair: HookPair, node: str, kind: str) -> list[dict[str, Any]]:
    found = pair.get(node, "/api/v1/history?group=web")["moves"]
    return [m for m in found if m["kind"] == kind]


def _restarts_counted(pair: HookPair, node: str, service: str, result: str) -> float:
    text = pair.session.get(pair.url(node, "/metrics"), timeout=10).text
    line = f'gardien_hook_restarts_total{{group="web",result="{result}",service="{service}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    assert found, text
    return float(found[0].split()[-1])


def _last(pair: HookPair, node: str, before: int) -> dict[str, Any]:
    return pair.wait_decisions(node, "web", before + 1)[-1]


def test_a_crash_is_restarted_in_place_with_its_dependants(make_pair, tmp_path: Path) -> None:
    pair = _pair(make_pair, tmp_path, attempts=1)
    old_web, old_worker = _pid(tmp_path, "web"), _pid(tmp_path, "worker")
    assert _counted_zero(pair)
    _crash(tmp_path)
    _failed(pair)
    restarted = _last(pair, "node1", 0)
    assert restarted["status"] == "done", restarted
    assert restarted["message"].startswith("restarted web on node1 in "), restarted
    assert restarted["message"].endswith("(restart 1 of 1)"), restarted
    # the service is back, a new process; its dependant was restarted after it
    web, worker = _pid(tmp_path, "web"), _pid(tmp_path, "worker")
    assert web != old_web and _alive(web) and _answers(pair)
    assert worker != old_worker and _alive(worker) and not _alive(old_worker)
    assert _started(worker) > _started(web)
    [entry] = _entries(pair, "node1", "restart")
    assert entry["status"] == "done" and entry["services"] == ["web"], entry
    assert [s["description"] for s in entry["steps"]] == [
        "stop service worker",
        "stop service web",
        "start service web",
        "start service worker",
    ]
    assert all(s["state"] == "done" for s in entry["steps"]), entry
    assert _restarts_counted(pair, "node1", "web", "done") == 1
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
    assert wait_until(lambda: not _settling(pair), 10)
    before = len(pair.decisions("node2", "web"))
    _crash(tmp_path)
    _failed(pair)
    declined = _last(pair, "node1", 1)
    assert declined["status"] == "refused", declined
    assert declined["message"] == (
        "not restarted: web has no restart left (1 of 1 in 600 s); web moves"
    )
    moved = pair.wait_decisions(
        "node2", "web", before + 1, settle=lambda f: f[-1]["status"] == "done"
    )[-1]
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert pair.held("node2", "web") and not pair.held("node1", "web")
    assert _alive(_pid(tmp_path, "web")) and _answers(pair)
    assert _restarts_counted(pair, "node1", "web", "done") == 1


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
        _restarts_counted(pair, "node1", s, r) == 0
        for s in ("web", "worker")
        for r in ("done", "failed")
    )


def _settling(pair: HookPair) -> bool:
    return bool(pair.get("node1", "/api/v1/status?group=web")["groups"]["web"]["settling"])


def test_a_restart_that_fails_moves_the_group_at_once(make_pair, tmp_path: Path) -> None:
    """No second alert: the target decides again while the holder restarts, and moves."""
    pair = _pair(make_pair, tmp_path, attempts=2)
    (tmp_path / "broken").touch()
    _crash(tmp_path)
    _failed(pair)
    failed = _last(pair, "node1", 0)
    assert failed["status"] == "failed", failed
    assert failed["message"].startswith(
        "restart of web on node1 failed at start service web: start of web failed: sh exited 3"
    ), failed
    assert failed["message"].endswith("; web moves"), failed
    moved = pair.wait_decisions("node2", "web", settle=lambda f: f[-1]["status"] == "done")[-1]
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert pair.held("node2", "web") and _alive(_pid(tmp_path, "web")) and _answers(pair)
    assert _restarts_counted(pair, "node1", "web", "failed") == 1
    [entry] = _entries(pair, "node1", "restart")
    assert [s["state"] for s in entry["steps"]] == ["done", "done", "failed", "pending"], entry


def test_no_attempts_moves_at_once_as_before(make_pair, tmp_path: Path) -> None:
    pair = _pair(make_pair, tmp_path, attempts=0)
    _crash(tmp_path)
    _failed(pair)
    assert _last(pair, "node1", 0)["message"] == "not mine: target is node2"
    moved = _last(pair, "node2", 0)
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert _entries(pair, "node1", "restart") == []
    assert _answers(pair)


def test_a_node_alert_moves_without_restarting(make_pair, tmp_path: Path) -> None:
    pair = _pair(make_pair, tmp_path, attempts=1)
    _crash(tmp_path)
    _failed(pair, alertname="GardienNodeIsolated")
    moved = _last(pair, "node2", 0)
    assert moved["message"].startswith("moved web node1 -> node2"), moved
    assert _entries(pair, "node1", "restart") == []
    assert pair.held("node2", "web") and _answers(pair)


@pytest.fixture(autouse=True)
def _no_service_left(tmp_path: Path) -> Any:
    """Whatever a test leaves running of its services is killed at its end."""
    yield
    for service in ("web", "worker"):
        try:
            pid = _pid(tmp_path, service)
        except (OSError, ValueError):
            continue
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


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
