"""The guarded acquire (issue 9), through the real ``gardien hook`` inside two test nodes.

The cluster of the engine's tests (ext4 loop volume, VIP, Apache on the volume), with the hooks
of :mod:`tests.hook.test_end_to_end` running the nodes.  While an acquire runs, the test itself
reads the node's mount table (``/proc/<holder>/mountinfo``, every 10 ms), never gardien's report:
a refused acquire must never have mounted the volume, not even for a moment.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gardien import exitcodes
from gardien_lab.freeze import freeze, thaw
from tests.support.failover_cluster import GROUP, Cluster, cluster
from tests.support.hooks import REPO, NodeHooks, alert, payload
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.timeout(300),
]

SAMPLE_EVERY = 0.01
MAX_SAMPLES = 30_000  # 300 s at most, whatever happens to the test


def _mounted_in(mountinfo: str, mountpoint: Path) -> bool:
    """Whether ``mountpoint`` is a mount point in a ``/proc/<pid>/mountinfo`` text (field 5)."""
    return any(
        len(fields) > 4 and fields[4] == str(mountpoint)
        for fields in (line.split() for line in mountinfo.splitlines())
    )


class MountSampler:
    """Reads each node's mount table every 10 ms in a thread, until stopped (bounded in count)."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.samples: list[dict[str, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mount sampler")

    def _read(self, name: str) -> bool:
        try:
            text = Path(f"/proc/{self.c.nodes[name].pid}/mountinfo").read_text()
        except OSError:
            return False  # the node is gone (fenced): nothing is mounted in it
        return _mounted_in(text, self.c.mountpoint)

    def _run(self) -> None:
        for _ in range(MAX_SAMPLES):
            self.samples.append({name: self._read(name) for name in self.c.nodes})
            if self._stop.wait(SAMPLE_EVERY):
                return

    def __enter__(self) -> MountSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def ever(self, name: str) -> bool:
        return any(s[name] for s in self.samples)

    def both(self) -> list[dict[str, bool]]:
        return [s for s in self.samples if all(s.values())]


def cli(c: Cluster, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``gardien ...`` run in the client namespace (it reaches both hooks)."""
    return c.client.run(
        [sys.executable, "-m", "gardien.cli", *args, "--config.file", str(c.config_file)],
        check=False,
        timeout=130,
        input=stdin,
        cwd=REPO,
    )


def acquire_entries(hooks: NodeHooks, name: str) -> list[dict[str, Any]]:
    history = hooks.api("GET", name, f"/api/v1/history?group={GROUP}")["moves"]
    return [m for m in history if m["kind"] == "acquire"]


@pytest.fixture
def hooks() -> Iterator[NodeHooks]:
    """Both hooks running (no fence agent), nothing held yet."""
    with cluster() as c:
        for name in list(c.hosts):
            c.kill_host(name)  # the hooks, not the engine's test hosts, run the nodes here
        made = NodeHooks(c)
        made.configure(fencing=False)
        try:
            made.start("node1")
            made.start("node2")
            yield made
        finally:
            for name in list(made.procs):
                with contextlib.suppress(ProcessLookupError):
                    thaw(made.procs[name].pid, group=True)
                made.kill(name)


def test_acquire_where_another_node_holds_is_refused_and_never_mounts(hooks: NodeHooks) -> None:
    c = hooks.c
    acquired = hooks.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")
    assert acquired["status"] == "done", acquired

    with MountSampler(c) as api_call:
        refused = hooks.api("POST", "node2", f"/api/v1/groups/{GROUP}/acquire")
    assert refused["status"] == "refused", refused
    assert refused["message"] == f"refused: {GROUP} is held by node1"
    assert refused["details"]["holders"] == ["node1"]
    assert len(api_call.samples) > 1 and not api_call.ever("node2")

    with MountSampler(c) as cli_call:
        done = cli(c, "acquire", GROUP, "--node", "node2", stdin="y\n")
    assert done.returncode == exitcodes.REFUSED, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"node2: refused: {GROUP} is held by node1")
    assert len(cli_call.samples) > 1 and not cli_call.ever("node2")
    assert c.mounted("node1") and c.has_vip("node1") and not c.has_vip("node2")
    entries = acquire_entries(hooks, "node2")
    assert [e["status"] for e in entries] == ["refused", "refused"]
    assert all(e["steps"][0]["state"] == "failed" and not e["forced"] for e in entries)
    assert all(s["state"] == "pending" for e in entries for s in e["steps"][1:])


def test_a_silent_peer_is_named_and_force_overrides(hooks: NodeHooks) -> None:
    c = hooks.c
    freeze(hooks.procs["node1"].pid, group=True)  # its kernel accepts, nothing answers
    with MountSampler(c) as call:
        refused = hooks.api("POST", "node2", f"/api/v1/groups/{GROUP}/acquire")
    assert refused["status"] == "refused", refused
    assert refused["message"] == (
        f"refused: node1 did not answer whether it holds {GROUP} and was not fenced for this move"
    )
    assert list(refused["details"]["silent"]) == ["node1"]
    assert not call.ever("node2")

    # the operator's override: nobody asked, and the journal says it was forced
    done = cli(c, "acquire", GROUP, "--node", "node2", "--force", "--output", "json")
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert c.mounted("node2") and c.has_vip("node2")
    [forced, not_forced] = acquire_entries(hooks, "node2")  # newest first
    assert (forced["forced"], forced["status"]) == (True, "done")
    assert forced["steps"][0]["state"] == "skipped"
    assert (not_forced["forced"], not_forced["status"]) == (False, "refused")


def test_force_still_meets_the_duplicate_address_check_before_the_mount(hooks: NodeHooks) -> None:
    c = hooks.c
    assert hooks.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")["status"] == "done"
    freeze(hooks.procs["node1"].pid, group=True)  # its kernel still answers ARP for the VIP
    with MountSampler(c) as call:
        done = cli(c, "acquire", GROUP, "--node", "node2", "--force", "--output", "json")
    assert done.returncode == exitcodes.FAILURE, done.stdout + done.stderr
    assert "already answers on the network" in done.stdout
    assert len(call.samples) > 1 and not call.ever("node2")
    assert c.mounted("node1") and not c.has_vip("node2")


def test_a_migrate_racing_a_webhook_move_never_mounts_on_both(hooks: NodeHooks) -> None:
    """node2's hook moves the group node1 -> node2 on an alert while an operator keeps asking
    node1's hook to migrate it to node1 (bounded): whatever interleaving happens, the volume is
    never mounted on both nodes, and it ends on exactly one."""
    c = hooks.c
    assert hooks.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")["status"] == "done"
    migrations: list[str] = []
    with MountSampler(c) as race:
        hooks.api("POST", "node2", "/api/v1/alerts", payload(alert(group=GROUP, node="node1")))
        for _ in range(100):
            answer = hooks.api(
                "POST",
                "node1",
                f"/api/v1/groups/{GROUP}/migrate",
                {"target": "node1", "force": True},
            )
            migrations.append(answer["status"] + ": " + answer["message"])
            if hooks.api("GET", "node2", "/api/v1/decisions")["decisions"]:
                break
        decision = hooks.decision("node2", GROUP, 0)
    assert not race.both(), (race.both()[:3], migrations, decision)
    held = [name for name in c.nodes if c.mounted(name)]
    assert len(held) == 1, (held, migrations, decision)
    assert c.has_vip(held[0]) and not c.has_vip(next(n for n in c.nodes if n != held[0]))
