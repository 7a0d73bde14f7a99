"""The http probe's check: one request, its status and what the body says, on urllib3.

Imported only when an http probe is built (:class:`gardien.probes.http.HttpProbe`), so that a
node's exporter without http probes, and the commands that only read the config, load no
urllib3.

urllib3 alone, without requests on top of it: requests (with chardet, charset_normalizer and idna)
cost the exporter 6 MiB of RSS (docs/benchmarks.md, "RSS of the exporter") for what the probe took
from it: redirects, which :meth:`HttpCheck._send` follows as requests did (at most 30, a 303 or 302
re-asked with GET, the cookies the chain sets sent along it), and the body's charset
(:func:`_charset`, requests' rule).  Neither proxies from the environment nor ``.netrc`` apply:
the probe checks the service itself.

A socket timeout bounds each socket operation, not the request: a server that accepts the
connection and then trickles bytes would hold a probe for many timeouts.  The probe gives the
connection plus the headers of each request what is left of one budget (urllib3
``Timeout(total=...)``), streams the body and, before each read, shrinks the socket timeout to
what is left of the deadline.

Each probe keeps one ``PoolManager`` across runs, but nothing else: every run opens its own
connection (so the connect and the server's accept are checked every time) and keeps its cookies
for its own redirects only, so no run sees what an earlier one was answered.  ``Connection:
close`` alone does not do it: a server that does not answer with ``Connection: close`` itself
leaves the client its connection, and urllib3 would hand it to the next run, which fails if the
server closes it meanwhile.  The pools therefore close every connection given back to them.
"""

from __future__ import annotations

import re
import ssl
import time
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING
from urllib.parse import urljoin
from urllib.request import Request

import certifi
import urllib3
from urllib3 import PoolManager, Timeout
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    HTTPError,
    InsecureRequestWarning,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import TimeoutError as NoAnswerError

from gardien.probes.base import ProbeResult

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse
    from urllib3._base_connection import BaseHTTPConnection

    from gardien.probes.http import HttpParams

_CHUNK = 16384
_MAX_REDIRECTS = 30  # requests' limit
_HEADERS = {"User-Agent": "gardien", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}


class _DeadlineError(Exception):
    """The probe's time ran out between two requests or while reading the body."""


class _TooManyRedirectsError(Exception):
    """The redirects went on beyond ``_MAX_REDIRECTS``."""


class HttpCheck:
    """What :class:`gardien.probes.http.HttpProbe` runs: one check of ``params``."""

    def __init__(self, params: HttpParams, pools: PoolManager | None = None) -> None:
        self.params = params
        self._pools = pools or _one_use_pools(params.verify_tls)
        self._headers = {
            **_HEADERS,
            "Connection": "close",
            **({"Host": params.host} if params.host else {}),
        }
        self._expect = re.compile(params.expect_regex) if params.expect_regex else None
        self._fail = re.compile(params.fail_regex) if params.fail_regex else None
        if not params.verify_tls:
            # asked for in the config: no warning per scrape (global and idempotent, unlike a
            # catch_warnings() block, which is not thread-safe)
            urllib3.disable_warnings(InsecureRequestWarning)

    def check(self, timeout: float) -> ProbeResult:
        p = self.params
        deadline = time.monotonic() + timeout
        status = 0
        try:
            response = self._send(deadline)
            try:
                status = response.status
                need_body = status in p.expect_status and (self._expect or self._fail)
                body = self._read_body(response, deadline) if need_body else ""
            finally:
                response.close()
                response.release_conn()
        except _DeadlineError:
            if status:
                return ProbeResult.failure(
                    f"timeout: body not read within {timeout:g} s",
                    status_code=status,
                    content_failed=0,
                )
            return self._no_answer(timeout)
        except (_TooManyRedirectsError, HTTPError) as exc:
            # a refused connection is a NewConnectionError, which urllib3 derives from its
            # connect timeout
            if isinstance(exc, NoAnswerError) and not isinstance(exc, NewConnectionError):
                return self._no_answer(timeout)
            return ProbeResult.failure(f"{p.url}: {_short(exc)}", status_code=0, content_failed=0)
        return self._judge(status, body)

    def _no_answer(self, timeout: float) -> ProbeResult:
        return ProbeResult.failure(
            f"timeout: no answer from {self.params.url} within {timeout:g} s",
            status_code=0,
            content_failed=0,
        )

    def _send(self, deadline: float) -> BaseHTTPResponse:
        """The answer to the configured request, after its redirects when they are followed.

        Each request of the chain gets what is left of the deadline; a redirect is asked again
        with the cookies the chain has set so far (a login page's session, as requests did).
        """
        url, method = self.params.url, self.params.method
        cookies = CookieJar()  # this run's only
        for _ in range(_MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DeadlineError
            # only for the cookie jar, which reads a urllib request; urllib3 sends it
            request = Request(url, headers=self._headers, method=method)  # noqa: S310
            cookies.add_cookie_header(request)
            headers = dict(self._headers)
            if request.has_header("Cookie"):
                headers["Cookie"] = str(request.get_header("Cookie"))
            response = self._pools.urlopen(
                method,
                url,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=Timeout(total=remaining),
                preload_content=False,
            )
            location = self.params.follow_redirects and response.get_redirect_location()
            if not location:
                return response
            cookies.extract_cookies(response, request)  # type: ignore[arg-type]  # has info()
            response.close()
            response.release_conn()
            url = urljoin(url, location)
            if method != "HEAD" and (
                response.status in (302, 303) or (response.status == 301 and method == "POST")
            ):
                method = "GET"
        raise _TooManyRedirectsError(f"more than {_MAX_REDIRECTS} redirects")

    def _read_body(self, response: BaseHTTPResponse, deadline: float) -> str:
        """Up to ``max_body_bytes`` of the body, read before ``deadline``."""
        chunks: list[bytes] = []
        size = 0
        while size < self.params.max_body_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DeadlineError
            # none once the whole body is in: urllib3 then gives the connection back (closed)
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            try:
                # read1: at most one read from the socket, so the deadline is checked between
                chunk = response.read1(
                    min(_CHUNK, self.params.max_body_bytes - size), decode_content=True
                )
            except ReadTimeoutError:
                raise _DeadlineError from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        charset = _charset(response.headers.get("Content-Type"))
        return b"".join(chunks).decode(charset, errors="replace")

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


def _one_use_pools(verify_tls: bool) -> PoolManager:
    """Pools that open a connection per request, checking certificates against certifi's CA
    bundle (the one requests used) unless ``verify_tls`` is off."""
    if verify_tls:
        pools = PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    else:
        pools = PoolManager(cert_reqs="CERT_NONE")
    pools.pool_classes_by_scheme = {
        "http": _OneUseHTTPConnectionPool,
        "https": _OneUseHTTPSConnectionPool,
    }
    return pools


def _charset(content_type: str | None) -> str:
    """The body's charset as requests chose it: the header's ``charset``, else ISO-8859-1 for a
    text type (RFC 2616), else UTF-8."""
    kind, *params = (content_type or "").split(";")
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip(" '\"")
    return "ISO-8859-1" if "text" in kind.lower() else "utf-8"


def _short(exc: BaseException) -> str:
    """The innermost error of a urllib3 chain, in a few words ("Connection refused")."""
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
