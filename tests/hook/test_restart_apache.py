"""Restart in place of a real Apache, with real hooks inside the two nodes of the failover
cluster (:mod:`tests.support.failover_cluster`: loop-mounted volume, VIP, Apache on the volume).

Apache's whole process group is killed (a crash, docs/lab.md section 5); the alert reaches both
hooks from the client namespace.  The holder's hook restarts Apache on node1: a new master
process, the page served again on the VIP from node1, whose volume and VIP never moved.
"""

from __future__ import annotations

import os
import signal

import pytest
import yaml

from failover_hook import processes
from gardien.polling import wait_until
from tests.support.failover_cluster import GROUP, PAGE, Cluster
from tests.support.hooks import NodeHooks, alert, node_hooks, payload
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]


def _master(c: Cluster) -> int:
    return int(c.on_volume("node1", "www/run/httpd.pid").read_text())


def test_a_crashed_apache_is_restarted_on_its_node() -> None:
    with node_hooks() as hooks:
        _crash_and_restart(hooks)


def _crash_and_restart(hooks: NodeHooks) -> None:
    c = hooks.c
    data = hooks.configure()
    data["groups"][GROUP]["services"][0]["restart"] = {"attempts": 1, "window": "10m"}
    data["hook"]["settle"] = 2
    c.config_file.write_text(yaml.safe_dump(data))
    hooks.start("node1")
    hooks.start("node2")
    acquired = hooks.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")
    assert acquired["status"] == "done", acquired
    assert wait_until(lambda: not _settling(hooks), 10)
    crashed = _master(c)
    os.killpg(os.getpgid(crashed), signal.SIGKILL)
    assert wait_until(lambda: processes.state(crashed) in (None, "Z"), 10)
    assert c.page() is None

    failed = payload(alert(group=GROUP, node="node1"))
    for name in ("node1", "node2"):
        hooks.api("POST", name, "/api/v1/alerts", failed)
    restarted = hooks.decision("node1", GROUP, 0)
    assert restarted["message"].startswith("restarted apache-web on node1 in "), (
        restarted,
        hooks.log("node1"),
    )
    master = _master(c)
    assert master != crashed and processes.state(master) not in (None, "Z")
    assert PAGE in (c.page() or "")
    assert c.mounted("node1") and c.has_vip("node1")
    assert not c.mounted("node2") and not c.has_vip("node2")
    skipped = hooks.decision("node2", GROUP, 0)
    assert skipped["status"] == "skipped", skipped
    assert hooks.history("node2", GROUP) == []
    [entry] = hooks.history("node1", GROUP, kind="restart")
    assert [s["description"] for s in entry["steps"]] == [
        "stop service apache-web",
        "start service apache-web",
    ]


def _settling(hooks: NodeHooks) -> bool:
    status = hooks.api("GET", "node1", f"/api/v1/status?group={GROUP}&resources=0")
    return bool(status["groups"][GROUP]["settling"])
