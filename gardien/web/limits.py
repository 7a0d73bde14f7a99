"""The stated limits of the front end (:mod:`gardien.web.frontend`), the book of open connections
that enforces the connection limits, and the metrics that count what they refused.

Every limit exists so that no client, slow or flooding, can take what the others need: a
connection costs no request thread until its request is complete, and what it costs until then
(a socket, a few kilobytes) is bounded per client and in total.  docs/config.md ("Serving") lists
them for operators.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import resource
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 5.0
"""Seconds within which a request's line and headers must be complete: from the connection's
opening (the TLS handshake included) or, on a kept-alive connection, from the first byte of the
next request.  Every client of gardien sends its request at once; a slower one is an attacker."""

IDLE_TIMEOUT = 60.0
"""Seconds a kept-alive connection may wait for its next request before it is closed (longer than
Prometheus' scrape interval, so that scrapes reuse their connection)."""

BODY_TIMEOUT = 10.0
"""Seconds within which a request's body must be complete, from the end of its headers."""

SEND_TIMEOUT = 30.0
"""Seconds a client has to read a response; a connection that reads nothing longer is closed.  No
request thread waits for it: the response waits in the event loop's buffer."""

MAX_HEADER_BYTES = 16 * 1024
"""Request line and headers together (h11's default); more is answered 431 and closed."""

MAX_BODY_BYTES = 2 * 1024 * 1024
"""A request body, chunked or not; more is answered 413 and closed without being read.  Above the
apps' own limits (the hook's webhook takes 1 MiB), so that their answers stay theirs."""

MAX_CONNECTIONS_PER_CLIENT = 64
"""Connections open at once from one client address (an IPv6 client: from its /64).  Prometheus,
Alertmanager, a peer hook or the CLI each use a few; the excess is closed at once, unread."""

MAX_CONNECTIONS = 4096
"""Connections open at once in total (lowered to fit the open-files limit); the excess is closed
at once, unread."""

OPEN_FILES_RESERVE = 256
"""File descriptors kept for everything but client connections (journal, probes, commands)."""

REASONS = (
    "per_client",
    "total",
    "tls_handshake",
    "header_timeout",
    "body_timeout",
    "send_timeout",
    "bad_request",
    "too_large",
)
"""Why a connection was refused or closed early: the values of the metric's ``reason`` label."""


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as Go's runtime does), so that a thousand
    connections do not run into the usual soft limit of 1024; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
    return soft


def connection_limit(open_files: int) -> int:
    """:data:`MAX_CONNECTIONS`, or fewer when the open-files limit would not hold them."""
    return max(16, min(MAX_CONNECTIONS, open_files - OPEN_FILES_RESERVE))


def client_key(address: str) -> str:
    """What the per-client limit counts by: the IPv4 address (also when IPv4-mapped), or the /64
    of an IPv6 address (one host gets a whole /64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ConnectionBook:
    """The connections open now, per client and in total; used from the event loop's thread only
    (the metrics read :attr:`total` from others, an atomic read)."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.limit = total
        self.total = 0
        self._by_client: collections.Counter[str] = collections.Counter()

    def admit(self, client: str) -> str | None:
        """Book a connection of ``client``; the refusal's reason when a limit is reached."""
        if self.total >= self.limit:
            return "total"
        if self._by_client[client] >= self.per_client:
            return "per_client"
        self._by_client[client] += 1
        self.total += 1
        return None

    def leave(self, client: str) -> None:
        self.total -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]


class ServingMetrics:
    """A prometheus_client collector of one server: the connections refused or closed early by
    reason (every reason always exported, 0 when none) and the connections open now.  The daemons
    register it in the registry of their ``/metrics``."""

    def __init__(self, book: ConnectionBook) -> None:
        self._book = book
        self._lock = threading.Lock()
        self._refused = dict.fromkeys(REASONS, 0)

    def refuse(self, reason: str) -> None:
        with self._lock:
            self._refused[reason] += 1

    def refused(self) -> dict[str, int]:
        with self._lock:
            return dict(self._refused)

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "gardien_http_connections_refused",
            "Connections refused or closed early, by reason: a connection limit, a timeout "
            "(TLS handshake, headers, body, a response not read), a malformed or too large "
            "request.",
            labels=["reason"],
        )
        for reason, count in self.refused().items():
            refused.add_metric([reason], count)
        yield refused
        yield GaugeMetricFamily(
            "gardien_http_connections_open",
            "Client connections open now.",
            value=self._book.total,
        )
