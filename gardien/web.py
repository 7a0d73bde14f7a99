"""HTTP serving shared by the exporter and the hook: web config, authentication, TLS, cheroot.

``--web.config.file`` takes the file format of the Prometheus exporter-toolkit, so operators reuse
what they already write for node_exporter::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                      # optional, with client_auth_type
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12
    http_server_config:
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      prometheus: $2b$12$...                      # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':')

Relative paths are relative to the web config file.  Every problem is reported at start, before
the server listens.  Authentication is a WSGI middleware taking a list of authenticators; a request
passes when any of them accepts it (Basic and Bearer both use the ``Authorization`` header, so one
request carries only one of them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import ssl
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import bcrypt
import yaml
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from gardien.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

DEFAULT_UNAUTHENTICATED_PATHS = frozenset({"/-/healthy"})

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
}
_HTTP_KEYS = {"headers", "http2"}


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None

    def context(self) -> ssl.SSLContext:
        """A server-side TLS context; raises ``ssl.SSLError``/``OSError`` on unusable files."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        if self.max_version is not None:
            context.maximum_version = self.max_version
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
        context.verify_mode = self.client_auth
        return context


@dataclass(frozen=True)
class WebConfig:
    """The parsed ``--web.config.file``; the empty default serves plain HTTP without auth."""

    tls: TlsConfig | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def load_web_config(path: Path | str | None) -> WebConfig:
    """Read and check a web config file; raise :class:`ConfigError` listing every problem."""
    if path is None:
        return WebConfig()
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(file), [f"{file}: cannot read web config: {exc}"]) from exc
    problems: list[str] = []
    config = _parse_web_config(data if data is not None else {}, file.resolve().parent, problems)
    if config is not None and config.tls is not None:
        try:
            config.tls.context()
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"tls_server_config: cannot load the certificate or key: {exc}")
    if problems:
        raise ConfigError(str(file), [f"{file}: {p}" for p in problems])
    assert config is not None
    return config


def _parse_web_config(data: Any, base: Path, problems: list[str]) -> WebConfig | None:
    if not isinstance(data, dict):
        problems.append("the web config must be a YAML mapping")
        return None
    for key in sorted(set(data) - {"tls_server_config", "http_server_config", "basic_auth_users"}):
        problems.append(f"unknown key {key!r}")
    tls = _parse_tls(data.get("tls_server_config"), base, problems)
    users = _parse_users(data.get("basic_auth_users"), problems)
    headers = _parse_http(data.get("http_server_config"), problems)
    return WebConfig(tls, MappingProxyType(users), MappingProxyType(headers))


def _file(value: Any, base: Path, key: str, problems: list[str]) -> Path | None:
    if not isinstance(value, str) or not value:
        problems.append(f"tls_server_config.{key}: must be a file path")
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        problems.append(f"tls_server_config.{key}: file {path} does not exist")
        return None
    return path


def _parse_tls(data: Any, base: Path, problems: list[str]) -> TlsConfig | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append("tls_server_config: must be a mapping")
        return None
    for key in sorted(set(data) - _TLS_KEYS):
        problems.append(f"tls_server_config.{key}: not supported (supported: {sorted(_TLS_KEYS)})")
    for key in ("cert_file", "key_file"):
        if key not in data:
            problems.append(f"tls_server_config.{key}: required")
    cert = (
        _file(data.get("cert_file"), base, "cert_file", problems) if "cert_file" in data else None
    )
    key_file = (
        _file(data.get("key_file"), base, "key_file", problems) if "key_file" in data else None
    )
    ca = (
        _file(data["client_ca_file"], base, "client_ca_file", problems)
        if "client_ca_file" in data
        else None
    )
    auth_name = data.get("client_auth_type", "NoClientCert")
    client_auth = _CLIENT_AUTH.get(auth_name) if isinstance(auth_name, str) else None
    if client_auth is None:
        problems.append(
            f"tls_server_config.client_auth_type: {auth_name!r} is not supported; "
            f"use one of {sorted(_CLIENT_AUTH)}"
        )
    elif client_auth != ssl.CERT_NONE and "client_ca_file" not in data:
        problems.append(f"tls_server_config: client_auth_type {auth_name} needs client_ca_file")
    elif client_auth == ssl.CERT_NONE and "client_ca_file" in data:
        problems.append(
            "tls_server_config: client_ca_file is set but client_auth_type does not verify "
            "client certificates (use RequireAndVerifyClientCert or VerifyClientCertIfGiven)"
        )
    versions = {}
    for key in ("min_version", "max_version"):
        if key in data:
            versions[key] = _TLS_VERSIONS.get(data[key])
            if versions[key] is None:
                problems.append(
                    f"tls_server_config.{key}: {data[key]!r} is not one of {sorted(_TLS_VERSIONS)}"
                )
    if cert is None or key_file is None or client_auth is None or None in versions.values():
        return None
    return TlsConfig(
        cert_file=cert,
        key_file=key_file,
        client_ca_file=ca,
        client_auth=client_auth,
        min_version=versions.get("min_version") or ssl.TLSVersion.TLSv1_2,
        max_version=versions.get("max_version"),
    )


def _parse_users(data: Any, problems: list[str]) -> dict[str, bytes]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append("basic_auth_users: must be a mapping of user name to bcrypt hash")
        return {}
    users = {}
    for user, hashed in data.items():
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"basic_auth_users: invalid user name {user!r}")
        elif not isinstance(hashed, str) or not _is_bcrypt(hashed):
            # never echo the value: a plain password written by mistake must not reach the logs
            problems.append(f"basic_auth_users.{user}: not a bcrypt hash ($2a$, $2b$ or $2y$)")
        else:
            users[user] = hashed.encode()
    return users


def _is_bcrypt(value: str) -> bool:
    if not value.startswith(("$2a$", "$2b$", "$2y$")) or len(value) != 60:
        return False
    try:
        bcrypt.checkpw(b"", value.encode())
    except ValueError:
        return False
    return True


def _parse_http(data: Any, problems: list[str]) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append("http_server_config: must be a mapping")
        return {}
    for key in sorted(set(data) - _HTTP_KEYS):
        problems.append(
            f"http_server_config.{key}: not supported (supported: {sorted(_HTTP_KEYS)})"
        )
    if data.get("http2", False) not in (True, False):
        problems.append("http_server_config.http2: must be true or false (HTTP/1.1 is served)")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        problems.append("http_server_config.headers: must map header names to strings")
        return {}
    return dict(headers)


class Authenticator(Protocol):
    """Accepts or refuses one request; ``challenge`` is its ``WWW-Authenticate`` value."""

    challenge: str

    def __call__(self, environ: WSGIEnvironment) -> bool: ...


def _authorization(environ: WSGIEnvironment, scheme: str) -> str | None:
    value = str(environ.get("HTTP_AUTHORIZATION", ""))
    name, _, credentials = value.partition(" ")
    return credentials.strip() if name.lower() == scheme.lower() else None


class BasicAuth:
    """HTTP Basic against bcrypt hashes.

    bcrypt is slow by design (tens of ms per check), too slow to pay on every scrape, so verified
    credentials are remembered as a keyed digest (never the password itself), as exporter-toolkit
    does.  Unknown users still cost one bcrypt check, so timing does not reveal user names.
    """

    challenge = 'Basic realm="gardien"'
    _CACHE_SIZE = 64

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=10))

    def __call__(self, environ: WSGIEnvironment) -> bool:
        encoded = _authorization(environ, "Basic")
        if encoded is None:
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = self._users.get(user)
        digest = hmac.new(
            self._key, f"{user}\0{password}\0".encode() + (hashed or b""), hashlib.sha256
        ).digest()
        with self._lock:
            if hashed is not None and digest in self._verified:
                return True
        ok = bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        if ok:
            with self._lock:
                if len(self._verified) >= self._CACHE_SIZE:
                    self._verified.clear()
                self._verified.add(digest)
        return ok


class BearerToken:
    """``Authorization: Bearer <token>`` compared in constant time."""

    challenge = "Bearer"

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def __call__(self, environ: WSGIEnvironment) -> bool:
        offered = _authorization(environ, "Bearer")
        return offered is not None and hmac.compare_digest(offered.encode(), self._token)


class AuthMiddleware:
    """Let a request through when it needs no auth or any authenticator accepts it; else 401."""

    def __init__(
        self,
        app: WSGIApplication,
        authenticators: Sequence[Authenticator],
        unauthenticated_paths: Iterable[str] = DEFAULT_UNAUTHENTICATED_PATHS,
    ) -> None:
        self.app = app
        self.authenticators = tuple(authenticators)
        self.unauthenticated_paths = frozenset(unauthenticated_paths)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            not self.authenticators
            or environ.get("PATH_INFO", "/") in self.unauthenticated_paths
            or any(check(environ) for check in self.authenticators)
        ):
            return self.app(environ, start_response)
        log.info(
            "refused unauthenticated request %s %s from %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            environ.get("REMOTE_ADDR"),
        )
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        headers += [("WWW-Authenticate", check.challenge) for check in self.authenticators]
        start_response("401 Unauthorized", headers)
        return [b"Unauthorized\n"]


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
