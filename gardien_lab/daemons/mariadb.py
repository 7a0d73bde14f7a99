"""MariaDB instance with its own datadir, port, socket and pid file (docs/lab.md section 5).

Two instances live side by side on one node; each one's files sit below its ``root`` (on the group's
volume in the lab).  The small InnoDB settings keep a fresh instance near 15 MB instead of 114 MB.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gardien_lab.daemons import Prefix, seen_from, wait_ready, write_file

MARIADBD = "/usr/sbin/mariadbd"


@dataclass(frozen=True)
class MariadbInstance:
    """One MariaDB server: ``root`` holds data/, tmp/, the socket, the pid file and the error log
    (a private tmpdir: parallel bootstraps sharing /tmp have failed on each other's temp tables)."""

    name: str
    root: Path
    address: str = "127.0.0.1"
    port: int = 3306
    user: str = "mysql"
    conf_dir: Path | None = None
    """Where ``NAME.cnf`` is written (the same on every node); ``root`` when None."""

    @property
    def conf_file(self) -> Path:
        return (self.conf_dir or self.root) / f"{self.name}.cnf"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        return self.root / "mysqld.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "mysqld.pid"

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"


def config_text(inst: MariadbInstance) -> str:
    return f"""# gardien lab: MariaDB instance {inst.name}
[mysqld]
user={inst.user}
datadir={inst.datadir}
socket={inst.socket}
pid-file={inst.pidfile}
log-error={inst.error_log}
tmpdir={inst.root / "tmp"}
bind-address={inst.address}
port={inst.port}
skip-name-resolve
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
performance_schema=OFF

[client]
socket={inst.socket}
port={inst.port}
"""


def write_config(inst: MariadbInstance, fs_root: Path = Path("/")) -> Path:
    """Write the config and create ``root`` owned by the server's user; returns the config file."""
    root = seen_from(fs_root, inst.root)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for path in (root, root / "tmp"):
        shutil.chown(path, inst.user, inst.user)
    write_file(seen_from(fs_root, inst.conf_file), config_text(inst))
    return inst.conf_file


def install_db_argv(inst: MariadbInstance, prefix: Prefix = ()) -> list[str]:
    """Create the system tables in an empty datadir (about 1-2 s); root logs in by unix socket."""
    return [
        *prefix,
        "mariadb-install-db",
        f"--defaults-file={inst.conf_file}",
        "--skip-test-db",
        "--auth-root-authentication-method=socket",
    ]


def foreground_argv(inst: MariadbInstance, prefix: Prefix = ()) -> list[str]:
    return [*prefix, MARIADBD, f"--defaults-file={inst.conf_file}"]


def start_argv(inst: MariadbInstance, prefix: Prefix = ()) -> list[str]:
    """Start daemonized; succeeds when this instance (by its pid file) already runs."""
    return [
        *prefix, "start-stop-daemon", "--start", "--quiet", "--oknodo", "--background",
        "--pidfile", str(inst.pidfile), "--exec", MARIADBD, "--",
        f"--defaults-file={inst.conf_file}",
    ]  # fmt: skip


def stop_argv(inst: MariadbInstance, prefix: Prefix = (), grace: int = 30) -> list[str]:
    """Stop this instance (TERM, KILL after ``grace`` seconds); succeeds when already stopped."""
    return [
        *prefix, "start-stop-daemon", "--stop", "--quiet", "--oknodo",
        "--pidfile", str(inst.pidfile), "--exec", MARIADBD, "--retry", f"TERM/{grace}/KILL/5",
    ]  # fmt: skip


def client_argv(inst: MariadbInstance, prefix: Prefix = ()) -> list[str]:
    """The ``mariadb`` client as root over the socket, reading SQL from stdin (secrets stay out
    of argv)."""
    conf = f"--defaults-file={inst.conf_file}"
    return [*prefix, "mariadb", conf, "--batch", "--skip-column-names"]


def run_sql(inst: MariadbInstance, sql: str, prefix: Prefix = (), timeout: float = 30.0) -> str:
    """Run ``sql`` as root; returns the client's output, raises CalledProcessError on failure."""
    done = subprocess.run(
        client_argv(inst, prefix), input=sql, capture_output=True, text=True, timeout=timeout,
        check=True,
    )  # fmt: skip
    return done.stdout


def ready_argv(inst: MariadbInstance, prefix: Prefix = ()) -> list[str]:
    conf = f"--defaults-file={inst.conf_file}"
    return [*prefix, "mariadb-admin", conf, "--connect-timeout=2", "ping"]


def wait_until_ready(inst: MariadbInstance, timeout: float = 30.0, prefix: Prefix = ()) -> None:
    wait_ready(ready_argv(inst, prefix), timeout, f"mariadb {inst.name} on {inst.socket}")
