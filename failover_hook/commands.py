"""The one way gardien's failover engine runs a command: argv lists, hard timeouts, a record.

Every command of the engine (mount, ip, arping, apachectl, fence agents...) goes through a
:class:`CommandRunner`, so tests can assert on what ran and production never passes a string
through a shell.  Output goes to temporary files rather than pipes: a daemon started by a command
(``apachectl -k start``) inherits its stdout and would keep a pipe open for its whole life.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout/stderr kept from one command (the end of it, where errors are)."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    rc: int
    """Exit status; -9 (negative signal) when the timeout killed it, 127 when it was not found."""
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def describe(self) -> str:
        """``mount ... exited 32: mount: /srv/x: wrong fs type`` (for error messages)."""
        what = (
            f"{self.argv[0]} timed out after {self.duration:.1f} s"
            if self.timed_out
            else (f"{self.argv[0]} exited {self.rc}")
        )
        detail = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"{what}: {detail[-1]}" if detail else what


class CommandRunner:
    """Runs argv lists with a hard timeout that kills the command's whole process group.

    ``ran`` records every argv run or spawned, in order, for tests and the journal.
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        self.ran: list[list[str]] = []
        self._lock = threading.Lock()

    def _record(self, argv: Sequence[str]) -> list[str]:
        command = [str(a) for a in argv]
        if not command:
            raise ValueError("empty command")
        with self._lock:
            self.ran.append(command)
        log.debug("running %s", command)
        return command

    def run(
        self, argv: Sequence[str], timeout: float, input_text: str | None = None
    ) -> CommandResult:
        """Run ``argv`` to completion, killing its process group after ``timeout`` seconds."""
        command = self._record(argv)
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as exc:
                return CommandResult(
                    tuple(command),
                    127,
                    "",
                    f"{command[0]}: {exc.strerror}",
                    time.monotonic() - started,
                )
            timed_out = False
            try:
                if input_text is not None:
                    proc.communicate(input_text.encode(), timeout=max(timeout, 0.001))
                else:
                    proc.wait(timeout=max(timeout, 0.001))
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
                proc.wait()
            return CommandResult(
                tuple(command),
                proc.returncode,
                _tail(out),
                _tail(err),
                time.monotonic() - started,
                timed_out,
            )

    def spawn(self, argv: Sequence[str], log_file: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` detached (own session) and return at once; output goes to ``log_file``.

        For service start commands, which may daemonize (``apachectl -k start``) or stay in the
        foreground as the daemon itself (``mysqld_safe``): the caller decides when it is up.
        """
        command = self._record(argv)
        sink: IO[bytes] | int = subprocess.DEVNULL
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            sink = log_file.open("wb")
        try:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        finally:
            if not isinstance(sink, int):
                sink.close()


def kill_group(pgid: int) -> None:
    """SIGCONT then SIGKILL a whole process group (a stopped group would not die otherwise)."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _tail(file: IO[bytes]) -> str:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(max(0, size - _OUTPUT_LIMIT))
    return file.read().decode(errors="replace")
