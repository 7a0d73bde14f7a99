"""The engine's parts that need no namespace: plan, journal, fencer, mount table, and the agent
of groups without volume or VIP."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from failover_hook import processes
from failover_hook.agent import LocalAgent
from failover_hook.fencing import Fencer
from failover_hook.journal import Journal
from failover_hook.move import Mover, PlanError
from failover_hook.outcome import Outcome, Status
from failover_hook.peers import PeerUnreachable
from failover_hook.plan import Action, Plan, StepState
from failover_hook.recovery import recover
from failover_hook.resources.base import Change, ResourceError, State
from failover_hook.resources.vip import Vip
from failover_hook.resources.volume import Volume
from failover_hook.restart import Restarter
from failover_hook.trigger import API, Trigger, TriggerKind
from gardien.command_runner import CommandRunner
from gardien.config.loader import parse_config
from gardien.config.model import ClusterConfig

CONFIG = """
cluster: t
nodes: {node1: {address: 10.213.250.1}, node2: {address: 10.213.250.2}}
fencing:
  node2:
    command: [%(python)s, -c, "import sys; sys.exit(int(sys.argv[1]))", "%(rc)s"]
    timeout: 5s
groups:
  php4:
    nodes: [node1, node2]
    volume: {device: /dev/loop99, mountpoint: /srv/php4}
    vip: {address: 10.213.250.41/24, interface: eth0}
    services:
      - name: apache-php4
        start: [apachectl, -k, start]
        stop: [apachectl, -k, stop]
        process: {pidfile: /run/apache-php4.pid}
"""


def config(fence_rc: int = 0) -> ClusterConfig:
    return parse_config(CONFIG % {"python": sys.executable, "rc": fence_rc}, check_files=False)


def test_plan_is_printable_and_round_trips() -> None:
    cfg = config()
    agent = LocalAgent(cfg, "node1", Path("/nonexistent-state"), journal=_memory_journal())
    mover = Mover(cfg, "node1", agent.journal, agent, {}, Fencer(cfg))
    plan = mover.plan("php4", "node2", "node1")
    assert plan.describe().splitlines() == [
        "move php4 node2 -> node1",
        "  1. release php4 on node2 (remote); undo: acquire php4 on node2",
        "  2. fence node2 if step 1 fails or node2 is unreachable; undo: none",
        "  3. acquire php4 on node1 (local: volume /srv/php4, vip 10.213.250.41/24, "
        "service apache-php4); undo: release php4 on node1",
    ]
    assert Plan.from_json(plan.to_json()) == plan
    nowhere = mover.plan("php4", None, "node1")
    assert [s.action for s in nowhere.steps] == [Action.ACQUIRE]
    remote = Mover(cfg, "node2", agent.journal, agent, {}, Fencer(cfg))
    no_fence = remote.plan("php4", "node1", "node2")
    assert no_fence.notes == (
        "no fence agent for node1: the move is refused if node1 cannot release (unless forced)",
    )
    with pytest.raises(PlanError, match="cannot run on 'node3'"):
        mover.plan("php4", "node1", "node3")


def _memory_journal() -> Journal:
    return Journal(Path(":memory:"))


def test_journal_keeps_plans_steps_and_outcomes(tmp_path: Path) -> None:
    cfg = config()
    journal = Journal.in_state_dir(tmp_path)
    agent = LocalAgent(cfg, "node1", tmp_path, journal=journal)
    plan = Mover(cfg, "node1", journal, agent, {}, Fencer(cfg)).plan("php4", "node2", "node1")
    move = journal.begin_move(plan)
    journal.step_started(move, 0)
    journal.step_finished(move, 0, StepState.DONE, "released php4 on node2 in 0.3 s")
    [unfinished] = journal.unfinished("move")
    assert unfinished.plan == plan and unfinished.steps[0].state is StepState.DONE
    assert unfinished.steps[0].duration is not None and unfinished.steps[1].started is None
    journal.finish(move, Outcome(Status.DONE, "moved php4 node2 -> node1 in 1.0 s", "php4"))
    local = journal.begin_local("php4", "node1", "acquire", ["start volume /srv/php4"], API)
    reopened = Journal(tmp_path / "journal.db")
    assert [m.id for m in reopened.history("php4")] == [local, move]
    assert reopened.get(move).status == "done" and not reopened.unfinished("move")
    assert reopened.history("other") == []
    assert reopened.get(move).to_json()["steps"][0]["message"] == "released php4 on node2 in 0.3 s"


OLD_SCHEMA = """
CREATE TABLE moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT, group_name TEXT NOT NULL, kind TEXT NOT NULL,
    source TEXT, target TEXT, trigger TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    status TEXT, message TEXT, plan TEXT
);
CREATE INDEX moves_group ON moves (group_name, started);
CREATE TABLE steps (
    move_id INTEGER NOT NULL REFERENCES moves (id), idx INTEGER NOT NULL, node TEXT,
    description TEXT NOT NULL, state TEXT NOT NULL, started REAL, finished REAL, message TEXT,
    PRIMARY KEY (move_id, idx)
);
"""
"""The journal's tables before the trigger columns (gardien up to the house issue)."""


def test_a_journal_of_the_old_schema_gets_its_trigger_columns(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    written = ["alert", "api", "move #1", "undo of move #1", "undo", "recovery of #3"]
    written += ["move node2#7", "manual"]
    for trigger in written:
        old.execute(
            "INSERT INTO moves (group_name, kind, trigger, started)"
            " VALUES ('php4', 'release', ?, 0)",
            (trigger,),
        )
    old.commit()
    old.close()

    journal = Journal(path)
    records = list(reversed(journal.history("php4")))
    assert [r.trigger for r in records] == [
        Trigger(TriggerKind.ALERT),
        API,
        Trigger.step_of(1),
        Trigger.undo_of(1),
        Trigger.undo_of(),
        Trigger.recovery_of(3),
        Trigger.for_peer_move("node2#7"),
        Trigger(TriggerKind.MANUAL),
    ]
    assert [r.to_json()["trigger"] for r in records] == written  # history shows what it showed
    new = journal.begin_local("php4", "node1", "release", [], Trigger.for_peer_move("node1#2"))
    assert journal.get(new).trigger.move_key == "node1#2"
    journal.close()
    assert Journal(path).get(new).to_json()["trigger"] == "move node1#2"  # opened again: as is


@pytest.mark.parametrize(("rc", "status"), [(0, Status.DONE), (1, Status.FAILED)])
def test_fencer_runs_the_configured_command(rc: int, status: Status) -> None:
    runner = CommandRunner(record=True)
    fencer = Fencer(config(fence_rc=rc), runner)
    outcome = fencer.fence("node2")
    assert outcome.status is status
    assert outcome.message.startswith("fenced node2 in " if rc == 0 else "fencing node2 failed: ")
    assert runner.ran[0][-1] == str(rc)
    refused = fencer.fence("node1")
    assert refused.status is Status.REFUSED
    assert refused.message == "no fence agent configured for node1"
    assert len(runner.ran) == 1


def test_moves_that_fence_one_node_at_once_share_one_fence() -> None:
    """A failed node's groups move in parallel and each may fence it: one fence serves the moves
    that asked while it ran; a later question fences again (the node may be back since)."""
    cfg = parse_config(
        CONFIG.replace('"import sys; sys.exit(int(sys.argv[1]))"', '"import time; time.sleep(1)"')
        % {"python": sys.executable, "rc": 0},
        check_files=False,
    )
    runner = CommandRunner(record=True)
    fencer = Fencer(cfg, runner)
    start = threading.Barrier(3)
    outcomes: list[Outcome] = []

    def move() -> None:
        start.wait()
        outcomes.append(fencer.fence("node2"))

    threads = [threading.Thread(target=move) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [o.status for o in outcomes] == [Status.DONE] * 3
    assert len(runner.ran) == 1
    assert fencer.fence("node2").status is Status.DONE
    assert len(runner.ran) == 2


def _mountinfo(root: Path, *mounts: str) -> Path:
    """A recorded ``<root>/self/mountinfo`` of ``device mountpoint`` mounts (mountpoints escaped
    as the kernel does); ``root`` is then the volume's proc_root (and sys_root: no loop files)."""
    (root / "self").mkdir(parents=True, exist_ok=True)
    lines = [
        f"{30 + i} 1 7:{i} / {mount.split()[1]} rw,relatime - ext4 {mount.split()[0]} rw"
        for i, mount in enumerate(mounts)
    ]
    (root / "self" / "mountinfo").write_text("".join(f"{line}\n" for line in lines))
    return root


def test_volume_monitor_reads_the_mount_table(tmp_path: Path) -> None:
    volume = Volume(config().groups["php4"].volume, CommandRunner(), tmp_path, tmp_path)  # type: ignore[arg-type]
    _mountinfo(tmp_path, "/dev/loop99 /srv/php4")
    assert volume.monitor().state is State.RUNNING
    _mountinfo(tmp_path, "/dev/loop7 /srv/php4")
    assert volume.monitor().reason == "/dev/loop7 is mounted on /srv/php4"
    _mountinfo(tmp_path, "/dev/loop99 /srv/other\\040dir")
    assert volume.monitor().reason == "/dev/loop99 is mounted on /srv/other dir"
    _mountinfo(tmp_path, "proc /proc")
    assert volume.monitor().state is State.NOT_RUNNING


def test_volume_refuses_to_mount_a_device_mounted_elsewhere(tmp_path: Path) -> None:
    _mountinfo(tmp_path, "/dev/loop99 /srv/old")
    runner = CommandRunner(record=True)
    volume = Volume(config().groups["php4"].volume, runner, tmp_path, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(
        ResourceError, match="refusing to mount /dev/loop99: /dev/loop99 is mounted on /srv/old"
    ):
        volume.start()
    assert runner.ran == []


def test_vip_monitor_reads_the_addresses_of_its_interface() -> None:
    vip_config = config().groups["php4"].vip
    assert vip_config is not None
    table: dict[str, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = {"eth0": []}
    vip = Vip(vip_config, CommandRunner(), lambda: table)
    assert vip.monitor().state is State.NOT_RUNNING
    table["eth0:php4"] = [ipaddress.ip_interface("10.213.250.41/24")]  # a label of eth0
    assert vip.monitor().state is State.RUNNING
    table["eth0:php4"] = [ipaddress.ip_interface("10.213.250.41/32")]
    assert vip.monitor().reason == "10.213.250.41 is on eth0 with another prefix length"
    table.clear()
    assert vip.monitor().reason == "cannot list the addresses of eth0: no such interface"


MARKER = f"gardien-test-{uuid.uuid4().hex}"
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)", MARKER]

MARKER_GROUPS = """
cluster: t
nodes: {node1: {address: 10.213.250.1}, node2: {address: 10.213.250.2}}
groups:
  bare: {nodes: [node1, node2]}
  svc:
    nodes: [node1, node2]
    services:
      - name: sleeper
        start: %(start)s
        process: {cmdline: %(marker)s}
        stop_timeout: 5s
"""


@pytest.fixture
def marker_agent(tmp_path: Path) -> Iterator[LocalAgent]:
    """An agent of groups without volume or VIP: one without resources, one of a service only."""
    text = MARKER_GROUPS % {"start": json.dumps(SLEEPER), "marker": MARKER}
    try:
        yield LocalAgent(parse_config(text, check_files=False), "node1", tmp_path)
    finally:
        for pid in processes.matching(MARKER):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_group_without_resources_is_held_by_its_marker(marker_agent: LocalAgent) -> None:
    agent = marker_agent
    assert agent.acquire("bare").status is Status.DONE
    assert agent.acquire("bare").message == "bare already held by node1"
    status = agent.status("bare")
    assert status["held"] and status["active"] and status["healthy"]
    released = agent.release("bare")
    assert released.status is Status.DONE, released.message
    assert released.message.startswith("released bare on node1 in ")
    assert not agent.status("bare")["held"] and not agent.status("bare")["active"]
    assert agent.release("bare").message == "bare not held by node1"
    assert agent.held() == set()


def test_group_of_services_only_is_held_by_its_marker(marker_agent: LocalAgent) -> None:
    agent = marker_agent
    # its service already runs on the node (started by hand): that does not make the group held
    outside = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        acquired = agent.acquire("svc")
        assert acquired.status is Status.DONE, acquired.message
        assert acquired.message.startswith("acquired svc on node1 in ")
        assert agent.held() == {"svc"}
        assert agent.acquire("svc").message == "svc already held by node1"
        # its service gone (crashed), the group is still held here until released
        outside.kill()
        outside.wait()
        assert agent.status("svc")["held"] and not agent.status("svc")["healthy"]
        released = agent.release("svc")
        assert released.status is Status.DONE, released.message
        assert released.message.startswith("released svc on node1 in ")
        assert agent.held() == set()
        assert agent.release("svc").message == "svc not held by node1"
    finally:
        outside.kill()
        outside.wait()


def test_resources_say_whether_they_changed_anything(marker_agent: LocalAgent) -> None:
    [service] = marker_agent.resources("svc")
    started = service.start()
    assert started == Change(changed=True, message="started sleeper")
    assert service.start() == Change(changed=False, message="service sleeper already running")
    assert service.stop().changed
    assert service.stop() == Change(changed=False, message="service sleeper already stopped")


class _UnreachablePeer:
    """A source whose agent does not answer (its node is down)."""

    def release(self, group: str, move: str | None = None) -> Outcome:
        raise PeerUnreachable("connection refused")

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        raise PeerUnreachable("connection refused")


UNREACHABLE_SOURCE = """
cluster: t
nodes: {node1: {address: 10.213.250.1}, node2: {address: 10.213.250.2}}
groups:
  bare: {nodes: [node1, node2]}
"""
FENCE_NODE1 = """
fencing:
  node1: {command: [%s, -c, "pass"], timeout: 5s}
"""


@pytest.mark.parametrize("fencing", [False, True], ids=["no fence agent", "fence agent"])
def test_recovery_with_the_source_unreachable_rolls_nothing_back(
    tmp_path: Path, fencing: bool
) -> None:
    """A move interrupted during its release, its source unreachable at recovery: the source
    could not be given the group back, so nothing is journaled as rolled back; the move goes on
    (fence the source, then acquire) or is refused, as a move with an unreachable source is."""
    text = UNREACHABLE_SOURCE + (FENCE_NODE1 % sys.executable if fencing else "")
    cfg = parse_config(text, check_files=False)
    agent = LocalAgent(cfg, "node2", tmp_path)
    mover = Mover(cfg, "node2", agent.journal, agent, {"node1": _UnreachablePeer()}, Fencer(cfg))
    move_id = agent.journal.begin_move(mover.plan("bare", "node1", "node2"))
    agent.journal.step_started(move_id, 0)  # the hook died while node1 was releasing

    [outcome] = recover(mover)

    assert "rolled back" not in outcome.message
    steps = agent.journal.get(move_id).steps
    assert StepState.UNDONE not in [s.state for s in steps]
    assert steps[0].state is StepState.FAILED
    assert agent.journal.get(move_id).finished is not None
    if fencing:
        assert outcome.status is Status.DONE, outcome.message
        assert [s.state for s in steps[1:]] == [StepState.DONE, StepState.DONE]
        assert agent.held() == {"bare"}
    else:
        assert outcome.status is Status.REFUSED, outcome.message
        assert outcome.message.endswith("node1 unreachable and no fence agent")
        assert agent.held() == set()


class _FailingPeer(_UnreachablePeer):
    """A source that answers but cannot start the group again."""

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        return Outcome(Status.FAILED, f"acquire {group} failed at service x: exited 1", group)


def test_recovery_with_a_source_that_cannot_take_the_group_back(tmp_path: Path) -> None:
    cfg = parse_config(UNREACHABLE_SOURCE + FENCE_NODE1 % sys.executable, check_files=False)
    agent = LocalAgent(cfg, "node2", tmp_path)
    mover = Mover(cfg, "node2", agent.journal, agent, {"node1": _FailingPeer()}, Fencer(cfg))
    move_id = agent.journal.begin_move(mover.plan("bare", "node1", "node2"))
    agent.journal.step_started(move_id, 0)

    [outcome] = recover(mover)

    assert outcome.status is Status.FAILED
    assert outcome.message == (
        f"recovered move #{move_id} (bare node1 -> node2): not rolled back; bare could not be"
        " restarted on node1: acquire bare failed at service x: exited 1"
    )
    steps = agent.journal.get(move_id).steps
    assert [s.state for s in steps] == [StepState.FAILED, StepState.PENDING, StepState.PENDING]
    assert agent.held() == set()  # nothing more done than before the crash: no fence, no acquire


class _ReleasingPeer(_UnreachablePeer):
    """A source that releases at once."""

    def release(self, group: str, move: str | None = None) -> Outcome:
        return Outcome(Status.DONE, f"released {group} on node1 in 0.0 s", group)


@pytest.mark.parametrize(
    ("only_if_failed", "fence_state"), [(0, StepState.SKIPPED), (None, StepState.DONE)]
)
def test_the_fence_step_runs_as_its_only_if_failed_field_says(
    tmp_path: Path, only_if_failed: int | None, fence_state: StepState
) -> None:
    cfg = parse_config(UNREACHABLE_SOURCE + FENCE_NODE1 % sys.executable, check_files=False)
    agent = LocalAgent(cfg, "node2", tmp_path)
    mover = Mover(cfg, "node2", agent.journal, agent, {"node1": _ReleasingPeer()}, Fencer(cfg))
    plan = mover.plan("bare", "node1", "node2")
    release, fence, acquire = plan.steps
    assert fence.only_if_failed == 0
    steps = (release, dataclasses.replace(fence, only_if_failed=only_if_failed), acquire)

    outcome = mover.execute(dataclasses.replace(plan, steps=steps))

    assert outcome.status is Status.DONE, outcome.message
    [move] = [m for m in agent.journal.history("bare") if m.kind == "move"]
    assert [s.state for s in move.steps] == [StepState.DONE, fence_state, StepState.DONE]


def test_an_interrupted_restart_is_finished_as_failed_and_releases_nothing(
    marker_agent: LocalAgent,
) -> None:
    """A hook killed during a restart in place: its entry ends failed (the next alert decides),
    and the recovery of acquires and releases does not take it for one (it would release)."""
    agent = marker_agent
    assert agent.acquire("bare").ok
    steps = ["stop service x", "start service x"]
    alerted = Trigger(TriggerKind.ALERT)
    entry = agent.journal.begin_local("bare", "node1", "restart", steps, alerted, services=["x"])
    agent.journal.step_started(entry, 0)
    mover = Mover(agent.config, "node1", agent.journal, agent, {}, Fencer(agent.config))
    assert recover(mover) == []
    [outcome] = Restarter(agent, agent.journal).recover()
    assert outcome.status is Status.FAILED
    assert outcome.message == f"restart #{entry} of bare interrupted"
    record = agent.journal.get(entry)
    assert record.status == "failed" and record.services == ("x",)
    assert agent.held() == {"bare"}


class _BusyThenGivenBackPeer(_ReleasingPeer):
    """A source that releases at once, then answers the group given back "in progress" twice
    (another decision holds the group's claim there for a moment) before taking it."""

    def __init__(self) -> None:
        self.acquires = 0

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        self.acquires += 1
        if self.acquires <= 2:
            return Outcome(Status.IN_PROGRESS, f"already in progress: {group}", group)
        return Outcome(Status.DONE, f"acquired {group} on node1 in 0.0 s", group)


FAILING_START = """
cluster: t
nodes: {node1: {address: 10.213.250.1}, node2: {address: 10.213.250.2}}
groups:
  broken:
    nodes: [node1, node2]
    services:
      - name: x
        start: [%s, -c, "raise SystemExit(1)"]
        process: {cmdline: %s}
        start_timeout: 2s
"""


def test_an_undo_answered_in_progress_is_asked_again_until_the_source_takes_the_group_back(
    tmp_path: Path,
) -> None:
    """The acquire fails on the target: the source is given the group back even when its first
    answers are "in progress" (the fault campaign at 250 ms: taken as the undo's failure, the
    group was left running nowhere)."""
    cfg = parse_config(FAILING_START % (sys.executable, MARKER), check_files=False)
    agent = LocalAgent(cfg, "node2", tmp_path)
    source = _BusyThenGivenBackPeer()
    mover = Mover(cfg, "node2", agent.journal, agent, {"node1": source}, Fencer(cfg))

    outcome = mover.execute(mover.plan("broken", "node1", "node2"))

    assert outcome.status is Status.FAILED, outcome.message
    assert outcome.message.endswith("rolled back: broken restarted on node1"), outcome.message
    assert source.acquires == 3
    [move] = [m for m in agent.journal.history("broken") if m.kind == "move"]
    assert move.steps[0].state is StepState.UNDONE
    assert agent.held() == set()
