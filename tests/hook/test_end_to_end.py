"""Webhook to move, end to end: real hooks inside two test nodes moving a real group.

The cluster of the failover engine's tests (:mod:`tests.support.failover_cluster`: ext4 loop
volume, VIP, Apache on the volume) with ``gardien hook`` running inside each node instead of the
engine's test hosts.  node1 holds the group; its hook is killed (the source's agent is down); an
alert reaches node2's hook from the client namespace.  Without a fence agent node2 refuses; with the
test's fence script it fences node1 and takes the group.  The second time node1's hook is frozen
(SIGSTOP) rather than killed: its kernel still accepts connections, and node2 must fence it at once
instead of sending a release that would wait the group's whole budget.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.failover_cluster import GROUP, PAGE
from tests.support.hooks import NodeHooks, alert, node_hooks, payload
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]


@pytest.fixture(scope="module")
def hooks() -> Iterator[NodeHooks]:
    with node_hooks() as made:  # the hooks, not the engine's test hosts, run the nodes here
        yield made


def test_no_fence_agent_refuses_then_fencing_moves(hooks: NodeHooks) -> None:
    c = hooks.c
    hooks.configure(fencing=False)
    hooks.start("node1")
    hooks.start("node2")
    acquired = hooks.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")
    assert acquired["status"] == "done", acquired
    assert c.page() is not None and PAGE in c.page()

    # node1's agent goes down; its group keeps running there
    hooks.kill("node1")
    failed = payload(alert(group=GROUP, node="node1"))
    assert hooks.api("POST", "node2", "/api/v1/alerts", failed)["outcomes"]
    refused = hooks.decision("node2", GROUP, 0)
    assert refused["message"] == "refused: node1 unreachable and no fence agent", refused
    assert c.has_vip("node1") and not c.has_vip("node2") and c.mounted("node1")

    # with the test's fence agent configured, the same failure of a frozen agent moves the group:
    # its status did not answer in time, so node2 fences it without asking it to release
    hooks.kill("node2")
    hooks.configure(fencing=True)
    hooks.start("node1")
    hooks.start("node2")
    hooks.freeze("node1")
    again = payload(alert(group=GROUP, node="node1"))
    hooks.api("POST", "node2", "/api/v1/alerts", again)
    moved = hooks.decision("node2", GROUP, 0)
    assert moved["message"].startswith(f"moved {GROUP} node1 -> node2"), (moved, hooks.log("node2"))
    # fenced once confirmed gone: its status retried on fresh connections (failover_hook/silence.py)
    assert (
        "(fenced node1: no answer from its agent in 5 s; status unanswered 3 times"
        in (moved["message"])
    ), moved
    assert moved["message"].endswith("; no Prometheus configured to ask)"), moved
    assert c.has_vip("node2") and c.mounted("node2")
    assert PAGE in (c.page() or "")
    history = hooks.api("GET", "node2", f"/api/v1/history?group={GROUP}")["moves"]
    [move] = [m for m in history if m["kind"] == "move"]
    assert [s["state"] for s in move["steps"]] == ["failed", "done", "done"], move
    assert move["steps"][0]["message"] == (
        "node1 unreachable: no answer from its agent in 5 s; no release asked"
    ), move
