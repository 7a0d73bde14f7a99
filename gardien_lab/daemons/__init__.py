"""Recipes for the real daemons the lab and the tests run: Apache, MariaDB, Tomcat.

Each module holds a frozen dataclass describing one instance, a function writing its config files,
the argv to start it in the foreground (for a supervisor that keeps the process) or daemonized (as a
cluster service's ``start`` command), the argv to stop it, and a readiness check.  Every argv takes
an optional prefix (e.g. ``['nsenter', '-t', PID, '-m', '-u', '-n', '--']``) so the lab runs the
same daemon on one of its nodes, and every config writer an ``fs_root`` (e.g. ``/proc/PID/root``)
through which the instance's paths are reached from the caller's mount namespace.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gardien.errors import GardienError
from gardien.polling import Deadline, wait_until

log = logging.getLogger(__name__)

Prefix = Sequence[str]
"""argv prefix that runs a command where the daemon lives (empty: here)."""

_HTTP_ANSWERS = (
    "import http.client, sys\n"
    "c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=2)\n"
    "c.request('GET', sys.argv[3])\n"
    "sys.exit(0 if c.getresponse().status < 500 else 1)\n"
)


class DaemonNotReadyError(GardienError):
    """A daemon did not answer within the time allowed after its start."""


def seen_from(fs_root: Path, path: Path) -> Path:
    """``path`` of the daemon's filesystem as reached through ``fs_root`` from here."""
    return fs_root / path.relative_to("/") if path.is_absolute() else fs_root / path


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def http_answers_argv(host: str, port: int, path: str = "/", prefix: Prefix = ()) -> list[str]:
    """argv that exits 0 when an HTTP server answers ``GET path`` with a status below 500."""
    return [*prefix, sys.executable, "-c", _HTTP_ANSWERS, host, str(port), path]


def http_url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def run_bounded(argv: Sequence[str], timeout: float) -> int | None:
    """Run ``argv`` in its own process group; kill the group at ``timeout``; None when killed."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def wait_ready(argv: Sequence[str], timeout: float, what: str, interval: float = 0.1) -> None:
    """Run the check ``argv`` until it exits 0; :class:`DaemonNotReadyError` after ``timeout``."""
    deadline = Deadline(timeout)
    if not wait_until(
        lambda: run_bounded(argv, min(deadline.left(0.5), 3.0)) == 0, deadline, interval
    ):
        raise DaemonNotReadyError(f"{what} did not answer within {timeout:g} s")
    log.debug("%s answers", what)
