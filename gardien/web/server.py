"""The web server of the exporter and the hook, with a web config applied: TLS, the
authenticators of :mod:`gardien.web.auth`, the response headers, the listen address.  Connections
are served by the event-loop front end of :mod:`gardien.web.frontend` (why: its docstring), within
the limits of :mod:`gardien.web.limits`; the WSGI app runs in a bounded pool of threads."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gardien.config import ClusterConfig
from gardien.errors import ConfigError
from gardien.node.addresses import read_addresses
from gardien.web.auth import DEFAULT_UNAUTHENTICATED_PATHS, Authenticator, AuthMiddleware, BasicAuth
from gardien.web.config import WebConfig
from gardien.web.frontend import FrontEnd
from gardien.web.limits import (
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CLIENT,
    ConnectionBook,
    ServingMetrics,
    connection_limit,
    raise_open_file_limit,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)


class HeadersMiddleware:
    """Add the response headers of ``http_server_config.headers``."""

    def __init__(self, app: WSGIApplication, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = list(headers.items())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + self.headers, exc_info)

        return self.app(environ, start)


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (every address) -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(address, [f"invalid listen address {address!r}: use HOST:PORT or :PORT"])
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ConfigError(address, [f"invalid listen address {address!r}: {exc}"]) from exc
    return host or _any_address(), int(port_text)


def _any_address() -> str:
    """``::`` (dual stack) when the host has IPv6, else ``0.0.0.0``."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return "0.0.0.0"  # noqa: S104 - ":PORT" means every address, as in Prometheus' flags
    return "::"


def node_listen_address(config: ClusterConfig, port: int, node: str | None = None) -> str:
    """The default listen address of a daemon: the address of ``node`` (the hook's), or of the
    node whose address this host has (the exporter's), on ``port``.  The cluster network, where
    Prometheus, Alertmanager and the peer hook call, and not every interface."""
    if node is None:
        here = {str(a.ip) for found in read_addresses().values() for a in found}
        node = config.node_of_address(here)
        if node is None:
            raise ConfigError(
                str(config.source or "config"),
                ["no configured node has an address of this host; give --web.listen-address"],
            )
    address = config.nodes[node].address
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


LISTEN_BACKLOG = 128
"""Connections the kernel queues until the event loop accepts them (it accepts them at once; a
request then waits in the loop, never here).  cheroot's default of 5 dropped the connection
attempts of a burst: each one was retried after TCP's initial 1 s timeout."""

DEFAULT_THREADS = 8
"""Requests run at once.  A scrape or a webhook delivery is answered in milliseconds; the hook,
whose acquire and release requests last as long as a group's start, asks for more."""


class WebServer:
    """One listening server with the web config applied.

    :meth:`start` binds (so a busy port fails at once, in the caller) and serves from a
    background thread; :meth:`stop` closes the socket and every connection.  :attr:`metrics` is
    the collector of its refused connections, for the daemon's ``/metrics``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        listen_address: str,
        web_config: WebConfig,
        *,
        unauthenticated_paths: Iterable[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        authenticators: Sequence[Authenticator] = (),
        refusal_pages: Mapping[str, bytes] | None = None,
        threads: int = DEFAULT_THREADS,
        server_name: str = "gardien",
    ) -> None:
        checks: list[Authenticator] = list(authenticators)
        if web_config.basic_auth_users:
            checks.insert(0, BasicAuth(web_config.basic_auth_users))
        wrapped: WSGIApplication = AuthMiddleware(app, checks, unauthenticated_paths, refusal_pages)
        if web_config.headers:
            wrapped = HeadersMiddleware(wrapped, web_config.headers)
        self.listen_address = listen_address
        self._bind = parse_listen_address(listen_address)
        self._port = self._bind[1]
        self._front: FrontEnd | None = None
        self._app = wrapped
        self._tls = web_config.tls.context() if web_config.tls is not None else None
        self._threads = threads
        self._server_name = server_name
        self.scheme = "https" if web_config.tls else "http"
        self._book = ConnectionBook(MAX_CONNECTIONS_PER_CLIENT, MAX_CONNECTIONS)
        self.metrics = ServingMetrics(self._book)

    @property
    def port(self) -> int:
        """The port listened on (the one the kernel chose for port 0, once started)."""
        return self._port

    def start(self) -> None:
        self._book.limit = connection_limit(raise_open_file_limit())
        sock = _listen(*self._bind)
        self._port = int(sock.getsockname()[1])
        self._front = FrontEnd(
            self._app,
            sock,
            self._book,
            self.metrics,
            tls=self._tls,
            threads=self._threads,
            server_name=self._server_name,
        )
        self._front.start()
        log.info("listening on %s (%s)", self.listen_address, self.scheme)

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``: both IPv6 and IPv4 for ``::`` (every address)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return socket.create_server(
        (host, port),
        family=family,
        backlog=LISTEN_BACKLOG,
        dualstack_ipv6=host == "::" and socket.has_dualstack_ipv6(),
    )
