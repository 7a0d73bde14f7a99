"""The front end of :class:`gardien.web.WebServer` (:mod:`gardien.web.frontend`) against a tiny
WSGI app in this process: keep-alive, pipelining, chunked bodies, streamed answers, and requests
refused before the app is called."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import h11
import pytest

from gardien.web import WebConfig, WebServer, frontend
from gardien.web.limits import (
    BODY_TIMEOUT,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    ConnectionBook,
    client_key,
)

CLIENT_TIMEOUT = 10.0


class Recorder:
    """Echoes ``METHOD PATH?QUERY body`` and records every call; ``/stream`` answers in three
    chunks without a length, ``/fail`` raises."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        with self.lock:
            self.calls.append(path)
        if path == "/fail":
            raise RuntimeError("the app failed")
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (part for part in (b"one ", b"two ", b"three"))
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0))
        answer = f"{environ['REQUEST_METHOD']} {path}?{environ['QUERY_STRING']} ".encode() + body
        start_response("200 OK", [("Content-Length", str(len(answer)))])
        return [answer]


@pytest.fixture
def served() -> Iterator[tuple[WebServer, Recorder]]:
    app = Recorder()
    server = WebServer(app, "127.0.0.1:0", WebConfig(), threads=2)
    server.start()
    try:
        yield server, app
    finally:
        server.stop()


def connect(server: WebServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT)


def read_answers(conn: socket.socket, count: int, head: bool = False) -> list[tuple[int, bytes]]:
    """``count`` answers read from ``conn`` with h11 (client side): (status, body) each."""
    client = h11.Connection(h11.CLIENT)
    answers: list[tuple[int, bytes]] = []
    for _ in range(count):
        method = b"HEAD" if head else b"GET"
        client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        client.send(h11.EndOfMessage())
        status, body = 0, b""
        for _ in range(1000):  # events of one answer, bounded
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(conn.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        answers.append((status, body))
        if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
            break
        client.start_next_cycle()
    return answers


def request(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"


def test_sequential_and_pipelined_requests_on_one_connection(
    served: tuple[WebServer, Recorder],
) -> None:
    server, app = served
    with connect(server) as conn:
        conn.sendall(request("/a?x=1"))
        first = read_answers(conn, 1)
        conn.sendall(request("/b"))  # kept alive
        second = read_answers(conn, 1)
        conn.sendall(request("/c") + request("/d"))  # pipelined
        pipelined = read_answers(conn, 2)
    assert first == [(200, b"GET /a?x=1 ")]
    assert second == [(200, b"GET /b? ")]
    assert pipelined == [(200, b"GET /c? "), (200, b"GET /d? ")]
    assert app.calls == ["/a", "/b", "/c", "/d"]


def test_a_chunked_request_body_reaches_the_app_whole(served: tuple[WebServer, Recorder]) -> None:
    server, _app = served
    with connect(server) as conn:
        conn.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        assert read_answers(conn, 1) == [(200, b"POST /echo? hello world")]


def test_a_streamed_answer_arrives_whole_and_head_gets_no_body(
    served: tuple[WebServer, Recorder],
) -> None:
    server, _app = served
    with connect(server) as conn:
        conn.sendall(request("/stream"))
        assert read_answers(conn, 1) == [(200, b"one two three")]
    with connect(server) as conn:
        conn.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answers(conn, 1, head=True) == [(200, b"")]


def test_an_app_that_fails_answers_500_and_the_server_goes_on(
    served: tuple[WebServer, Recorder],
) -> None:
    server, _app = served
    with connect(server) as conn:
        conn.sendall(request("/fail"))
        assert read_answers(conn, 1)[0][0] == 500
    with connect(server) as conn:
        conn.sendall(request("/after"))
        assert read_answers(conn, 1) == [(200, b"GET /after? ")]


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "bad_request"),  # HTTP/1.1 without Host
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "bad_request"),
        (request("/", b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"), 431, "too_large"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1),
            413,
            "too_large",
        ),
    ],
    ids=["not-http", "no-host", "bad-header", "headers-too-large", "body-too-large"],
)
def test_bad_requests_are_answered_without_calling_the_app(
    served: tuple[WebServer, Recorder], raw: bytes, status: int, reason: str
) -> None:
    server, app = served
    with connect(server) as conn:
        conn.sendall(raw)
        received = b""
        for _ in range(100):  # until the server closes, bounded
            data = conn.recv(65536)
            if not data:
                break
            received += data
    assert received.startswith(f"HTTP/1.1 {status} ".encode()), received[:80]
    assert app.calls == []
    assert server.metrics.refused()[reason] == 1


def test_stop_closes_every_connection_at_once(served: tuple[WebServer, Recorder]) -> None:
    server, _app = served
    held = [connect(server) for _ in range(20)]
    try:
        for conn in held:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never completed
        server.stop()
        for conn in held:
            with contextlib.suppress(ConnectionResetError):
                assert conn.recv(1) == b""
    finally:
        for conn in held:
            conn.close()


def test_a_body_that_never_ends_is_closed_after_the_body_timeout(
    served: tuple[WebServer, Recorder],
) -> None:
    server, app = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=BODY_TIMEOUT + 10) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert conn.recv(1) == b""  # EOF, from the server
    assert app.calls == []
    assert server.metrics.refused()["body_timeout"] == 1


def test_the_connection_limits_per_client_and_in_total() -> None:
    book = ConnectionBook(per_client=2, total=3)
    assert [book.admit("10.0.0.1") for _ in range(3)] == [None, None, "per_client"]
    assert book.admit("10.0.0.2") is None
    assert book.admit("10.0.0.3") == "total"
    book.leave("10.0.0.1")
    assert book.admit("10.0.0.3") is None
    assert book.total == 3


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),  # a dual-stack socket's IPv4 client
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_64(address: str, key: str) -> None:
    assert client_key(address) == key


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(
    served: tuple[WebServer, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed, and not counted: an idle connection is no refusal (the 60 s made short here)."""
    server, _app = served
    monkeypatch.setattr(frontend, "IDLE_TIMEOUT", 0.5)
    with connect(server) as conn:
        conn.sendall(request("/first"))
        assert read_answers(conn, 1) == [(200, b"GET /first? ")]
        assert conn.recv(1) == b""  # EOF, from the server
    assert sum(server.metrics.refused().values()) == 0
