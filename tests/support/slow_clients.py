"""Slow clients on loopback, as an attacker opens them (tests/web/test_slow_clients.py and
benchmarks/slow_clients.py): connections that each sent a partial request (or a whole one, then
stay idle, kept alive) and wait.

The connections come from many loopback source addresses (127.77.N.1), so that they stay within
the per-client connection limit (:data:`gardien.web.limits.MAX_CONNECTIONS_PER_CLIENT`) and reach
the server as a thousand different clients would.  A thread replaces each connection the server
closes (its header timeout) with a new one, so that ``count`` stay open until :meth:`close`.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from types import TracebackType

from gardien.web.limits import MAX_CONNECTIONS_PER_CLIENT, raise_open_file_limit

PARTIAL = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n"
"""Headers that never end."""
KEEP_ALIVE = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
"""A whole request: answered, then the connection stays idle."""

SOURCES_FIRST = 77
PER_SOURCE = MAX_CONNECTIONS_PER_CLIENT // 2
MAX_LIFETIME = 300.0
"""Seconds after which the refreshing thread gives up even if never closed (bounded)."""


def source_address(index: int) -> str:
    return f"127.{SOURCES_FIRST}.{index // PER_SOURCE}.1"


class SlowClients:
    """``count`` connections to ``address`` that sent ``payload`` and wait (a context manager)."""

    def __init__(self, address: tuple[str, int], count: int, payload: bytes = PARTIAL) -> None:
        raise_open_file_limit()  # a thousand sockets here too
        self.address = address
        self.count = count
        self.payload = payload
        self.opened = 0
        self.replaced = 0
        self._selector = selectors.DefaultSelector()
        self._sockets: dict[socket.socket, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._refresh, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClients:
        self._thread.start()  # already replacing the first while the last open
        for index in range(self.count):
            self._open(index)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def open_now(self) -> int:
        with self._lock:
            return len(self._sockets)

    def _open(self, index: int) -> None:
        conn = socket.create_connection(
            self.address, timeout=10, source_address=(source_address(index), 0)
        )
        conn.sendall(self.payload)
        conn.setblocking(False)
        with self._lock:
            self._sockets[conn] = index
            self._selector.register(conn, selectors.EVENT_READ)
        self.opened += 1

    def _refresh(self) -> None:
        deadline = time.monotonic() + MAX_LIFETIME
        while not self._stop.is_set() and time.monotonic() < deadline:
            for key, _ in self._selector.select(timeout=0.2):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    data = conn.recv(65536)  # an answer (kept alive), or the server's close
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data or self._stop.is_set():
                    continue
                with self._lock:
                    self._selector.unregister(conn)
                    index = self._sockets.pop(conn)
                conn.close()
                with contextlib.suppress(OSError):
                    self._open(index)
                    self.replaced += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            for conn in self._sockets:
                self._selector.unregister(conn)
                conn.close()
            self._sockets.clear()
        self._selector.close()
