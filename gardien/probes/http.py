"""HTTP probe: one request, its status and what the body says (Apache, Tomcat, any web app).

requests' ``timeout`` bounds each socket operation, not the request: a server that accepts the
connection and then trickles bytes would hold a probe for many timeouts.  The probe gives the
connection plus the headers one combined budget (urllib3 ``Timeout(total=...)``), streams the body
and, before each read, shrinks the socket timeout to what is left of the deadline.

Each probe keeps one ``requests.Session`` across runs (building one is a fifth of a probe's CPU),
but nothing else: every run opens its own connection (so the connect and the server's accept are
checked every time) and the session's cookie jar accepts nothing, so no run sees what an earlier
one was answered.  ``Connection: close`` alone does not do it: a server that does not answer with
``Connection: close`` itself leaves the client its connection, and urllib3 would hand it to the
next run, which fails if the server closes it meanwhile.  The session's pools therefore close
every connection given back to them.
"""

from __future__ import annotations

import re
import ssl
import time
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING

import requests
import urllib3
from pydantic import Field
from requests.adapters import HTTPAdapter
from urllib3 import Timeout
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, InsecureRequestWarning, ReadTimeoutError

from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import Regex

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

_CHUNK = 16384


class HttpParams(ProbeParams):
    url: str = Field(pattern=r"^https?://")
    method: str = Field("GET", pattern=r"^[A-Z]+$")
    expect_status: tuple[int, ...] = Field((200,), min_length=1)
    """The answer's status must be one of these."""
    expect_regex: Regex | None = None
    """The body must match (``re.search``)."""
    fail_regex: Regex | None = None
    """The body must not match (an error page served with status 200)."""
    host: str | None = None
    """Host header to send (a name-based virtual host reached by address)."""
    verify_tls: bool = True
    follow_redirects: bool = False
    max_body_bytes: int = Field(1_048_576, gt=0)
    """Only this much of the body is read and matched."""


class _DeadlineError(Exception):
    """The probe's time ran out while reading the body."""


@register
class HttpProbe(Probe[HttpParams]):
    kind = "http"
    params_model = HttpParams
    values = {  # noqa: RUF012 - ClassVar of the base
        "status_code": "HTTP status code of the answer (0 when none arrived).",
        "content_failed": "1 when the body did not match expect_regex or matched fail_regex.",
    }

    def __init__(self, params: HttpParams, session: requests.Session | None = None) -> None:
        super().__init__(params)
        self._session = session or _direct_session()
        headers = {"Connection": "close", **({"Host": params.host} if params.host else {})}
        # prepared once: preparing (URL parsing, header merging) was a third of a run's CPU;
        # each run sends a copy, which a redirect may change
        self._request = self._session.prepare_request(
            requests.Request(params.method, params.url, headers=headers)
        )
        self._expect = re.compile(params.expect_regex) if params.expect_regex else None
        self._fail = re.compile(params.fail_regex) if params.fail_regex else None
        if not params.verify_tls:
            # asked for in the config: no warning per scrape (global and idempotent, unlike a
            # catch_warnings() block, which is not thread-safe)
            urllib3.disable_warnings(InsecureRequestWarning)

    def check(self, timeout: float) -> ProbeResult:
        p = self.params
        deadline = time.monotonic() + timeout
        try:
            response = self._session.send(
                self._request.copy(),
                timeout=Timeout(total=timeout),  # type: ignore[arg-type]  # requests takes it
                verify=p.verify_tls,
                allow_redirects=p.follow_redirects,
                stream=True,
            )
            with response:
                status = response.status_code
                need_body = status in p.expect_status and (self._expect or self._fail)
                body = self._read_body(response, deadline) if need_body else ""
        except _DeadlineError:
            return ProbeResult.failure(
                f"timeout: body not read within {timeout:g} s", status_code=status, content_failed=0
            )
        except requests.Timeout:
            return ProbeResult.failure(
                f"timeout: no answer from {p.url} within {timeout:g} s",
                status_code=0,
                content_failed=0,
            )
        except (requests.RequestException, HTTPError) as exc:
            return ProbeResult.failure(f"{p.url}: {_short(exc)}", status_code=0, content_failed=0)
        return self._judge(status, body)

    def _read_body(self, response: requests.Response, deadline: float) -> str:
        """Up to ``max_body_bytes`` of the body, read before ``deadline``."""
        chunks: list[bytes] = []
        size = 0
        while size < self.params.max_body_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DeadlineError
            # none once the whole body is in: urllib3 then gives the connection back (closed)
            sock = getattr(getattr(response.raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            try:
                # read1: at most one read from the socket, so the deadline is checked between
                chunk = response.raw.read1(
                    min(_CHUNK, self.params.max_body_bytes - size), decode_content=True
                )
            except ReadTimeoutError:
                raise _DeadlineError from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")

    def _judge(self, status: int, body: str) -> ProbeResult:
        p = self.params
        if status not in p.expect_status:
            wanted = ", ".join(str(s) for s in p.expect_status)
            return ProbeResult.failure(
                f"status {status}, expected {wanted}", status_code=status, content_failed=0
            )
        if self._expect and not self._expect.search(body):
            return ProbeResult.failure(
                f"body does not match {p.expect_regex!r}", status_code=status, content_failed=1
            )
        if self._fail and (found := self._fail.search(body)):
            return ProbeResult.failure(
                f"body matches fail_regex: {found.group(0)[:80]!r}",
                status_code=status,
                content_failed=1,
            )
        return ProbeResult.success(status_code=status, content_failed=0)


class _OneUseHTTPConnectionPool(HTTPConnectionPool):
    """Closes each connection given back instead of keeping it for the next request."""

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        if conn is not None:
            conn.close()
        super()._put_conn(None)  # the free slot, so the pool still creates connections


class _OneUseHTTPSConnectionPool(HTTPSConnectionPool):
    """Closes each connection given back instead of keeping it for the next request."""

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        if conn is not None:
            conn.close()
        super()._put_conn(None)


class _NewConnectionAdapter(HTTPAdapter):
    """Every request (a redirect's too) on a connection of its own."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = {
            "http": _OneUseHTTPConnectionPool,
            "https": _OneUseHTTPSConnectionPool,
        }


def _direct_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: probe the service itself
    adapter = _NewConnectionAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # no cookie kept from one run to the next (a redirect within one run still carries them)
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def _short(exc: BaseException) -> str:
    """The innermost error of a requests/urllib3 chain, in a few words ("Connection refused")."""
    inner = exc
    for _ in range(10):
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            nested: BaseException | None = reason
        elif inner.args and isinstance(inner.args[0], BaseException):
            nested = inner.args[0]
        else:
            nested = inner.__cause__
        if nested is None:
            break
        inner = nested
    if isinstance(inner, ssl.SSLCertVerificationError):
        return f"TLS certificate verify failed: {inner.verify_message}"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    text = str(inner).splitlines()[0][:200] if str(inner) else ""
    return f"{type(inner).__name__}: {text}"
