"""Can this node reach its targets: one round of ICMP echoes, and the link state of an interface.

A round sends one echo request to every target from the calling thread, through ICMP sockets of
this process (``icmplib``'s, one per address family in the round, in the network namespace of the
calling thread), then waits for every answer at once in one ``poll`` loop that ends when each target
has answered or the round's time is up.  No ``ping`` child per target (issue 14: those forks were
most of the network collector's cost) and no thread per target either (a thread each, started at
every scrape, cost the exporter more CPU than the echoes themselves: docs/benchmarks.md "Idle cost
per probe").  A raw socket when allowed (the daemons run as root, or with ``CAP_NET_RAW`` as the
exporter's unit gives it); without that privilege the kernel's ping sockets
(``net.ipv4.ping_group_range`` must then include the daemon's group).  A raw socket receives every
ICMP message of the namespace, other processes' echoes included, so a reply counts only when its
identifier (one per round) and sequence number (the target's place in the round) are those of a
request of this round; a ping socket gets only the replies to its own identifier, which the kernel
chooses.  The exporter's network collector and the hook's network verdict both ping here.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import random
import select
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import icmplib
from icmplib.sockets import ICMPSocket

from gardien.polling import Deadline

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Sent = dict[tuple[int, int, int], tuple[int, icmplib.ICMPRequest]]
"""The requests of a round by (family, identifier, sequence): the target's index, the request."""


@dataclass(frozen=True)
class EchoResult:
    up: bool
    rtt: float
    """Round trip in seconds (0 when no answer)."""


NO_ANSWER = EchoResult(False, 0.0)

_SOCKETS = {4: icmplib.ICMPv4Socket, 6: icmplib.ICMPv6Socket}
_ECHO_REPLY = {4: 0, 6: 129}
_UNANSWERABLE = {4: {3, 11}, 6: {1, 3}}
"""ICMP errors that end an echo unanswered: destination unreachable, time exceeded (RFC 792,
RFC 4443).  Other messages a raw socket sees (echo requests, redirects...) are not answers."""


class Pinger:
    """Rounds of ICMP echoes on sockets of this process, raw when allowed, else ping sockets."""

    def __init__(self) -> None:
        self._privileged = True
        """Raw sockets; cleared once the kernel refused one (no CAP_NET_RAW)."""
        self._identifiers = itertools.count(random.randrange(1 << 16))
        """One identifier per round (icmplib keeps its low 16 bits), from a random start so that
        the exporter's and the hook's rounds in one namespace do not share theirs."""
        self._unsent: dict[IPAddress, str] = {}
        """Targets whose last echo could not be sent, and why: logged when that starts or changes
        (a link down would otherwise log every target at every scrape)."""

    def round(
        self, targets: Sequence[IPAddress], timeout: float, deadline: Deadline | None = None
    ) -> list[EchoResult]:
        """One echo to every target, in target order, each answer awaited at most ``timeout``
        seconds (and not past ``deadline``).  A target whose echo could not be sent (no socket,
        no route) is logged and not up; nothing raises."""
        wait = Deadline(timeout)
        if deadline is not None and deadline.end < wait.end:
            wait = deadline
        try:
            return self._round(targets, wait)
        except Exception:  # a bug must not fail the scrape or the verdict
            log.exception("ICMP echo round to %s failed", ", ".join(map(str, targets)))
            return [NO_ANSWER] * len(targets)

    def _round(self, targets: Sequence[IPAddress], wait: Deadline) -> list[EchoResult]:
        results = [NO_ANSWER] * len(targets)
        identifier = next(self._identifiers)
        sockets: dict[int, ICMPSocket | None] = {}  # by family, None when none could be opened
        sent: Sent = {}
        try:
            for index, target in enumerate(targets):
                if target.version not in sockets:
                    sockets[target.version] = self._socket(target.version)
                sock = sockets[target.version]
                if sock is None:
                    continue
                request = icmplib.ICMPRequest(str(target), identifier, index)
                if self._send(sock, request, target):  # a ping socket's identifier is the kernel's
                    sent[(target.version, request.id, request.sequence)] = (index, request)
            opened = {v: s for v, s in sockets.items() if s is not None}
            self._await(opened, sent, results, wait)
        finally:
            for sock in sockets.values():
                if sock is not None:
                    sock.close()
        return results

    def _socket(self, version: int) -> ICMPSocket | None:
        """A raw socket of ``version`` if allowed, else a ping socket; None (logged) if neither."""
        kind = _SOCKETS[version]
        try:
            if self._privileged:
                try:
                    return kind(privileged=True)
                except icmplib.SocketPermissionError:
                    log.info("no raw ICMP socket allowed: using the kernel's ping sockets")
                    self._privileged = False
            return kind(privileged=False)
        except icmplib.ICMPLibError as exc:
            log.warning("cannot open an ICMP socket for IPv%d: %s", version, exc)
            return None

    def _send(self, sock: ICMPSocket, request: icmplib.ICMPRequest, target: IPAddress) -> bool:
        try:
            sock.send(request)
        except icmplib.ICMPLibError as exc:  # no route (a link down), a broadcast address...
            reason = str(exc) or type(exc).__name__
            if self._unsent.get(target) != reason:
                log.warning("cannot send an ICMP echo to %s: %s", target, reason)
            self._unsent[target] = reason
            return False
        if self._unsent.pop(target, None) is not None:
            log.info("ICMP echoes to %s are sent again", target)
        return True

    @staticmethod
    def _await(
        sockets: dict[int, ICMPSocket], sent: Sent, results: list[EchoResult], wait: Deadline
    ) -> None:
        """Read answers into ``results`` until every request in ``sent`` has one (each is removed
        as it is answered) or ``wait`` passes: one ``poll`` over every socket, one message read
        per socket ready, so the loop ends at ``wait`` whatever arrives."""
        poller = select.poll()
        by_fd = {}
        for family, sock in sockets.items():
            poller.register(sock.sock, select.POLLIN)
            by_fd[sock.sock.fileno()] = family, sock
        while sent and by_fd and not wait.passed:
            for fd, _ in poller.poll(wait.left() * 1000):
                family, sock = by_fd[fd]
                try:
                    reply = sock.receive(None, wait.left(0.001))
                except icmplib.TimeoutExceeded:  # a message too short to parse, nothing after it
                    continue
                except icmplib.ICMPLibError as exc:  # a socket error: no answer on it any more
                    log.warning("cannot read ICMP answers: %s", exc)
                    poller.unregister(fd)
                    del by_fd[fd]
                    continue
                if reply.type != _ECHO_REPLY[family] and reply.type not in _UNANSWERABLE[family]:
                    continue
                match = sent.pop((family, reply.id, reply.sequence), None)
                if match is None:  # another request's answer (another round, another process)
                    continue
                index, request = match
                if reply.type == _ECHO_REPLY[family]:
                    results[index] = EchoResult(True, max(reply.time - request.time, 0.0))


def link_up(interface: str, sys_root: Path = Path("/sys")) -> bool:
    """Operational state up (or ``unknown``, for drivers that do not report it) with carrier."""
    base = sys_root / "class" / "net" / interface
    try:
        operstate = (base / "operstate").read_text().strip()
        carrier = (base / "carrier").read_text().strip()
    except OSError:  # no such interface, or carrier unreadable because it is down (EINVAL)
        return False
    return operstate in ("up", "unknown") and carrier == "1"
