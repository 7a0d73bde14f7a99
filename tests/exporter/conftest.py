"""The real ``gardien exporter`` process and real loopback targets for it to probe."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import gardien.config  # noqa: F401 - import order: see tests/probes/conftest.py


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"HEALTH OK\n" if self.path == "/health" else b"not here\n"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_target() -> Iterator[str]:
    """A threaded HTTP server on loopback answering ``/health`` with 200 "HEALTH OK"."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def blackhole() -> Iterator[int]:
    """A port whose connections complete (kernel backlog) but never get an answer: a hung daemon."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()
