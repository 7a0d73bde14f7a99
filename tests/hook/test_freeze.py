"""Freeze is cluster state: recorded on every hook that answers, learned by a hook that comes
back before it acts, and the newest decision wins when two hooks disagree (real hook pairs)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from failover_hook.app import create_app
from failover_hook.daemon import build_hook
from failover_hook.freeze import FreezeRecord, FreezeState, FreezeStore
from failover_hook.status import NodeStatus
from gardien import exitcodes
from gardien.config import parse_config
from gardien_lab.freeze import freeze as sigstop
from tests.support.hooks import HookPair, alert, payload

FENCE_BOTH = {n: {"command": ["true"], "timeout": 5} for n in ("node1", "node2")}


def _decided(pair: HookPair, hook: str, group: str, **labels: str) -> dict[str, Any]:
    """Send one fresh alert about ``group`` to ``hook``; its decision."""
    before = len(pair.decisions(hook, group))
    pair.send(hook, payload(alert(group=group, **labels))).raise_for_status()
    decision: dict[str, Any] = pair.wait_decisions(hook, group, before + 1)[-1]
    return decision


def _record(pair: HookPair, node: str, group: str) -> dict[str, Any] | None:
    """The freeze record of ``group`` that ``node``'s hook keeps (None: never frozen)."""
    found: dict[str, Any] | None = pair.get(node, "/api/v1/freeze/state")["freeze"]["groups"].get(
        group
    )
    return found


def _version(pair: HookPair, node: str, group: str) -> tuple[int, bool]:
    record = _record(pair, node, group)
    assert record is not None, f"{node} has no freeze record of {group}"
    return record["version"], record["frozen"]


def _saved(pair: HookPair, node: str, group: str) -> bool:
    """Whether ``node``'s state folder says ``group`` is frozen, read from the file itself."""
    data = json.loads((pair.tmp / node / "frozen.json").read_text())
    return bool(data["groups"].get(group, {}).get("frozen"))


@contextlib.contextmanager
def stopped(pair: HookPair, node: str) -> Iterator[None]:
    """``node``'s hook SIGSTOPped: its kernel accepts connections, nothing answers."""
    sigstop(pair.procs[node].pid)
    try:
        yield
    finally:
        os.kill(pair.procs[node].pid, signal.SIGCONT)


def test_freeze_missing_a_down_node_says_so_and_the_node_learns_it_at_start(make_pair) -> None:
    pair = make_pair(hook={"settle": 0, "cooldown": 0}, fencing=FENCE_BOTH)
    pair.post("node2", "/api/v1/groups/g1/acquire").raise_for_status()
    pair.stop("node1")
    done = pair.cli("freeze", "g1", "--output", "json")
    assert done.returncode == exitcodes.UNREACHABLE, done.stdout
    outcome = json.loads(done.stdout)["node2"]  # node1 is first, so the CLI says it missed it
    assert json.loads(done.stdout)["node1"].keys() == {"unreachable"}
    assert outcome["status"] == "done"
    assert outcome["details"]["recorded_on"] == ["node2"]
    assert list(outcome["details"]["missed"]) == ["node1"]
    assert "not recorded on node1" in outcome["message"]
    assert _saved(pair, "node2", "g1")
    assert not (pair.tmp / "node1" / "frozen.json").exists()
    # node1 comes back, then node2 goes: node1 decides alone on what it learned at its start
    pair.start("node1")
    assert _saved(pair, "node1", "g1")
    pair.stop("node2")
    decision = _decided(pair, "node1", "g1", node="node2")
    assert decision["message"] == "skipped: g1 frozen", decision
    assert pair.moves("node1", "g1") == [] and not pair.held("node1", "g1")


def test_unfreeze_missing_a_down_node_is_learned_at_its_start(make_pair) -> None:
    pair = make_pair(hook={"settle": 0, "cooldown": 0}, fencing=FENCE_BOTH)
    pair.post("node2", "/api/v1/groups/g2/acquire").raise_for_status()
    assert pair.cli("freeze", "g2").returncode == exitcodes.OK
    assert _saved(pair, "node1", "g2") and _saved(pair, "node2", "g2")
    pair.stop("node1")
    # the API's own answer names the node it missed too
    answer = pair.post("node2", "/api/v1/groups/g2/unfreeze").json()
    assert answer["status"] == "done" and list(answer["details"]["missed"]) == ["node1"]
    assert _saved(pair, "node1", "g2") and not _saved(pair, "node2", "g2")
    pair.start("node1")
    assert not _saved(pair, "node1", "g2")
    pair.stop("node2")
    decision = _decided(pair, "node1", "g2", node="node2")
    assert decision["message"].startswith("moved g2 node2 -> node1"), decision
    assert pair.held("node1", "g2")


def test_a_node_that_comes_back_with_a_newer_decision_gives_it_to_its_peer(make_pair) -> None:
    pair = make_pair(hook={"settle": 0, "cooldown": 0})
    assert pair.cli("freeze", "g3").returncode == exitcodes.OK
    pair.stop("node2")
    assert pair.cli("unfreeze", "g3").returncode == exitcodes.UNREACHABLE
    assert pair.cli("freeze", "g3").returncode == exitcodes.UNREACHABLE  # node1: version 3
    pair.stop("node1")
    pair.start("node2")  # alone: still frozen at version 1
    assert _version(pair, "node2", "g3") == (1, True)
    pair.start("node1")  # its start gives node2 the newer decision
    for node in ("node1", "node2"):
        assert _version(pair, node, "g3") == (3, True)
        assert _saved(pair, node, "g3")


def test_running_hooks_that_disagree_decide_on_the_newest_and_converge(make_pair) -> None:
    """Each missed the other's start (SIGSTOPped then): a decision reads both and the newest
    wins, a newer unfreeze over a stale freeze as well as a newer freeze over a stale none."""
    pair = make_pair(hook={"settle": 0, "cooldown": 0, "request_timeout": 1})
    pair.post("node1", "/api/v1/groups/g4/acquire").raise_for_status()
    pair.stop("node2")
    assert pair.cli("freeze", "g4").returncode == exitcodes.UNREACHABLE
    with stopped(pair, "node1"):
        pair.start("node2")  # its exchange with node1 gets no answer
    assert _record(pair, "node2", "g4") is None and _saved(pair, "node1", "g4")
    decision = _decided(pair, "node2", "g4", node="node1")
    assert decision["message"] == "skipped: g4 frozen", decision
    assert _record(pair, "node2", "g4") == _record(pair, "node1", "g4")  # node2 adopted it
    with stopped(pair, "node2"):
        unfrozen = pair.cli("unfreeze", "g4", "--output", "json")
    assert unfrozen.returncode == exitcodes.UNREACHABLE, unfrozen.stdout
    assert list(json.loads(unfrozen.stdout)["node1"]["details"]["missed"]) == ["node2"]
    assert _saved(pair, "node2", "g4") and not _saved(pair, "node1", "g4")  # they disagree
    status = json.loads(pair.cli("status", "--output", "json").stdout)
    assert status["groups"]["g4"]["frozen"] is False  # the newest decision, as decisions read it
    # node1 decides with the newest record (unfrozen): node2's stale copy does not freeze it
    decision = _decided(pair, "node1", "g4", node="node2")
    assert decision["message"] == "nothing to do: g4 already active on node1 (alert about node2)"
    # node2 decides with node1's answer: the newer unfreeze wins over its own copy
    decision = _decided(pair, "node2", "g4", node="node1")
    assert decision["message"].startswith("moved g4 node1 -> node2"), decision
    assert pair.held("node2", "g4") and not pair.held("node1", "g4")
    assert not _saved(pair, "node2", "g4")
    assert _record(pair, "node2", "g4") == _record(pair, "node1", "g4")


def test_store_keeps_the_newest_and_reads_an_older_file(tmp_path: Path) -> None:
    (tmp_path / "frozen.json").write_text(json.dumps({"cluster": True, "groups": ["g1"]}))
    store = FreezeStore(tmp_path, "node1", clock=lambda: 100.0)
    assert store.cluster and store.group("g1") and not store.group("g2")
    unfrozen = store.set("g1", False)
    assert unfrozen == FreezeRecord(frozen=False, version=2, at=100.0, by="node1")
    assert store.set("g1", False) is None  # already so: nothing recorded
    older = FreezeRecord(frozen=True, version=1, at=200.0, by="node2")
    tie = FreezeRecord(frozen=True, version=2, at=100.0, by="node2")  # same version and time
    assert not store.merge(FreezeState(groups={"g1": older}))
    assert store.merge(FreezeState(groups={"g1": tie}))
    assert FreezeStore(tmp_path).state().groups["g1"] == tie  # saved


def test_status_of_an_older_hook_still_counts_its_freezes() -> None:
    """A hook not yet upgraded reports booleans only: they count, as the oldest version."""
    old = {"node": "node2", "cluster": "test", "network": "ok", "cluster_frozen": False}
    status = NodeStatus.model_validate({**old, "groups": {"g1": {"held": False, "frozen": True}}})
    assert status.freeze == FreezeState(groups={"g1": FreezeRecord(frozen=True, version=1)})
    assert NodeStatus.model_validate(status.model_dump(mode="json")) == status


CONFIG = """
cluster: t
nodes:
  node1: {address: 127.213.0.1}
  node2: {address: 127.213.0.2}
hook: {port: 9, request_timeout: 1}
groups:
  g1: {nodes: [node1, node2]}
"""


def test_freeze_state_route_keeps_the_newer_and_refuses_a_broken_body(tmp_path: Path) -> None:
    """In process (Flask's test client): the peer's address has no listener, nothing is sent."""
    hook = build_hook(parse_config(CONFIG), "node2", tmp_path, dry_run=False)
    try:
        client = create_app(hook).test_client()
        for broken in (b"[]", b"{", b'{"groups": {"g1": {"frozen": "maybe", "version": 1}}}'):
            assert client.post("/api/v1/freeze/state", data=broken).status_code == 400
        assert not hook.cluster.freeze.group("g1")
        newer = {
            "cluster": None,
            "groups": {"g1": {"frozen": True, "version": 2, "at": 5.0, "by": "node1"}},
        }
        older = {"groups": {"g1": {"frozen": False, "version": 1, "at": 9.0, "by": "node1"}}}
        assert client.post("/api/v1/freeze/state", json=newer).json["freeze"] == newer
        assert client.post("/api/v1/freeze/state", json=older).json["freeze"] == newer
        assert client.get("/api/v1/freeze/state").json == {"node": "node2", "freeze": newer}
        assert hook.cluster.freeze.group("g1")
    finally:
        hook.shutdown()
