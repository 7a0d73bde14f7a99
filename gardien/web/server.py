"""The cheroot WSGI server of the exporter and the hook, with a web config applied: TLS, the
authenticators of :mod:`gardien.web.auth`, the response headers, the listen address."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from gardien.errors import ConfigError
from gardien.web.auth import DEFAULT_UNAUTHENTICATED_PATHS, Authenticator, AuthMiddleware, BasicAuth
from gardien.web.config import WebConfig

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


LISTEN_BACKLOG = 128
"""Connections the kernel queues until the server accepts them.  cheroot's default of 5 drops the
connection attempts of a burst (Alertmanager's retries, a peer's status calls): each one is retried
after TCP's initial 1 s timeout."""

DEFAULT_THREADS = 8
"""Requests served at once.  A scrape or a webhook delivery is answered in milliseconds; the hook,
whose acquire and release requests last as long as a group's start, asks for more."""


class WebServer:
    """One listening cheroot WSGI server with the web config applied.

    :meth:`start` binds (so a busy port fails at once, in the caller) and serves from a
    background thread; :meth:`stop` stops it.
    """

    def __init__(
        self,
        app: WSGIApplication,
        listen_address: str,
        web_config: WebConfig,
        *,
        unauthenticated_paths: Iterable[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        authenticators: Sequence[Authenticator] = (),
        threads: int = DEFAULT_THREADS,
        server_name: str = "gardien",
    ) -> None:
        checks: list[Authenticator] = list(authenticators)
        if web_config.basic_auth_users:
            checks.insert(0, BasicAuth(web_config.basic_auth_users))
        wrapped: WSGIApplication = AuthMiddleware(app, checks, unauthenticated_paths)
        if web_config.headers:
            wrapped = HeadersMiddleware(wrapped, web_config.headers)
        self.listen_address = listen_address
        self._server = wsgi.Server(
            parse_listen_address(listen_address),
            wrapped,
            numthreads=threads,
            server_name=server_name,
            request_queue_size=LISTEN_BACKLOG,
        )
        if web_config.tls is not None:
            adapter = BuiltinSSLAdapter(str(web_config.tls.cert_file), str(web_config.tls.key_file))
            adapter.context = web_config.tls.context()
            self._server.ssl_adapter = adapter
        self.scheme = "https" if web_config.tls else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    def start(self) -> None:
        self._server.prepare()
        log.info("listening on %s (%s)", self.listen_address, self.scheme)
        self._thread = threading.Thread(target=self._server.serve, name="web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
