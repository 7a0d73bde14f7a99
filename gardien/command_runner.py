"""The one way gardien runs a command: argv lists, hard timeouts that kill the process group.

Every command of the exporter's probes and collectors (smbclient, wbinfo, smartctl, ping) and of
the failover engine (mount, ip, arping, service start commands, fence agents) goes through a
:class:`CommandRunner`, so production never passes a string through a shell and tests can run the
same commands on a test node (an argv ``prefix`` such as ``nsenter -t PID -m -u -n --``) and
assert on what ran (``record=True``).

Client tools hang on a frozen server in ways their own timeouts do not bound (``smbclient -t``
waits forever on a SIGSTOPped smbd, ``wbinfo -t`` takes 18 s when the DC is gone: docs/lab.md
section 5).  Each command is therefore the leader of a new session, and at the deadline its whole
process group gets SIGCONT then SIGKILL (as with every signal gardien sends: nothing is left
stopped) and the leader is reaped.
Output goes to temporary files rather than pipes: a daemon started by a command
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO

log = logging.getLogger(__name__)

DEFAULT_ENV: Mapping[str, str] = MappingProxyType(
    {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
)
"""A minimal, predictable environment: C locale output to parse, and no inherited variables such
as ``PASSWD`` or ``USER`` that some clients (smbclient) would take as credentials."""


class Inherit:
    """The type of :data:`INHERIT`."""


INHERIT = Inherit()
"""``env=INHERIT``: commands get this process's own environment (the failover engine's service
commands, as an init system would start them)."""

Env = Mapping[str, str] | Inherit

_OUTPUT_LIMIT = 1024 * 1024
"""Bytes of stdout/stderr kept from one command (the end of it, where errors are).  Large enough
for the longest output parsed (``smartctl -x``: tens of KiB)."""


_forks = threading.Lock()
_started: set[int] = set()
"""Children started here whose Popen may still wait for them (see :func:`own_children`)."""


@contextlib.contextmanager
def own_children() -> Iterator[set[int]]:
    """Hold off new commands and yield the pids of the children the runners started.

    For a child subreaper reaping the orphans it adopts (:mod:`failover_hook.processes`): reaping
    one of these instead would steal its exit status from its Popen, which would then report 0.
    The caller may drop the pids that no longer exist.
    """
    with _forks:
        yield _started


def _popen(
    command: list[str],
    stdin: int,
    stdout: IO[bytes] | int,
    stderr: IO[bytes] | int,
    env: dict[str, str] | None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` as the leader of a new session, and remember it as a child of ours."""
    with _forks:
        proc = subprocess.Popen(
            command, stdin=stdin, stdout=stdout, stderr=stderr, env=env, start_new_session=True
        )
        _started.add(proc.pid)
        return proc


def _waited(pid: int) -> None:
    with _forks:
        _started.discard(pid)


@dataclass(frozen=True)
class CommandResult:
    """What one command did: exit status (None when killed at the deadline) and its output."""

    argv: tuple[str, ...]
    """What ran, ``prefix`` included."""
    returncode: int | None
    stdout: str
    stderr: str
    pid: int
    """0 when the command could not be started."""
    duration: float = 0.0
    timed_out: bool = False
    error: str = ""
    """Set when the command could not be started at all (missing program...)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        """``mount exited 32: mount: /srv/x: wrong fs type`` (for error messages)."""
        if self.error:
            return self.error
        name = self.argv[0] if self.argv else "command"
        what = (
            f"{name} timed out after {self.duration:.1f} s"
            if self.timed_out
            else f"{name} exited {self.returncode}"
        )
        detail = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"{what}: {detail[-1]}" if detail else what


class CommandRunner:
    """Runs argv lists (never through a shell) with a hard deadline; never raises for the command.

    ``prefix`` is prepended to every argv.  ``env`` is the environment of every command
    (:data:`DEFAULT_ENV` unless told; :data:`INHERIT` for this process's own); ``run`` and
    ``spawn`` take an ``env`` of their own for one command (None: the runner's).  With
    ``record``, ``ran`` keeps every argv run or spawned and ``results`` every result of ``run``,
    in order, for tests (a daemon's runner records nothing: it would grow for its whole life).
    """

    def __init__(
        self,
        prefix: Sequence[str] = (),
        env: Env = DEFAULT_ENV,
        *,
        record: bool = False,
    ) -> None:
        self.prefix = tuple(prefix)
        self.env = env
        self.record = record
        self.ran: list[list[str]] = []
        self.results: list[CommandResult] = []
        self._lock = threading.Lock()

    def _command(self, argv: Sequence[str]) -> list[str]:
        command = [*self.prefix, *(str(a) for a in argv)]
        if not command:
            raise ValueError("empty command")
        if self.record:
            with self._lock:
                self.ran.append(command)
        log.debug("running %s", command)
        return command

    def _env(self, env: Env | None) -> dict[str, str] | None:
        """The ``env`` argument of Popen: the call's policy, else the runner's."""
        chosen = self.env if env is None else env
        return None if isinstance(chosen, Inherit) else dict(chosen)

    def run(
        self,
        argv: Sequence[str],
        timeout: float,
        stdin: str | None = None,
        *,
        env: Env | None = None,
    ) -> CommandResult:
        """Run ``argv`` for at most ``timeout`` seconds; at the deadline kill its process group."""
        result = self._run(self._command(argv), timeout, stdin, self._env(env))
        if self.record:
            with self._lock:
                self.results.append(result)
        return result

    def _run(
        self, command: list[str], timeout: float, stdin: str | None, env: dict[str, str] | None
    ) -> CommandResult:
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = _popen(
                    command,
                    subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                    out,
                    err,
                    env,
                )
            except OSError as exc:
                reason = f"cannot run {command[0]}: {exc.strerror}"
                return CommandResult(
                    tuple(command), None, "", "", 0, time.monotonic() - started, error=reason
                )
            timed_out = False
            try:
                if stdin is not None:
                    proc.communicate(stdin.encode(), timeout=max(timeout, 0.001))
                else:
                    proc.wait(timeout=max(timeout, 0.001))
            except subprocess.TimeoutExpired:
                timed_out = True
                # the leader is not reaped yet, so its pid (the group id) cannot have been reused
                kill_group(proc.pid)
                proc.wait()
                log.info("%s killed after %.1fs timeout", command[0], timeout)
            except BaseException:
                kill_group(proc.pid)
                proc.wait()
                raise
            finally:
                _waited(proc.pid)
            return CommandResult(
                tuple(command),
                None if timed_out else proc.returncode,
                _tail(out),
                _tail(err),
                proc.pid,
                time.monotonic() - started,
                timed_out,
            )

    def spawn(
        self,
        argv: Sequence[str],
        log_file: Path | None = None,
        *,
        env: Env | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` detached (own session) and return at once; output goes to ``log_file``.

        For service start commands, which may daemonize (``apachectl -k start``) or stay in the
        foreground as the daemon itself (``mysqld_safe``): the caller decides when it is up, and
        ends it with :func:`kill_group`.  Raises OSError when the program cannot be started.  Its
        pid stays in :func:`own_children` until a reaper finds it gone.
        """
        command = self._command(argv)
        sink: IO[bytes] | int = subprocess.DEVNULL
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            sink = log_file.open("wb")
        try:
            return _popen(command, subprocess.DEVNULL, sink, subprocess.STDOUT, self._env(env))
        finally:
            if not isinstance(sink, int):
                sink.close()


def kill_group(pgid: int) -> None:
    """SIGCONT then SIGKILL a whole process group (the CONT so that nothing is left stopped)."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _tail(file: IO[bytes]) -> str:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(max(0, size - _OUTPUT_LIMIT))
    # a non-UTF-8 byte (a vendor string) must not lose the run
    return file.read().decode(errors="replace")
