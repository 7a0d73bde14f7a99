"""Run a command under a hard timeout that kills its whole process group.

Client tools hang on a frozen server in ways their own timeouts do not bound (``smbclient -t``
waits forever on a SIGSTOPped smbd, ``wbinfo -t`` takes 18 s when the DC is gone: LAB.md section
5).  :class:`CommandRunner` starts each command as the leader of a new session, and at the deadline
sends SIGKILL to that process group and reaps the leader, so nothing it started is left behind.

It is the one injectable side effect of the probes that run commands (smb, winbind) and of SMART:
tests pass a runner with an argv ``prefix`` (``nsenter -t PID -m -u -n --``) to run the same
commands on a test node, or a fake that replays recorded output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C",
}
"""A minimal, predictable environment: C locale output to parse, and no inherited variables such
as ``PASSWD`` or ``USER`` that some clients (smbclient) would take as credentials."""

_REAP_GRACE = 1.0
"""After the kill, how long to wait for the output pipes to close (a grandchild that left the
process group may keep them open; its output is then given up)."""


@dataclass(frozen=True)
class CommandResult:
    """What one command did: exit status (None when killed at the deadline) and its output."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    pid: int
    timed_out: bool = False
    error: str = ""
    """Set when the command could not be started at all (missing program...)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class CommandRunner:
    """Runs argv lists (never through a shell) with a hard deadline; never raises for the command.

    ``prefix`` is prepended to every argv (e.g. ``['nsenter', '-t', PID, '-m', '-u', '-n', '--']``
    to run on a lab node); ``env`` replaces the environment (default :data:`DEFAULT_ENV`).
    """

    def __init__(self, prefix: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        self.prefix = tuple(prefix)
        self.env = dict(DEFAULT_ENV if env is None else env)

    def run(self, argv: Sequence[str], timeout: float, stdin: str | None = None) -> CommandResult:
        """Run ``argv`` for at most ``timeout`` seconds; at the deadline kill its process group."""
        full = (*self.prefix, *argv)
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",  # a non-UTF-8 byte (a vendor string) must not lose the run
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            reason = f"cannot run {full[0]}: {exc.strerror}"
            return CommandResult(full, None, "", "", 0, error=reason)
        try:
            stdout, stderr = proc.communicate(stdin, timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            self._kill_group(proc.pid)
            stdout, stderr = self._drain(proc)
            proc.wait()
            log.info("%s killed after %.1fs timeout", full[0], timeout)
            return CommandResult(full, None, stdout, stderr, proc.pid, timed_out=True)
        except BaseException:
            self._kill_group(proc.pid)
            proc.wait()
            raise
        return CommandResult(full, proc.returncode, stdout, stderr, proc.pid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        # only called while the leader is unreaped, so its pid (the group id) cannot be reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    @staticmethod
    def _drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
        deadline = time.monotonic() + _REAP_GRACE
        try:
            stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            return "", ""
        return stdout or "", stderr or ""
