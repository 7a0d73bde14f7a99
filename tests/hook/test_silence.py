"""A silent node is fenced only once confirmed gone (failover_hook/silence.py), on real hooks, a
real ``gardien exporter`` and a real Prometheus scraping them on loopback.

The source's hook is frozen (SIGSTOP: its kernel still accepts connections, nothing answers), as a
hook stalled by a flood of connections would look to its peer.  Its fence agent leaves a mark, so
the test sees by itself whether it ran.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gardien.polling import wait_until
from gardien_lab.freeze import freeze
from tests.support.exporter import ExporterProcess, free_port
from tests.support.hooks import HookPair, alert, payload
from tests.support.prometheus import prometheus

pytestmark = pytest.mark.timeout(180)


def _pair(
    tmp: Path,
    prometheus_port: int,
    *,
    fence_agent: bool = True,
    groups: dict[str, Any] | None = None,
) -> tuple[HookPair, Path]:
    mark = tmp / "fenced-node1"
    pair = HookPair(
        tmp,
        hook={
            "settle": 0,
            "cooldown": 0,
            "request_timeout": 1,
            "prometheus_url": f"http://127.0.0.1:{prometheus_port}",
        },
        fencing={"node1": {"command": ["touch", str(mark)], "timeout": 5}} if fence_agent else {},
        groups=groups or {"g1": {"nodes": ["node1", "node2"]}},
    )
    return pair, mark


@contextlib.contextmanager
def _scraped(tmp: Path, pair: HookPair, prometheus_port: int) -> Iterator[None]:
    """The pair started, with node1's exporter and a Prometheus scraping it and both hooks."""
    exporter = ExporterProcess(pair.config_file)
    pair.start()
    try:
        exporter.wait_ready()
        jobs = {
            "gardien-hook": _hooks(pair),
            "gardien-exporter": {f"127.0.0.1:{exporter.port}": "node1"},
        }
        with prometheus(tmp, prometheus_port, jobs, pair.token):
            yield
    finally:
        exporter.process.terminate()
        exporter.process.wait(10)
        pair.terminate()


def _decide(pair: HookPair) -> str:
    before = len(pair.decisions("node2", "g1"))
    pair.send("node2", payload(alert(group="g1", node="node1"))).raise_for_status()
    return str(pair.wait_decisions("node2", "g1", before + 1)[-1]["message"])


def _hooks(pair: HookPair) -> dict[str, str]:
    return {f"{a}:{pair.port}": n for n, a in pair.addresses.items()}


def test_silent_node_that_prometheus_cannot_scrape_either_is_fenced(tmp_path: Path) -> None:
    port = free_port()
    pair, mark = _pair(tmp_path, port)
    pair.start()
    try:
        with prometheus(tmp_path, port, {"gardien-hook": _hooks(pair)}, pair.token):
            pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
            with pair.frozen("node1"):
                message = _decide(pair)
            assert message.startswith("moved g1 node1 -> node2 in "), message
            assert "status unanswered 3 times on fresh connections" in message, message
            assert "Prometheus did not scrape node1 in the last" in message, message
            assert mark.exists(), "the fence agent did not run"
            assert pair.held("node2", "g1")
    finally:
        pair.terminate()


def test_silent_node_that_prometheus_still_scrapes_is_not_fenced(tmp_path: Path) -> None:
    """Busy, not gone: node1's exporter answers Prometheus while its hook answers nobody."""
    port = free_port()
    pair, mark = _pair(tmp_path, port)
    with _scraped(tmp_path, pair, port):
        pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
        with pair.frozen("node1"):
            message = _decide(pair)
        assert message.startswith("refused: node1 unreachable, not fenced: "), message
        assert "Prometheus scraped node1 within the last" in message, message
        assert message.endswith("busy, not gone; nothing acquired"), message
        assert not mark.exists(), "node1 was fenced although Prometheus still scraped it"
        # node1 kept its group, node2 took nothing
        assert pair.held("node1", "g1") and not pair.held("node2", "g1")


def test_busy_node_that_answers_a_fresh_connection_is_not_fenced(tmp_path: Path) -> None:
    """The decision's status call timed out, a retry on a fresh connection answers."""
    port = free_port()
    pair, mark = _pair(tmp_path, port)
    pair.start()
    try:
        pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
        # node1's hook thaws while node2's mover retries: the decision saw it silent
        freeze(pair.procs["node1"].pid)
        before = len(pair.decisions("node2", "g1"))
        pair.send("node2", payload(alert(group="g1", node="node1"))).raise_for_status()
        assert wait_until(lambda: _retrying(pair), 30), pair.log("node2")
        os.kill(pair.procs["node1"].pid, signal.SIGCONT)
        message = str(pair.wait_decisions("node2", "g1", before + 1)[-1]["message"])
        assert message.startswith("refused: node1 unreachable, not fenced: node1 answered its "), (
            message
        )
        assert not mark.exists()
        assert pair.held("node1", "g1") and not pair.held("node2", "g1")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pair.procs["node1"].pid, signal.SIGCONT)
        pair.terminate()


def _retrying(pair: HookPair) -> bool:
    """node2's mover has begun its move of g1 (its journal has it): it is past the decision."""
    with contextlib.suppress(requests.RequestException):
        return bool(pair.moves("node2", "g1"))
    return False


@pytest.mark.parametrize("fence_agent", [True, False], ids=["fence-agent", "no-fence-agent"])
def test_source_hook_killed_in_its_release_is_asked_again_once_back(
    tmp_path: Path, fence_agent: bool
) -> None:
    """Found by the fault campaign (seed 1125007070, trial 18; docs/chaos.md): node1's hook was
    killed while it released the group for node2's move.  node2 could not fence node1 (busy, not
    gone) and refused; node1's hook, restarted, finished the release it had been running, and the
    group ran nowhere, with nothing left to start it.  node2 now asks the release again once
    node1's agent answers, and the move goes on; without a fence agent too, where the refusal
    was the same ("no fence agent")."""
    port = free_port()
    pidfile = tmp_path / "daemon.pid"
    slow_stop = {  # a daemon whose stop takes 2 s: the release is in flight long enough
        "name": "slow",
        "start": ["sh", "-c", f"sleep 600 > /dev/null 2>&1 & echo $! > {pidfile}"],
        "stop": ["sh", "-c", f"sleep 2; kill $(cat {pidfile})"],
        "process": {"pidfile": str(pidfile)},
    }
    groups = {"g1": {"nodes": ["node1", "node2"], "services": [slow_stop]}}
    pair, mark = _pair(tmp_path, port, fence_agent=fence_agent, groups=groups)
    try:
        with _scraped(tmp_path, pair, port):
            pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
            before = len(pair.decisions("node2", "g1"))
            pair.send("node2", payload(alert(group="g1", node="node1"))).raise_for_status()
            assert wait_until(lambda: _releasing(pair, "node1"), 30, 0.02), pair.log("node1")
            os.kill(pair.procs["node1"].pid, signal.SIGKILL)
            pair.procs["node1"].wait(10)
            time.sleep(1)  # its unit's RestartSec
            pair.start("node1")
            message = str(pair.wait_decisions("node2", "g1", before + 1)[-1]["message"])
            assert message.startswith("moved g1 node1 -> node2 in "), message
            assert not mark.exists(), "node1 was fenced although Prometheus still scraped it"
            assert pair.held("node2", "g1") and not pair.held("node1", "g1")
            steps = pair.moves("node2", "g1")[-1]["steps"]
            assert [s["state"] for s in steps] == ["done", "skipped", "done"], steps
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def _releasing(pair: HookPair, node: str) -> bool:
    """``node``'s hook is running a release of g1 (its group lock is held)."""
    with contextlib.suppress(requests.RequestException):
        status = pair.get(node, "/api/v1/status?group=g1")
        return bool(status["groups"]["g1"]["move_in_progress"])
    return False
