"""Who may call: HTTP Basic against the web config's bcrypt hashes, a bearer token, and the WSGI
middleware that asks them.

A request passes when any authenticator accepts it (Basic and Bearer both use the
``Authorization`` header, so one request carries only one of them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import bcrypt

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

DEFAULT_UNAUTHENTICATED_PATHS = frozenset({"/-/healthy"})


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
    """Let a request through when it needs no auth or any authenticator accepts it; else 401.

    ``refusal_pages``: the HTML body of the 401 for paths under a prefix (a browser shows it
    when it asks no password, or the user cancels: the web console's link to its login form).
    """

    def __init__(
        self,
        app: WSGIApplication,
        authenticators: Sequence[Authenticator],
        unauthenticated_paths: Iterable[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        refusal_pages: Mapping[str, bytes] | None = None,
    ) -> None:
        self.app = app
        self.authenticators = tuple(authenticators)
        self.unauthenticated_paths = frozenset(unauthenticated_paths)
        self.refusal_pages = dict(refusal_pages or {})

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
        path = str(environ.get("PATH_INFO", "/"))
        page = next((b for p, b in self.refusal_pages.items() if path.startswith(p)), None)
        kind = "text/html" if page is not None else "text/plain"
        headers = [("Content-Type", f"{kind}; charset=utf-8")]
        headers += [("WWW-Authenticate", check.challenge) for check in self.authenticators]
        start_response("401 Unauthorized", headers)
        return [page if page is not None else b"Unauthorized\n"]
