"""Can this node reach a target: one ICMP echo, and the link state of an interface.

Each echo is one request through the ``ping`` program of iputils under a hard timeout that kills
its process group (:class:`~gardien.command_runner.CommandRunner`).  Why ``ping`` rather than ICMP
sockets in-process: it needs no privilege of the caller (ping holds ``cap_net_raw`` itself, or uses
the kernel's ping sockets), no new dependency, and a child process can always be killed at the
deadline; one short-lived process per target per round is cheap at the handful of targets a
cluster pings.  The exporter's network collector and the hook's network verdict both ping here.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gardien.command_runner import CommandRunner
from gardien.polling import Deadline

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

KILL_MARGIN = 0.5
"""ping is killed this long after its own ``-W`` timeout when it has not exited by itself."""
_RTT = re.compile(r"time[=<]([\d.]+) ms")


@dataclass(frozen=True)
class EchoResult:
    up: bool
    rtt: float
    """Round trip in seconds (0 when no answer)."""


NO_ANSWER = EchoResult(False, 0.0)


class Pinger:
    """ICMP echo through ``ping`` run by ``runner`` (a test node's prefix runs it there)."""

    def __init__(self, runner: CommandRunner | None = None, ping: str = "ping") -> None:
        self.runner = runner or CommandRunner()
        self.ping = ping

    def echo(self, target: IPAddress, timeout: float) -> EchoResult:
        """One ICMP echo to ``target``, waiting for the answer at most ``timeout`` seconds."""
        wait = max(timeout - KILL_MARGIN, 0.1)
        argv = [self.ping, "-n", "-c", "1", "-W", f"{wait:.3f}", str(target)]
        result = self.runner.run(argv, timeout)
        if result.returncode != 0:
            if result.error:
                log.warning("%s", result.error)
            return NO_ANSWER
        match = _RTT.search(result.stdout)
        if match is None:
            log.warning("no round trip time in ping output: %r", result.stdout)
            return NO_ANSWER
        return EchoResult(True, float(match.group(1)) / 1000)


def at_once(
    echo: Callable[[IPAddress, float], T],
    targets: Sequence[IPAddress],
    timeout: float,
    deadline: Deadline | None = None,
) -> list[T | None]:
    """``echo(target, timeout)`` for every target at once (one thread each), in target order.

    None for a target whose echo raised (logged: a thread must not die silently) or, with a
    ``deadline``, had not answered when it passed (the caller must answer by then; the runner
    kills a ping at its own timeout anyway).  Without one, every echo is waited for.
    """
    results: dict[int, T] = {}

    def run(index: int) -> None:
        try:
            results[index] = echo(targets[index], timeout)
        except Exception:
            log.exception("echo to %s failed", targets[index])

    threads = [
        threading.Thread(target=run, args=(i,), name=f"ping {t}", daemon=True)
        for i, t in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(None if deadline is None else deadline.left())
    return [results.get(i) for i in range(len(targets))]


def link_up(interface: str, sys_root: Path = Path("/sys")) -> bool:
    """Operational state up (or ``unknown``, for drivers that do not report it) with carrier."""
    base = sys_root / "class" / "net" / interface
    try:
        operstate = (base / "operstate").read_text().strip()
        carrier = (base / "carrier").read_text().strip()
    except OSError:  # no such interface, or carrier unreadable because it is down (EINVAL)
        return False
    return operstate in ("up", "unknown") and carrier == "1"
