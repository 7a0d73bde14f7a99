"""Who uses the console: the login form's sessions, the operator's name, the CSRF tokens.

The hook's authentication (:class:`gardien.web.AuthMiddleware`) stays the only gate: a request
reaches the console only when the web config's basic auth, the bearer token or a session of
:class:`Sessions` (an authenticator of that middleware, valid under ``/ui/`` only, so the cookie
never opens the API) accepts it.  The login form and its stylesheet are the only console paths
it lets through unauthenticated (:data:`UNAUTHENTICATED_PATHS`).

A session is a random id kept in this hook's memory, with its expiry: a restart of the hook ends
every session (log in again), and logging out ends it at once.  Every POST but the login carries
a CSRF token, a keyed digest of who is asking (the session, the basic-auth user or the bearer
token): a browser sends the cookie or its basic-auth password to a forged form by itself, never
the token of the page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.http import parse_cookie

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Request

COOKIE = "gardien_console"
PREFIX = "/ui/"
LIFETIME = 8 * 3600.0
"""Seconds a session lasts from its login (a shift)."""
MAX_SESSIONS = 256
"""Sessions kept at most; a login beyond them ends the oldest."""
LOGIN_PATH = "/ui/login"
UNAUTHENTICATED_PATHS = frozenset({LOGIN_PATH, "/ui/static/console.css", "/ui/static/console.js"})
REFUSAL_PAGE = (
    b"<!doctype html><title>gardien: log in</title>"
    b'<p>Not logged in. <a href="/ui/login">Log in to the gardien console</a>.</p>\n'
)
"""The body of the hook's 401 under ``/ui``: a browser that asks no password shows it."""


@dataclass(frozen=True)
class Operator:
    """Who acts: ``name`` goes to the journal and the log, ``key`` is what the CSRF token is
    derived from (a session's id, the basic-auth user, the bearer token)."""

    name: str
    key: str
    session: str | None = None


class Sessions:
    """The console's sessions, an :class:`gardien.web.Authenticator` for ``/ui/`` paths.

    ``token``: the hook's bearer token, the login form's password (None: no login form, basic
    auth only); ``secure``: the cookie is sent over TLS only (the hook serves TLS); ``open_access``:
    no authentication is configured at all (the console, as the API, is open).
    """

    challenge = f'Cookie realm="gardien console" login="{LOGIN_PATH}"'

    def __init__(
        self,
        token: str | None,
        *,
        secure: bool = False,
        open_access: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token.encode() if token else None
        self.secure = secure
        self.open_access = open_access
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def login_form(self) -> bool:
        return self._token is not None

    def login(self, offered: str) -> str | None:
        """A new session's id when ``offered`` is the token, else None."""
        if self._token is None or not hmac.compare_digest(offered.strip().encode(), self._token):
            return None
        session = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expiry = {s: e for s, e in self._expiry.items() if e > now}
            while len(self._expiry) >= MAX_SESSIONS:
                del self._expiry[min(self._expiry, key=self._expiry.__getitem__)]
            self._expiry[session] = now + LIFETIME
        return session

    def logout(self, session: str) -> None:
        with self._lock:
            self._expiry.pop(session, None)

    def valid(self, session: str | None) -> bool:
        if not session:
            return False
        with self._lock:
            expiry = self._expiry.get(session)
        return expiry is not None and expiry > self._clock()

    def __call__(self, environ: WSGIEnvironment) -> bool:
        """The middleware's question: a console path with a live session's cookie."""
        if not str(environ.get("PATH_INFO", "")).startswith(PREFIX):
            return False
        return self.valid(parse_cookie(str(environ.get("HTTP_COOKIE", ""))).get(COOKIE))

    def operator(self, request: Request) -> Operator | None:
        """Who sent ``request``, which the hook's middleware let through; None when nothing
        says who (then the console refuses it as well)."""
        session = request.cookies.get(COOKIE)
        if self.valid(session):
            return Operator("token", f"session:{session}", session)
        auth = request.authorization
        if auth is not None and auth.type == "basic" and auth.username:
            return Operator(auth.username, f"basic:{auth.username}")
        if (
            auth is not None
            and auth.type == "bearer"
            and self._token is not None
            and hmac.compare_digest((auth.token or "").encode(), self._token)
        ):
            return Operator("token", "bearer")
        return Operator("anonymous", "open") if self.open_access else None

    def csrf(self, operator: Operator) -> str:
        return hmac.new(self._key, operator.key.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, operator: Operator, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered, self.csrf(operator))
