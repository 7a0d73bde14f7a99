"""Can this node reach a target: one ICMP echo, and the link state of an interface.

Each echo is one request sent through an ICMP socket of this process (``icmplib``), in the network
namespace of the calling process: no ``ping`` child per target per round (issue 14: those forks
were most of the network collector's cost, docs/benchmarks.md "Idle cost per probe").  A raw socket
(the daemons run as root, or with ``CAP_NET_RAW`` as the exporter's unit gives it); without that
privilege the kernel's ping sockets (``net.ipv4.ping_group_range`` must then include the daemon's
group).  The wait for the answer is a socket timeout, so an echo never outlives its ``timeout``.
The exporter's network collector and the hook's network verdict both ping here.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import icmplib

from gardien.polling import Deadline

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")


@dataclass(frozen=True)
class EchoResult:
    up: bool
    rtt: float
    """Round trip in seconds (0 when no answer)."""


NO_ANSWER = EchoResult(False, 0.0)


class Pinger:
    """ICMP echo through a socket of this process, raw when allowed, else a ping socket."""

    def __init__(self) -> None:
        self._privileged = True
        """Raw sockets; cleared once the kernel refused one (no CAP_NET_RAW)."""

    def echo(self, target: IPAddress, timeout: float) -> EchoResult:
        """One ICMP echo to ``target``, waiting for the answer at most ``timeout`` seconds."""
        try:
            host = self._ping(target, timeout)
        except icmplib.ICMPLibError as exc:  # no socket at all: neither raw nor ping sockets
            log.warning("cannot send an ICMP echo to %s: %s", target, exc)
            return NO_ANSWER
        if not host.is_alive:
            return NO_ANSWER
        return EchoResult(True, host.min_rtt / 1000)

    def _ping(self, target: IPAddress, timeout: float) -> icmplib.Host:
        if self._privileged:
            try:
                return icmplib.ping(str(target), count=1, timeout=timeout, privileged=True)
            except icmplib.SocketPermissionError:
                log.info("no raw ICMP socket allowed: using the kernel's ping sockets")
                self._privileged = False
        return icmplib.ping(str(target), count=1, timeout=timeout, privileged=False)


def at_once(
    echo: Callable[[IPAddress, float], T],
    targets: Sequence[IPAddress],
    timeout: float,
    deadline: Deadline | None = None,
) -> list[T | None]:
    """``echo(target, timeout)`` for every target at once (one thread each), in target order.

    None for a target whose echo raised (logged: a thread must not die silently) or, with a
    ``deadline``, had not answered when it passed (the caller must answer by then; every echo
    ends at its own timeout anyway).  Without one, every echo is waited for.
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
