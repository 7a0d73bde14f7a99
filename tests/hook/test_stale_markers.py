"""A node back from a power-off does not claim the groups it held before it.

Found by ``gardien lab chaos`` (seed 6, docs/chaos.md): node1, powered off while holding php4,
came back with php4's held marker; its peer, which had fenced it and taken php4, was powered off
next, and node1's hook, still saying "held" for php4, neither counted it among the peer's groups
nor let anyone acquire it: php4 ran nowhere.  Here with the real hooks on the failover cluster
(loop-mounted volume, VIP, Apache); whether a node holds the group is read from the nodes
themselves (their mount tables and addresses).
"""

from __future__ import annotations

import pytest

from gardien import state
from tests.hook.test_recovery_daemon import holders
from tests.support.failover_cluster import GROUP, cluster
from tests.support.hooks import NodeHooks
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.timeout(300),
]


def held(hooks: NodeHooks, node: str) -> bool:
    answer = hooks.api("GET", node, f"/api/v1/status?group={GROUP}&resources=0")
    return bool(answer["groups"][GROUP]["held"])


def test_a_marker_without_its_group_is_dropped_at_start_and_a_held_group_keeps_its_own() -> None:
    with cluster() as c:
        for name in list(c.hosts):
            c.kill_host(name)
        hooks = NodeHooks(c)
        hooks.configure()
        # node1 "was powered off holding the group": its marker is there, nothing of the group
        state.mark_held(hooks.state_dir("node1"), GROUP, True)
        try:
            hooks.start("node1")
            hooks.start("node2")
            assert holders(c) == []
            assert not held(hooks, "node1")
            assert f"{GROUP}'s held marker dropped" in hooks.log("node1")
            # nobody claims it now: node2's guarded acquire asks node1 and gets the group
            acquired = hooks.api("POST", "node2", f"/api/v1/groups/{GROUP}/acquire")
            assert acquired["status"] == "done", acquired
            assert holders(c) == ["node2"]
            # a hook restarted while its node holds the group keeps it (its volume is mounted)
            hooks.kill("node2")
            hooks.restart("node2")
            assert held(hooks, "node2")
            assert holders(c) == ["node2"]
            assert "held marker dropped" not in hooks.log("node2")
        finally:
            hooks.kill_all()
