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

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gardien_lab.freeze import freeze
from tests.support.failover_cluster import GROUP, PAGE, Cluster, cluster
from tests.support.hooks import REPO, alert, payload
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]

PORT = 19481  # each node has its own network namespace


class Hooks:
    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.token = uuid.uuid4().hex
        (c.root / "token").write_text(self.token)
        (c.root / "curl-headers").write_text(f"Authorization: Bearer {self.token}\n")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def configure(self, fencing: bool) -> None:
        data = self.c.config(fencing=fencing)
        data["hook"] = {"port": PORT, "token_file": "token", "settle": 0, "cooldown": 0}
        self.c.config_file.write_text(yaml.safe_dump(data))

    def start(self, name: str) -> None:
        with open(self.c.root / f"{name}-hook.log", "ab") as log:
            self.procs[name] = self.c.nodes[name].popen(
                [
                    sys.executable,
                    "-m",
                    "gardien.cli",
                    "hook",
                    "--config.file",
                    str(self.c.config_file),
                    "--node",
                    name,
                    "--state-dir",
                    str(self.c.root / f"{name}-hook"),
                    "--web.listen-address",
                    f"{self.c.address(name)}:{PORT}",
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while self.api("GET", name, "/-/healthy", check=False) is None:
            assert self.procs[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, self.log(name)
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def freeze(self, name: str) -> None:
        """SIGSTOP of the hook: connections are accepted, nothing answers (until the fence)."""
        freeze(self.procs[name].pid, group=True)

    def log(self, name: str) -> str:
        return (self.c.root / f"{name}-hook.log").read_text(errors="replace")

    def api(self, method: str, name: str, path: str, body: Any = None, check: bool = True) -> Any:
        """One request from the client namespace (curl, the token read from a file)."""
        argv = [
            "curl",
            "-sS",
            "-m",
            "120",
            "-X",
            method,
            "-H",
            f"@{self.c.root / 'curl-headers'}",
            f"http://{self.c.address(name)}:{PORT}{path}",
        ]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        done = self.c.client.run(argv, check=False, timeout=130)
        if done.returncode != 0:
            assert not check, done.stderr
            return None
        return json.loads(done.stdout) if done.stdout.startswith(("{", "[")) else done.stdout

    def decision(self, name: str, before: int) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = self.api("GET", name, "/api/v1/decisions")["decisions"]
            done = [d for d in found if d["group"] == GROUP]
            if len(done) > before:
                return dict(done[-1])
            time.sleep(0.2)
        raise AssertionError(f"no decision on {name}: {self.log(name)}")


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    with cluster() as c:
        for name in list(c.hosts):
            c.kill_host(name)  # the hooks, not the engine's test hosts, run the nodes here
        made = Hooks(c)
        try:
            yield made
        finally:
            for name in list(made.procs):
                made.kill(name)


def test_no_fence_agent_refuses_then_fencing_moves(hooks: Hooks) -> None:
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
    refused = hooks.decision("node2", 0)
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
    moved = hooks.decision("node2", 0)
    assert moved["message"].startswith(f"moved {GROUP} node1 -> node2"), (moved, hooks.log("node2"))
    assert moved["message"].endswith("(fenced node1: no answer from its agent in 5 s)"), moved
    assert c.has_vip("node2") and c.mounted("node2")
    assert PAGE in (c.page() or "")
    history = hooks.api("GET", "node2", f"/api/v1/history?group={GROUP}")["moves"]
    [move] = [m for m in history if m["kind"] == "move"]
    assert [s["state"] for s in move["steps"]] == ["failed", "done", "done"], move
    assert move["steps"][0]["message"] == (
        "node1 unreachable: no answer from its agent in 5 s; no release asked"
    ), move
