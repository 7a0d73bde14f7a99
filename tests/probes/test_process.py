"""The process probe against real process trees: Apache's master and workers, and small masters
of our own whose workers the tests kill, stop or leave unreaped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from gardien.node import liveness
from gardien.probes.process import ProcessParams, ProcessProbe
from tests.probes.conftest import ApacheUnderTest, needs_root

pytestmark = pytest.mark.timeout(120)

# a master that starts N workers (sleep), optionally forks a child it never reaps, and keeps
# running after its workers are gone
MASTER = """
import os, subprocess, sys, time
workers = [subprocess.Popen(["sleep", "300"]) for _ in range(int(sys.argv[1]))]
if sys.argv[2] == "zombie" and os.fork() == 0:
    os._exit(0)
for worker in workers:
    worker.wait()
time.sleep(300)
"""


def probe(**params: object) -> ProcessProbe:
    return ProcessProbe(ProcessParams(**params))  # type: ignore[arg-type]


def until(condition: Callable[[], bool], what: str) -> None:
    """Bounded wait for a state the test itself brought about (not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within 10 s: {what}")
        time.sleep(0.01)


class Master:
    def __init__(self, workers: int, zombie: bool, pidfile: Path, marker: str = "") -> None:
        self.marker = marker or f"gardien-test-master-{uuid.uuid4().hex[:8]}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MASTER, str(workers), "zombie" if zombie else "-", self.marker],
            start_new_session=True,
        )
        self.pidfile = pidfile
        pidfile.write_text(f"{self.proc.pid}\n")
        expected = workers + zombie
        until(lambda: len(self.children()) == expected, f"{expected} children of the master")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def stop(self) -> None:
        for child in self.children():
            child.kill()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def master_factory(tmp_path: Path) -> Iterator[Callable[..., Master]]:
    made: list[Master] = []

    def factory(workers: int = 2, zombie: bool = False) -> Master:
        made.append(Master(workers, zombie, tmp_path / f"master{len(made)}.pid"))
        return made[-1]

    yield factory
    for master in made:
        master.stop()


@needs_root
def test_apache_master_and_workers(apache_factory: Callable[..., ApacheUnderTest]) -> None:
    site = apache_factory("proc")
    until(site.inst.pidfile.exists, "Apache's pid file")
    by_pidfile = probe(pidfile=str(site.inst.pidfile), min_children=1).run()
    pattern = re.escape(str(site.inst.conf_file))
    by_cmdline = probe(cmdline=pattern, min_children=1).run()
    both = probe(pidfile=str(site.inst.pidfile), cmdline=pattern).run()

    assert by_pidfile.ok, by_pidfile.reason
    assert by_pidfile.values["master_alive"] == 1
    assert by_pidfile.values["children"] >= 1
    assert by_pidfile.values["processes"] == by_pidfile.values["children"] + 1
    assert by_pidfile.values["zombies"] == 0 and by_pidfile.values["stopped"] == 0
    assert by_cmdline.ok, by_cmdline.reason
    assert by_cmdline.values == by_pidfile.values  # the master, not one of its workers
    assert both.ok, both.reason


@needs_root
def test_stopped_apache_is_reported(apache_factory: Callable[..., ApacheUnderTest]) -> None:
    site = apache_factory("proc-stopped")
    until(site.inst.pidfile.exists, "Apache's pid file")
    site.daemon.signal_group(signal.SIGSTOP)
    try:
        result = probe(pidfile=str(site.inst.pidfile), min_children=1).run()
    finally:
        site.daemon.signal_group(signal.SIGCONT)

    assert not result.ok
    assert re.fullmatch(r"master pid \d+ is stopped \(state T\)", result.reason), result.reason
    assert result.values["stopped"] == result.values["processes"] >= 2
    assert result.values["master_alive"] == 1


def test_master_alive_but_workers_gone(master_factory: Callable[..., Master]) -> None:
    master = master_factory(workers=2)
    before = probe(pidfile=str(master.pidfile), min_children=2).run()
    for child in master.children():
        child.kill()
    until(lambda: not master.children(), "workers killed and reaped")
    after = probe(pidfile=str(master.pidfile), min_children=1).run()

    assert before.ok, before.reason
    assert before.values == {
        "processes": 3, "children": 2, "zombies": 0, "stopped": 0, "master_alive": 1,
    }  # fmt: skip
    assert not after.ok
    assert after.reason == (
        f"master pid {master.proc.pid} alive but workers gone: 0 children, 1 expected"
    )
    assert after.values == {
        "processes": 1, "children": 0, "zombies": 0, "stopped": 0, "master_alive": 1,
    }  # fmt: skip


def test_all_workers_stopped(master_factory: Callable[..., Master]) -> None:
    master = master_factory(workers=2)
    for child in master.children():
        child.send_signal(signal.SIGSTOP)
    until(
        lambda: all(c.status() == psutil.STATUS_STOPPED for c in master.children()),
        "workers stopped",
    )
    result = probe(cmdline=master.marker).run()

    assert not result.ok
    assert result.reason == f"master pid {master.proc.pid} alive but all 2 workers stopped"
    assert result.values["stopped"] == 2 and result.values["children"] == 2


def test_unreaped_child_is_counted_as_a_zombie(master_factory: Callable[..., Master]) -> None:
    master = master_factory(workers=1, zombie=True)
    until(
        lambda: any(c.status() == psutil.STATUS_ZOMBIE for c in master.children()),
        "the forked child exited",
    )
    result = probe(pidfile=str(master.pidfile), min_children=1).run()

    assert result.ok, result.reason  # one live worker is enough; the zombie is only counted
    assert result.values == {
        "processes": 2, "children": 1, "zombies": 1, "stopped": 0, "master_alive": 1,
    }  # fmt: skip


def test_zombie_master_is_dead_although_kill_0_succeeds(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])  # exits at once; this test does not reap it yet
    try:
        until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, "zombie")
        os.kill(child.pid, 0)  # what a kill -0 liveness check would wrongly take as "running"
        pidfile = tmp_path / "zombie.pid"
        pidfile.write_text(str(child.pid))
        result = probe(pidfile=str(pidfile)).run()
    finally:
        child.wait()

    assert not result.ok
    assert result.reason == f"master pid {child.pid} is dead (zombie), not yet reaped"
    assert result.values["master_alive"] == 0 and result.values["zombies"] == 1


def test_reused_pid_is_not_taken_for_the_service(master_factory: Callable[..., Master]) -> None:
    master = master_factory(workers=0)
    result = probe(pidfile=str(master.pidfile), cmdline="apache2 -f /etc/apache2-php4/").run()

    assert not result.ok
    assert "is not the service" in result.reason
    assert "pid reused" in result.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "no pid file"), ("garbage\n", "holds no pid"), ("999999999\n", "is not running")],
)
def test_pidfile_problems(tmp_path: Path, content: str | None, reason: str) -> None:
    pidfile = tmp_path / "service.pid"
    if content is not None:
        pidfile.write_text(content)
    result = probe(pidfile=str(pidfile)).run()

    assert not result.ok
    assert reason in result.reason
    assert result.values["master_alive"] == 0


def test_no_process_matches() -> None:
    result = probe(cmdline=f"no-such-daemon-{uuid.uuid4().hex}").run()

    assert not result.ok
    assert result.reason.startswith("no process matches")


THREADED = """
import subprocess, sys, threading, time
workers = []
thread = threading.Thread(target=lambda: workers.append(subprocess.Popen(["sleep", "300"])))
thread.start()
thread.join()
workers.append(subprocess.Popen(["sleep", "300"]))
time.sleep(300)
"""


def test_tree_reads_the_children_of_every_thread() -> None:
    """The kernel lists a child under the thread that forked it: the tree of a master whose
    worker was started from a thread is the tree the whole process table gives."""
    proc = subprocess.Popen([sys.executable, "-c", THREADED], start_new_session=True)
    try:
        until(lambda: len(psutil.Process(proc.pid).children()) == 2, "2 children")
        master = liveness.read(proc.pid)
        assert master is not None
        from_kernel = {p.pid for p in liveness.tree(master)}
        assert from_kernel == {p.pid for p in liveness.descendants(proc.pid)}
        assert from_kernel == {c.pid for c in psutil.Process(proc.pid).children()}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_master_found_by_cmdline_is_found_again_once_replaced(tmp_path: Path) -> None:
    """One probe object across runs (as the exporter keeps it): a new master on the same command
    line is found after the first died, and none is found once both are gone."""
    first = Master(1, False, tmp_path / "first.pid")
    try:
        check = probe(cmdline=first.marker, min_children=1)
        assert check.run().ok
    finally:
        first.stop()
    assert check.run().reason == f"no process matches {first.marker!r}"
    second = Master(1, False, tmp_path / "second.pid", marker=first.marker)
    try:
        result = check.run()
        assert result.ok, result.reason
        assert check._find_master(float("inf")).pid == second.proc.pid
    finally:
        second.stop()
    assert not check.run().ok
