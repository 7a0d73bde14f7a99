"""The bytes of one connection of the front end (:mod:`gardien.web.frontend`): as they are, or
through TLS.

TLS runs here over ``ssl.MemoryBIO`` rather than asyncio's own TLS transport, for one reason:
asyncio drops the alert of a handshake that fails, so a client refused for its certificate (a
missing one under ``RequireAndVerifyClientCert``) would see a closed connection instead of the
server's "certificate required" — and the exporter-toolkit semantics, TLS errors included, stay
what they were with cheroot.  The ``ssl.SSLContext`` is the web config's, unchanged.
"""

from __future__ import annotations

import asyncio
import ssl

READ_SIZE = 64 * 1024


class PlainWire:
    """A connection without TLS."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        """The next bytes of the client; b"" at its end."""
        return await self.reader.read(READ_SIZE)

    def write(self, data: bytes) -> None:
        self.writer.write(data)


class TlsWire(PlainWire):
    """A server-side TLS connection; :meth:`handshake` first."""

    def __init__(
        self,
        context: ssl.SSLContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(reader, writer)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def handshake(self) -> None:
        """Raises ``ssl.SSLError`` (after sending the alert) or ``ConnectionError``."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                if not await self._fill():
                    raise ConnectionResetError("closed during the TLS handshake") from None
            except ssl.SSLError:
                self._flush()  # the alert: the client learns why
                raise
            else:
                self._flush()
                return

    async def read(self) -> bytes:
        while True:
            try:
                return self._tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                self._flush()  # a TLS 1.3 key update may want an answer
                if not await self._fill():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def write(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    async def _fill(self) -> bool:
        """Feed the next encrypted bytes to TLS; False at the client's end."""
        data = await self.reader.read(READ_SIZE)
        if not data:
            return False
        self._incoming.write(data)
        return True

    def _flush(self) -> None:
        if pending := self._outgoing.read():
            self.writer.write(pending)
