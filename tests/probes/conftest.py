"""Shared setup of the probe tests; real daemons: Apache, MariaDB and Tomcat from Debian packages.

They listen on random 127.x.y.z loopback addresses with free ports, keep every file in a private
folder, and are stopped (even when stopped with SIGSTOP by a test) at the end.  The daemons run as
their own users (www-data, mysql, tomcat), so the folder is outside pytest's 0700 tmp tree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from gardien_lab.daemons import apache, mariadb, tomcat
from gardien_lab.freeze import freeze

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the daemons need root to switch users")

PROBE_USER = "probe"
PROBE_PASSWORD = "s3cret-probe-pw"


def loopback() -> str:
    """A random 127.x.y.z address (all of 127/8 is local), unlikely to collide with a peer's."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A daemon this test session started, in its own process group."""

    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the daemon's process group; for SIGSTOP, return once every thread of
        the group is stopped (a stop is asynchronous: until the thread the kernel picked acts on
        it, the other threads keep serving)."""
        if sig == signal.SIGSTOP:
            freeze(self.proc.pid, group=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.signal_group(signal.SIGCONT)
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)


def start(argv: Sequence[str], log: Path) -> Running:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Running(proc)


@pytest.fixture(scope="session")
def lab_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gardien-probes-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class ApacheUnderTest:
    inst: apache.ApacheInstance
    daemon: Running


Extra = Callable[[apache.ApacheInstance], str]
"""Config lines to add, made from the instance (its address, port and root)."""


@contextlib.contextmanager
def running_apache(
    base: Path, name: str, pages: dict[str, str] | None = None, extra: Extra | None = None
) -> Iterator[ApacheUnderTest]:
    address = loopback()
    inst = apache.ApacheInstance(
        name, base / name, address, free_port(address), status_from=(address,)
    )
    if extra:
        inst = dataclasses.replace(inst, extra=extra(inst))
    apache.write_config(inst, pages)
    daemon = start(apache.foreground_argv(inst), base / f"{name}.out")
    try:
        apache.wait_until_ready(inst)
        yield ApacheUnderTest(inst, daemon)
    finally:
        daemon.stop()


@contextlib.contextmanager
def running_mariadb(base: Path, name: str) -> Iterator[tuple[mariadb.MariadbInstance, Path]]:
    """A fresh MariaDB on a loopback address with the probe's user (by socket and by TCP) and
    its credentials file; stopped at the end (benchmarks: ``mariadb_pair`` is the tests')."""
    address = loopback()
    inst = mariadb.MariadbInstance(name, base / name, address, free_port(address))
    mariadb.write_config(inst)
    subprocess.run(mariadb.install_db_argv(inst), check=True, capture_output=True, timeout=120)
    daemon = start(mariadb.foreground_argv(inst), base / f"{name}.out")
    try:
        mariadb.wait_until_ready(inst)
        mariadb.run_sql(
            inst,
            f"CREATE USER '{PROBE_USER}'@'localhost' IDENTIFIED BY '{PROBE_PASSWORD}';\n"
            f"CREATE USER '{PROBE_USER}'@'%' IDENTIFIED BY '{PROBE_PASSWORD}';",
        )
        creds = base / f"{name}-probe.cnf"
        creds.write_text(f'[client]\nuser = {PROBE_USER}\npassword = "{PROBE_PASSWORD}"\n')
        creds.chmod(0o600)
        yield inst, creds
    finally:
        daemon.stop()


@pytest.fixture
def apache_factory(lab_dir: Path) -> Iterator[Callable[..., ApacheUnderTest]]:
    """``factory(name, pages=None, extra=None)`` -> a fresh Apache, stopped after the test."""
    with contextlib.ExitStack() as stack:

        def factory(
            name: str, pages: dict[str, str] | None = None, extra: Extra | None = None
        ) -> ApacheUnderTest:
            unique = f"{name}-{os.urandom(3).hex()}"
            return stack.enter_context(running_apache(lab_dir, unique, pages, extra))

        yield factory


@dataclass
class MariadbUnderTest:
    inst: mariadb.MariadbInstance
    credentials: Path
    daemon: Running | None = None

    def start(self) -> None:
        self.daemon = start(mariadb.foreground_argv(self.inst), self.inst.root / "stdout.log")
        mariadb.wait_until_ready(self.inst)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


SETUP_SQL = f"""
CREATE USER '{PROBE_USER}'@'localhost' IDENTIFIED BY '{PROBE_PASSWORD}';
CREATE USER '{PROBE_USER}'@'%' IDENTIFIED BY '{PROBE_PASSWORD}';
CREATE DATABASE app;
CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
INSERT INTO app.t VALUES (1, 'one'), (2, 'two');
CREATE TABLE app.m (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM;
INSERT INTO app.m VALUES (1, 'one');
GRANT SELECT ON app.* TO '{PROBE_USER}'@'localhost', '{PROBE_USER}'@'%';
"""


@pytest.fixture(scope="session")
def mariadb_pair(lab_dir: Path) -> Iterator[tuple[MariadbUnderTest, MariadbUnderTest]]:
    """Two MariaDB instances, each with its own datadir, socket, address and port."""
    if shutil.which("mariadbd") is None and not Path(mariadb.MARIADBD).exists():
        pytest.skip("mariadb-server is not installed")
    instances = []
    for name in ("mysql1", "mysql2"):
        address = loopback()
        inst = mariadb.MariadbInstance(name, lab_dir / name, address, free_port(address))
        mariadb.write_config(inst)
        instances.append(inst)
    logs = [lab_dir / f"{i.name}-install.log" for i in instances]
    installs = [
        subprocess.Popen(
            mariadb.install_db_argv(i), stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        for i, log in zip(instances, logs, strict=True)
    ]
    for inst, proc, log in zip(instances, installs, logs, strict=True):
        if proc.wait(timeout=120) != 0:
            errors = inst.error_log.read_text() if inst.error_log.exists() else ""
            pytest.fail(f"mariadb-install-db failed: {log.read_text()[-1000:]}{errors[-4000:]}")
    started: list[MariadbUnderTest] = []
    try:
        for inst in instances:
            creds = lab_dir / f"{inst.name}-probe.cnf"
            creds.write_text(f'[client]\nuser = {PROBE_USER}\npassword = "{PROBE_PASSWORD}"\n')
            creds.chmod(0o600)
            db = MariadbUnderTest(inst, creds)
            db.start()
            started.append(db)
            mariadb.run_sql(inst, SETUP_SQL)
        yield started[0], started[1]
    finally:
        for db in started:
            db.stop()


@pytest.fixture(scope="session")
def tomcat_instance(lab_dir: Path) -> Iterator[tomcat.TomcatInstance]:
    if not (tomcat.CATALINA_HOME / "bin" / "catalina.sh").exists():
        pytest.skip("tomcat10 is not installed (/usr/share/tomcat10/bin/catalina.sh)")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH for tomcat10")
    address = loopback()
    inst = tomcat.TomcatInstance(
        "tomcat", lab_dir / "tomcat", address, free_port(address), free_port("127.0.0.1")
    )
    tomcat.write_config(inst, {"index.html": "hello\n", "health": "status: UP\n"})
    daemon = start(tomcat.foreground_argv(inst), lab_dir / "tomcat.out")
    try:
        tomcat.wait_until_ready(inst, timeout=90)
        yield inst
    finally:
        daemon.stop()
