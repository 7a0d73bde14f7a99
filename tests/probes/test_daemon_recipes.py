"""The daemon recipes' daemonized start and stop commands, run on a node through the argv prefix
(the way the lab and a cluster's start/stop commands use them); the probe tests use their
foreground form."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gardien.probes.process import ProcessParams, ProcessProbe
from gardien_lab.daemons import apache, mariadb, tomcat
from tests.probes.conftest import loopback, needs_root
from tests.support.netns import Node, have_root_and_netns

pytestmark = [
    needs_root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.timeout(180),
]


@pytest.fixture
def node() -> Iterator[Node]:
    made = Node("rcp")
    try:
        yield made
    finally:
        made.destroy()  # kills whatever a failed test left running on the node


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def master_of(pidfile: Path) -> ProcessProbe:
    return ProcessProbe(ProcessParams(pidfile=str(pidfile)))


def until_gone(pidfile: Path, pid: int) -> None:
    """Bounded wait for a stopped daemon's process to disappear."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:  # also when it goes between two looks at it
            return
        assert time.monotonic() < deadline, f"pid {pid} of {pidfile} still running"
        time.sleep(0.05)


def test_apache_start_and_stop_on_a_node(node: Node, lab_dir: Path) -> None:
    # 127.0.0.1 of the node's own network namespace: no clash with the host's or a peer's
    inst = apache.ApacheInstance("www-node", lab_dir / "www-node", "127.0.0.1", 8080)
    apache.write_config(inst)
    prefix = node.prefix()

    started = run(apache.start_argv(inst, prefix))
    apache.wait_until_ready(inst, prefix=prefix)
    running = master_of(inst.pidfile).run()
    pid = int(inst.pidfile.read_text())
    on_node = pid in node.processes()
    stopped = run(apache.stop_argv(inst, prefix))
    until_gone(inst.pidfile, pid)

    assert started.returncode == 0, started.stderr
    assert running.ok, running.reason
    assert on_node  # in the node's mount namespace: the prefix was used
    assert stopped.returncode == 0, stopped.stderr


def test_mariadb_start_is_idempotent_and_stop_ends_it(node: Node, lab_dir: Path) -> None:
    inst = mariadb.MariadbInstance("db-node", lab_dir / "db-node", loopback(), 3306)
    mariadb.write_config(inst)
    prefix = node.prefix()
    assert run(mariadb.install_db_argv(inst, prefix)).returncode == 0

    first = run(mariadb.start_argv(inst, prefix))
    mariadb.wait_until_ready(inst, prefix=prefix)
    pid = int(inst.pidfile.read_text())
    again = run(mariadb.start_argv(inst, prefix))  # already running: succeeds, starts nothing
    same_pid = int(inst.pidfile.read_text())
    stopped = run(mariadb.stop_argv(inst, prefix))
    until_gone(inst.pidfile, pid)
    stopped_again = run(mariadb.stop_argv(inst, prefix))  # already stopped: succeeds

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0 and same_pid == pid
    assert stopped.returncode == 0, stopped.stderr
    assert stopped_again.returncode == 0


def test_tomcat_start_and_stop_on_a_node(node: Node, lab_dir: Path) -> None:
    if not (tomcat.CATALINA_HOME / "bin" / "catalina.sh").exists():
        pytest.skip("tomcat10 is not installed (/usr/share/tomcat10/bin/catalina.sh)")
    inst = tomcat.TomcatInstance("tc-node", lab_dir / "tc-node", "127.0.0.1", 8080, 8005)
    tomcat.write_config(inst)
    prefix = node.prefix()

    started = run(tomcat.start_argv(inst, prefix))
    tomcat.wait_until_ready(inst, timeout=90, prefix=prefix)
    running = ProcessProbe(
        ProcessParams(pidfile=str(inst.pidfile), cmdline=r"org\.apache\.catalina\.startup")
    ).run()
    pid = int(inst.pidfile.read_text())
    stopped = run(tomcat.stop_argv(inst, prefix))
    until_gone(inst.pidfile, pid)

    assert started.returncode == 0, started.stdout + started.stderr
    assert running.ok, running.reason
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
