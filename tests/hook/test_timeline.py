"""``gardien history GROUP --svg FILE`` on real hooks: the picture has a bar for every journaled
step of the move and of the nodes' own release and acquire under it, and marks a failed one."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.hooks import HookPair, alert, payload

pytestmark = pytest.mark.timeout(180)

SVG = "{http://www.w3.org/2000/svg}"


def _services(folder: Path) -> list[dict[str, Any]]:
    """Two real services, a sleeper each with its pid file: started, probed, stopped for real."""
    return [
        {
            "name": name,
            "start": ["sh", "-c", f"echo $$ > {folder / name}.pid; exec sleep 600"],
            "process": {"pidfile": str(folder / f"{name}.pid")},
            "start_timeout": 10,
            "stop_timeout": 5,
        }
        for name in ("db", "web")
    ]


def _decide(pair: HookPair) -> str:
    before = len(pair.decisions("node2", "g1"))
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    pair.send("node2", payload(alert(group="g1", node="node1", starts_at=now))).raise_for_status()
    return str(pair.wait_decisions("node2", "g1", before + 1)[-1]["message"])


def _bars(path: Path) -> list[dict[str, str]]:
    return [r.attrib for r in ET.parse(path).getroot().iter(f"{SVG}rect")]


def _steps(pair: HookPair, node: str, kind: str) -> list[dict[str, Any]]:
    entries = pair.get(node, "/api/v1/history?group=g1")["moves"]
    [entry] = [e for e in entries if e["kind"] == kind and e["trigger_detail"]["kind"] != "api"]
    return list(entry["steps"])


def test_a_move_is_drawn_with_every_journaled_step(
    make_pair: Callable[..., HookPair], tmp_path: Path
) -> None:
    pair = make_pair(
        hook={"settle": 0, "cooldown": 0},
        groups={"g1": {"nodes": ["node1", "node2"], "services": _services(tmp_path)}},
    )
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    assert _decide(pair).startswith("moved g1 node1 -> node2")
    [move] = pair.moves("node2", "g1")
    release, acquire = _steps(pair, "node1", "release"), _steps(pair, "node2", "acquire")
    picture = tmp_path / "move.svg"
    done = pair.cli("history", "g1", "--svg", str(picture))
    assert done.returncode == 0, done.stdout + done.stderr
    bars = _bars(picture)
    # the alert and the decision, the move's steps, the release's and the acquire's under them
    assert len(bars) == 2 + len(move["steps"]) + len(release) + len(acquire), picture.read_text()
    assert len(release) >= 2 and len(acquire) >= 2  # each service stopped and started
    assert [b["data-depth"] for b in bars].count("1") == len(release) + len(acquire)
    assert {b["data-state"] for b in bars} <= {"info", "done", "skipped"}, bars  # fence not needed
    # every phase lasts a time, the decision too (arrival to the move's start, not to its end)
    took = [float(t) for t in re.findall(r": (-?[\d.]+) s, \w+</title>", picture.read_text())]
    assert took and min(took) >= 0, took
    title = ET.parse(picture).getroot().findtext(f"{SVG}title")
    assert title == f"g1: node1 -> node2 (move node2#{move['id']}, {move['status']})", title


def test_a_failed_fence_is_marked(make_pair: Callable[..., HookPair], tmp_path: Path) -> None:
    pair = make_pair(
        hook={"settle": 0, "cooldown": 0, "request_timeout": 1},
        fencing={"node1": {"command": ["false"], "timeout": 5}},
        groups={"g1": {"nodes": ["node1", "node2"], "services": _services(tmp_path)}},
    )
    pair.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    with pair.frozen("node1"):
        message = _decide(pair)
        assert "fencing node1 failed" in message, message
        picture = tmp_path / "failed.svg"
        # node1 does not answer: its part is missing and the command says so, the rest is drawn
        done = pair.cli("history", "g1", "--svg", str(picture))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unreachable" in done.stderr
    [move] = pair.moves("node2", "g1")
    states = [b["data-state"] for b in _bars(picture)]
    assert states.count("failed") == sum(s["state"] == "failed" for s in move["steps"]) >= 2
    assert "FAILED" in picture.read_text()


def test_history_svg_without_any_move_is_a_usage_error(
    make_pair: Callable[..., HookPair], tmp_path: Path
) -> None:
    pair = make_pair(groups={"g1": {"nodes": ["node1", "node2"]}})
    done = pair.cli("history", "g1", "--svg", str(tmp_path / "none.svg"))
    assert done.returncode != 0
    assert "no move of g1" in done.stderr
    assert not (tmp_path / "none.svg").exists()
