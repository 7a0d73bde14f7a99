"""One complete request run through a WSGI application (PEP 3333), in a request thread.

The front end (:mod:`gardien.web.frontend`) parses the request with h11 and reads its whole body
before it hands it here; the response goes back as h11 events through ``send``, which passes them
to the event loop's thread, so a streaming body is written chunk by chunk as the app yields it and
the thread never waits for the client to read.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

import h11

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)


class Abort:
    """Sent instead of an h11 event when the app failed after its headers went out: the
    connection is closed without the end of the body, so that the client sees the answer is
    incomplete."""


ABORT = Abort()
Part = h11.InformationalResponse | h11.Response | h11.Data | h11.EndOfMessage | Abort
"""What goes from the request thread to the event loop: the answer, event by event."""
Send = Callable[[Part], None]


@dataclass(frozen=True)
class Request:
    """A complete request, as the event loop read it."""

    event: h11.Request
    body: bytes
    client: tuple[str, int]
    server: tuple[str, int]
    scheme: str
    server_name: str


def environ_of(request: Request) -> WSGIEnvironment:
    """The WSGI environ of ``request``.  Header names with an underscore are dropped (as gunicorn
    and Werkzeug do): ``X_Auth`` and ``X-Auth`` would otherwise be the same variable."""
    target = request.event.target
    if not target.startswith(b"/"):  # absolute form: http://host/path?query
        split = urlsplit(target)
        target = (split.path or b"/") + (b"?" + split.query if split.query else b"")
    path, _, query = target.partition(b"?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.event.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": request.server[0],
        "SERVER_PORT": str(request.server[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.event.http_version.decode("ascii"),
        "SERVER_SOFTWARE": request.server_name,
        "REMOTE_ADDR": request.client[0],
        "REMOTE_PORT": str(request.client[1]),
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in request.event.headers:  # h11 gives lower-case names
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if "_" in name or name in ("content-length", "transfer-encoding"):
            continue  # the body is whole: CONTENT_LENGTH is its length
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def run(app: WSGIApplication, request: Request, send: Send) -> None:
    """Call ``app`` for ``request``; every part of the answer goes to ``send`` (an h11 event, or
    :data:`ABORT`).  Runs in a request thread."""
    head = request.event.method == b"HEAD"  # the app's body is not sent (h11 refuses it)
    started: list[tuple[str, list[tuple[str, str]]]] = []
    sent = False

    def send_head() -> None:
        nonlocal sent
        if sent:
            return
        if not started:
            raise RuntimeError("the WSGI app returned a body before calling start_response")
        status, headers = started[-1]
        code, _, reason = status.partition(" ")
        names = {name.lower() for name, _ in headers}
        extra = [("Date", formatdate(usegmt=True))] if "date" not in names else []
        if "server" not in names:
            extra.append(("Server", request.server_name))
        send(h11.Response(status_code=int(code), reason=reason, headers=[*headers, *extra]))
        sent = True

    def write(data: bytes) -> None:
        send_head()
        if data and not head:
            send(h11.Data(data=data))

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and sent:
            raise exc_info[1].with_traceback(exc_info[2])
        started.append((status, headers))
        return write

    try:
        body = app(environ_of(request), start_response)
        try:
            for chunk in body:
                write(chunk)
            send_head()
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
    except Exception:
        log.exception("%s %r failed", request.event.method.decode(), request.event.target)
        if sent:
            send(ABORT)
            return
        send(error_response(500, request.server_name))
        if not head:
            send(h11.Data(data=b"Internal server error.\n"))
    send(h11.EndOfMessage())


def error_response(code: int, server_name: str) -> h11.Response:
    """The head of an answer of the front end itself; the connection closes after it."""
    return h11.Response(
        status_code=code,
        reason=HTTPStatus(code).phrase,
        headers=[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Connection", "close"),
            ("Date", formatdate(usegmt=True)),
            ("Server", server_name),
        ],
    )
