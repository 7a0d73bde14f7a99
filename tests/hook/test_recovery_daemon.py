"""Recovery through the real daemon: ``gardien hook`` SIGKILLed mid-move, restarted as its unit.

The failover cluster (:mod:`tests.support.failover_cluster`: loop-mounted ext4 volume, VIP,
Apache) with the real hooks inside the nodes (:class:`tests.support.hooks.NodeHooks`).  node1
holds the group; node2's hook, the target's, runs a ``migrate`` and is killed as systemd kills it
(``KillMode=process``: what it started lives on), once during the release and once during the
acquire, then started again with the same command line and state folder (``Restart=always``).

The moments come from a real service of the group, not from timing: its stop command reports that
it began and waits for a gate file the test creates (the release is running on node1), and so does
its start command (the acquire is running on node2).  The gates open only once the restarted hook
is recovering, so it always finds the interrupted step still running.  Whether the group is held,
and by which node, is read from the nodes themselves (their mount tables and addresses), never
from gardien; the journal (``/api/v1/history``) must say whether the move was finished or rolled
back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gardien.polling import wait_until
from tests.support.failover_cluster import GROUP, PAGE, Cluster, cluster
from tests.support.hooks import NODE_HOOK_PORT, NodeHooks
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.timeout(300),
]

STOP_SECONDS = 60
"""The longest the gate service's stop command waits for its gate (a bound: the test opens it)."""

DAEMON = ["sleep", "3600"]
"""The gate service's daemon, as its command line reads in /proc."""


class Gate:
    """The group's last service: ``start-began`` and ``stop-began`` get one line each time its
    start or stop command begins; the start waits for ``start-gate``, the stop for ``stop-gate``
    (each bounded: the test creates them).  Its daemon writes the pid file under an flock, so a
    start that finds another start's daemon there leaves it alone (as a real daemon refuses a
    second instance of itself)."""

    def __init__(self, c: Cluster) -> None:
        self.root = c.root
        self.pidfile = c.mountpoint / "gate.pid"
        self.lock = c.mountpoint / "gate.lock"

    def path(self, name: str) -> Path:
        return self.root / name

    def service(self) -> dict[str, Any]:
        start = (
            f"echo $$ >> {self.path('start-began')}; i=0; "
            f"while [ ! -e {self.path('start-gate')} ] && [ $i -lt 1200 ]; "
            "do sleep 0.05; i=$((i+1)); done; "
            f"exec 9>{self.lock}; flock -n 9 || exit 0; "
            f"echo $$ > {self.pidfile}; exec {' '.join(DAEMON)}"
        )
        stop = (
            f"echo $$ >> {self.path('stop-began')}; i=0; "
            f"while [ ! -e {self.path('stop-gate')} ] && [ $i -lt {STOP_SECONDS * 20} ]; "
            "do sleep 0.05; i=$((i+1)); done; "
            f"kill $(cat {self.pidfile})"
        )
        return {
            "name": "gate",
            "start": ["sh", "-c", start],
            "stop": ["sh", "-c", stop],
            "process": {"pidfile": str(self.pidfile)},
            "start_timeout": "90s",
            "stop_timeout": f"{STOP_SECONDS * 2 + 10}s",  # the stop command gets half
        }

    def began(self, what: str) -> int:
        """How many times the start (``what="start"``) or stop command began."""
        with_lines = self.path(f"{what}-began")
        return len(with_lines.read_text().split()) if with_lines.exists() else 0

    def wait_began(self, what: str, count: int, timeout: float = 90) -> None:
        if not wait_until(lambda: self.began(what) >= count, timeout):
            raise AssertionError(f"the {what} command did not begin {count} time(s)")


@pytest.fixture
def hooks() -> Iterator[tuple[NodeHooks, Gate]]:
    """node1 holds the group (volume, VIP, Apache, the gate service), through its real hook."""
    with cluster() as c:
        for name in list(c.hosts):
            c.kill_host(name)  # the hooks, not the engine's test hosts, run the nodes here
        made = NodeHooks(c)
        gate = Gate(c)
        group = c.config()["groups"][GROUP]
        group["services"].append(gate.service())
        made.configure(**{GROUP: group})
        gate.path("start-gate").touch()
        try:
            made.start("node1")
            made.start("node2")
            acquired = made.api("POST", "node1", f"/api/v1/groups/{GROUP}/acquire")
            assert acquired["status"] == "done", acquired
            assert holders(c) == ["node1"]
            yield made, gate
        finally:
            made.kill_all()


def holders(c: Cluster) -> list[str]:
    """The nodes where the group's volume is mounted or its VIP present, as the nodes say;
    a node listed holds both (a half-held group fails the assertion)."""
    found = [n for n in c.nodes if c.mounted(n) or c.has_vip(n)]
    for name in found:
        assert c.mounted(name) and c.has_vip(name), (name, c.mounted(name), c.has_vip(name))
    return found


def daemons(c: Cluster, name: str) -> list[int]:
    """The gate service's daemons running on node ``name``."""
    found = []
    for pid in c.nodes[name].processes():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if [a.decode() for a in argv] == DAEMON:
            found.append(pid)
    return found


def migrate_in_background(hooks: NodeHooks) -> threading.Thread:
    """node2's hook moves the group to itself (its answer is lost when it is killed)."""
    thread = threading.Thread(
        target=hooks.api,
        args=("POST", "node2", f"/api/v1/groups/{GROUP}/migrate", {"target": "node2"}),
        kwargs={"check": False},
        daemon=True,
    )
    thread.start()
    return thread


def step_states(hooks: NodeHooks, name: str) -> list[str]:
    """The states of the steps of the one move in ``name``'s journal."""
    [move] = hooks.history(name, GROUP)
    return [str(s["state"]) for s in move["steps"]]


def calling(h: NodeHooks, name: str, peer: str) -> bool:
    """Whether ``name``'s hook has a connection open to ``peer``'s hook (read with ss in
    ``name``'s namespace; its HTTP client keeps the connection of its last call alive)."""
    to = f"{h.c.address(peer)}:{NODE_HOOK_PORT}"
    out = h.c.nodes[name].run(["ss", "-Htnp", "state", "established", "dst", to]).stdout
    return f"pid={h.procs[name].pid}," in out


@contextlib.contextmanager
def mounts_sampled(c: Cluster) -> Iterator[list[tuple[str, ...]]]:
    """The nodes whose mount table has the volume, read every 10 ms while the block runs (at
    most 5 minutes): a double mount, however short, shows as a sample with both nodes."""
    seen: list[tuple[str, ...]] = []
    done = threading.Event()

    def sample() -> bool:
        seen.append(tuple(n for n in c.nodes if c.mounted(n)))
        return done.is_set()

    sampler = threading.Thread(target=wait_until, args=(sample, 300, 0.01), daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join(timeout=10)


def test_hook_killed_during_the_release_rolls_the_move_back(
    hooks: tuple[NodeHooks, Gate],
) -> None:
    h, gate = hooks
    c = h.c
    with mounts_sampled(c) as mounted:
        answer = migrate_in_background(h)
        gate.wait_began("stop", 1)  # node1 is releasing: its gate service is stopping
        assert step_states(h, "node2") == ["running", "pending", "pending"]

        h.kill("node2")
        h.restart("node2", wait=False)
        # its recovery asks node1, still releasing for the killed move, to take the group back
        assert wait_until(lambda: calling(h, "node2", "node1"), 60), h.log("node2")
        [release] = h.history("node1", GROUP, "release")
        assert release["finished"] is None and holders(c) == ["node1"], release
        gate.path("stop-gate").touch()  # node1's release ends, and only now
        h.wait_ready("node2", timeout=120)
        answer.join(timeout=30)
    assert mounted and set(mounted) <= {("node1",), ()}, set(mounted)

    [move] = h.history("node2", GROUP)
    assert move["finished"] is not None, move
    assert move["message"] == (
        f"recovered move #{move['id']} ({GROUP} node1 -> node2): rolled back; "
        f"{GROUP} restarted on node1"
    ), (move, h.log("node2"))
    assert move["status"] == "failed"
    assert [s["state"] for s in move["steps"]] == ["undone", "pending", "pending"]
    [release] = h.history("node1", GROUP, "release")
    assert release["status"] == "done", release
    assert holders(c) == ["node1"]
    assert PAGE in (c.page() or "")
    assert len(daemons(c, "node1")) == 1 and daemons(c, "node2") == []


def test_hook_killed_during_the_acquire_finishes_the_move(hooks: tuple[NodeHooks, Gate]) -> None:
    h, gate = hooks
    c = h.c
    gate.path("stop-gate").touch()  # node1 releases at once
    gate.path("start-gate").unlink()
    started = gate.began("start")  # node1's own start
    with mounts_sampled(c) as mounted:
        answer = migrate_in_background(h)
        gate.wait_began("start", started + 1)  # node2 is acquiring: its gate service is starting
        assert step_states(h, "node2") == ["done", "skipped", "running"]
        assert c.mounted("node2") and not c.mounted("node1")

        h.kill("node2")  # its start command lives on, waiting for the gate
        h.restart("node2", wait=False)
        gate.wait_began("start", started + 2)  # the recovery starts the gate service again
        gate.path("start-gate").touch()
        h.wait_ready("node2", timeout=120)
        answer.join(timeout=30)
    assert mounted and set(mounted) <= {("node1",), (), ("node2",)}, set(mounted)
    assert all(n == ("node2",) for n in mounted[mounted.index(("node2",)) :]), "unmounted again"

    [move] = h.history("node2", GROUP)
    assert move["finished"] is not None and move["status"] == "done", (move, h.log("node2"))
    assert move["message"].startswith(
        f"recovered move #{move['id']} ({GROUP} node1 -> node2): finished: "
        f"moved {GROUP} node1 -> node2"
    ), move
    assert [s["state"] for s in move["steps"]] == ["done", "skipped", "done"]
    interrupted = [a for a in h.history("node2", GROUP, "acquire") if a["finished"] is not None]
    assert any(
        a["message"] == f"interrupted; recovered with move #{move['id']}" for a in interrupted
    ), interrupted
    assert holders(c) == ["node2"]
    assert PAGE in (c.page() or "")
    # two start commands ran on node2 (the killed hook's and the recovery's): one daemon
    assert len(daemons(c, "node2")) == 1 and daemons(c, "node1") == []
