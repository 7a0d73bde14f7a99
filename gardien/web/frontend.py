"""The front end of :class:`gardien.web.WebServer`: an asyncio event loop on its own thread accepts
the connections, does their TLS handshake, reads their requests with h11 (a maintained sans-IO
HTTP/1.1 parser) and only once a request's headers and body are complete hands it to a bounded
pool of request threads that run the WSGI app.

Why not cheroot, the server before it: cheroot gives each connection a thread from the moment it
is accepted, so twelve connections that send half a request and wait held every thread of the
hook, and then nothing answered — not ``/-/healthy``, not a peer's status call — and a peer hook
that gets no answer fences the node.  Here a connection costs a socket and a few kilobytes until
its request is complete, and :mod:`gardien.web.limits` bounds even that (per client, in total, in
time).  A thousand slow connections leave every answer under a second (docs/benchmarks.md, "Slow
clients"); a request that waits for a busy pool waits in the loop, never in the kernel's queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn

import h11

from gardien.web import wsgi_call
from gardien.web.limits import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    SEND_TIMEOUT,
    ConnectionBook,
    ServingMetrics,
    client_key,
)
from gardien.web.wire import PlainWire, TlsWire

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0
"""Seconds :meth:`FrontEnd.stop` waits for the connections to close and the loop to end."""


class WorkerPool:
    """The request threads: daemon threads, so that a request still running (a group's start)
    never holds up the process's exit, as cheroot's did not."""

    def __init__(self, threads: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[concurrent.futures.Future[None], Callable[[], None]] | None
        ] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], None]) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._jobs.put((future, job))
        return future

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue  # its connection closed while it waited
            try:
                job()
            except BaseException as exc:  # handed to the loop with the future
                future.set_exception(exc)
            else:
                future.set_result(None)

    def shutdown(self) -> None:
        """Each thread ends after its current request."""
        for _ in self._threads:
            self._jobs.put(None)


class _ConnectionEndError(Exception):
    """The connection ends here; ``reason`` (a :data:`~gardien.web.limits.REASONS` value) when it
    is counted as a refusal."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class FrontEnd:
    """Serve ``app`` on the listening socket ``sock``, TLS through ``tls`` when given."""

    def __init__(
        self,
        app: WSGIApplication,
        sock: socket.socket,
        book: ConnectionBook,
        metrics: ServingMetrics,
        *,
        tls: ssl.SSLContext | None,
        threads: int,
        server_name: str,
    ) -> None:
        self.app = app
        self.tls = tls
        self.server_name = server_name
        self.scheme = "https" if tls else "http"
        self.book = book
        self.metrics = metrics
        self.pool = WorkerPool(threads, server_name)
        self._sock = sock
        self._loop = asyncio.new_event_loop()
        self._connections: dict[asyncio.Task[None], socket.socket] = {}
        self._accepting = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._sock.setblocking(False)
        self._loop.call_soon(self._listen)
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def stop(self) -> None:
        """Close the listening socket and every connection; requests still running in the pool
        finish unanswered."""
        if self._thread is None:
            self._sock.close()
            self._loop.close()
            self.pool.shutdown()
            return
        closing = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            closing.result(timeout=STOP_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT)
        self._thread = None
        self.pool.shutdown()

    async def _shutdown(self) -> None:
        self._accepting = False
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        for _ in range(2):  # the sockets close in the callbacks their transports scheduled
            await asyncio.sleep(0)
        for sock in self._connections.values():  # a task cancelled before it began
            sock.close()

    def _listen(self) -> None:
        self._accepting = True
        self._loop.add_reader(self._sock.fileno(), self._accept)

    def _accept(self) -> None:
        """Accept every connection waiting, at once, and refuse at once the excess of a
        connection limit, unread.  A callback of the listening socket's readiness, not a task
        awaiting ``loop.sock_accept``: a task cancelled by :meth:`stop` while the loop accepted
        for it leaks that connection, open and never served (Python 3.11's selector loop, seen in
        CI), and ``asyncio.start_server`` leaks the sockets it accepts while it closes; a callback
        runs whole, between two of the loop's steps, so every socket it accepts is in
        ``_connections`` before a stop can look."""
        while self._accepting:
            try:
                conn, peer = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: they wait in the backlog
                log.warning("cannot accept a connection: %s", exc)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(0.1, self._resume)
                return
            conn.setblocking(False)
            client = client_key(peer[0])
            refusal = self.book.admit(client)
            if refusal is not None:
                self.metrics.refuse(refusal)
                conn.close()
                continue
            task = self._loop.create_task(self._serve(conn, peer, client))
            self._connections[task] = conn

    def _resume(self) -> None:
        if self._accepting:
            self._listen()

    async def _serve(self, conn: socket.socket, peer: tuple[Any, ...], client: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
            try:
                await _Connection(self, reader, writer, peer).serve()
            finally:
                if writer.transport.get_write_buffer_size():
                    writer.transport.abort()  # it does not read what is left
                else:
                    writer.close()  # the client sees EOF
        except _ConnectionEndError as closed:
            if closed.reason is not None:
                self.metrics.refuse(closed.reason)
        except OSError:
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the server stops
        except Exception:
            log.exception("connection from %s failed", peer[0])
        finally:
            conn.close()
            self.book.leave(client)
            del self._connections[task]


def _head_size(request: h11.Request) -> int:
    """The size of a request's line and headers, as sent (give or take the spaces)."""
    line = len(request.method) + len(request.target) + 12
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers)


class _Connection:
    """One client connection: requests read, answered and kept alive in turn."""

    def __init__(
        self,
        front: FrontEnd,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[Any, ...],
    ) -> None:
        self.front = front
        self.writer = writer
        self.peer = (str(peer[0]), int(peer[1]))
        sockname = writer.get_extra_info("sockname")
        self.local = (str(sockname[0]), int(sockname[1]))
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.aborted = False
        self.wire = (
            PlainWire(reader, writer) if front.tls is None else TlsWire(front.tls, reader, writer)
        )

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HEADER_TIMEOUT  # the handshake included
        if isinstance(self.wire, TlsWire):
            try:
                async with asyncio.timeout_at(deadline):
                    await self.wire.handshake()
            except (OSError, TimeoutError) as exc:
                log.debug("TLS handshake with %s failed: %s", self.peer[0], exc)
                raise _ConnectionEndError("tls_handshake") from exc
        while True:
            request = await self._read_request(deadline)
            if request is None:
                return
            await self._respond(request)
            if self.aborted or self.h11.our_state is not h11.DONE:
                return
            if self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()
            if not any(self.h11.trailing_data):  # nothing pipelined: an idle keep-alive
                first = await self._receive(loop.time() + IDLE_TIMEOUT)
                if first is None:
                    return  # idle for IDLE_TIMEOUT: closed, not counted
                self.h11.receive_data(first)
            deadline = loop.time() + HEADER_TIMEOUT

    async def _receive(self, deadline: float) -> bytes | None:
        """The next bytes of the client (b"" at its EOF), or None when ``deadline`` passed."""
        try:
            async with asyncio.timeout_at(deadline):
                return await self.wire.read()
        except TimeoutError:
            return None

    async def _next_event(self, deadline: float, reason: str) -> Any:
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            data = await self._receive(deadline)
            if data is None:
                raise _ConnectionEndError(reason)
            self.h11.receive_data(data)
        return event

    async def _read_request(self, deadline: float) -> wsgi_call.Request | None:
        """The next complete request; None when the client closed the connection."""
        try:
            event = await self._next_event(deadline, "header_timeout")
            if isinstance(event, h11.ConnectionClosed):
                return None
            assert isinstance(event, h11.Request), event
            if _head_size(event) > MAX_HEADER_BYTES:  # h11 limits only what is incomplete
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too_large")
            declared = dict(event.headers).get(b"content-length")
            if declared is not None and int(declared) > MAX_BODY_BYTES:
                self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large")
            if self.h11.they_are_waiting_for_100_continue:
                self._write(h11.InformationalResponse(status_code=100, headers=[]))
            body = bytearray()
            body_deadline = asyncio.get_running_loop().time() + BODY_TIMEOUT
            while not isinstance(part := await self._next_event(body_deadline, "body_timeout"),
                                 h11.EndOfMessage):  # fmt: skip
                if isinstance(part, h11.ConnectionClosed):
                    return None
                body += part.data
                if len(body) > MAX_BODY_BYTES:
                    self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large")
        except h11.RemoteProtocolError as exc:
            too_large = exc.error_status_hint == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            self._refuse(
                HTTPStatus(exc.error_status_hint), "too_large" if too_large else "bad_request"
            )
        return wsgi_call.Request(
            event,
            bytes(body),
            self.peer,
            self.local,
            self.front.scheme,
            self.front.server_name,
        )

    def _refuse(self, status: HTTPStatus, reason: str) -> NoReturn:
        """Answer ``status`` without calling the app, and close."""
        self._write(wsgi_call.error_response(status, self.front.server_name))
        self._write(h11.Data(data=f"{status.phrase}.\n".encode()))
        self._write(h11.EndOfMessage())
        raise _ConnectionEndError(reason)

    async def _respond(self, request: wsgi_call.Request) -> None:
        loop = asyncio.get_running_loop()

        def send(event: wsgi_call.Part) -> None:  # in the request thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
                loop.call_soon_threadsafe(self._write, event)

        job = functools.partial(wsgi_call.run, self.front.app, request, send)
        await asyncio.wrap_future(self.front.pool.submit(job))
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await self.writer.drain()
        except TimeoutError as exc:
            raise _ConnectionEndError("send_timeout") from exc

    def _write(self, event: wsgi_call.Part) -> None:
        """Send one h11 event of the answer (or :data:`wsgi_call.ABORT`); in the loop's thread."""
        if self.aborted or self.writer.transport.is_closing():
            return
        if isinstance(event, wsgi_call.Abort):
            self._abort()
            return
        try:
            data = self.h11.send(event)
            if data:
                self.wire.write(data)
        except h11.LocalProtocolError:
            log.exception("invalid answer to %s", self.peer[0])
            self._abort()
        except OSError as exc:  # TLS failed on the way out: the client is gone
            log.debug("cannot answer %s: %s", self.peer[0], exc)
            self._abort()

    def _abort(self) -> None:
        self.aborted = True
        self.writer.transport.abort()
