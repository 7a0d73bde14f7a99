"""TCP probe: connect, optionally send a line and wait for an answer matching a regex.

A connect alone proves little: the kernel completes the handshake for a stopped daemon (docs/lab.md
section 5).  ``expect`` makes the server itself answer, e.g. MariaDB's greeting or an SMTP banner.
Every socket operation gets what is left of one deadline, so the probe ends within its timeout
however slowly the server trickles bytes.
"""

from __future__ import annotations

import re
import socket
import time

from pydantic import Field

from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import Regex

_MAX_ANSWER = 65536


class TcpParams(ProbeParams):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    send: str | None = None
    """Sent after connecting (UTF-8; write ``\\r\\n`` in a double-quoted YAML string)."""
    expect: Regex | None = None
    """The bytes the server sends (decoded as Latin-1) must match, before the deadline."""


@register
class TcpProbe(Probe[TcpParams]):
    kind = "tcp"
    params_model = TcpParams
    values = {  # noqa: RUF012 - ClassVar of the base
        "connected": "1 when the TCP connection was established.",
        "expect_failed": "1 when the server's answer did not match expect in time.",
    }

    def __init__(self, params: TcpParams) -> None:
        super().__init__(params)
        self._expect = re.compile(params.expect.encode("latin-1")) if params.expect else None

    def check(self, timeout: float) -> ProbeResult:
        p = self.params
        deadline = time.monotonic() + timeout
        where = f"{p.host}:{p.port}"
        try:
            conn = socket.create_connection((p.host, p.port), timeout=timeout)
        except TimeoutError:
            return ProbeResult.failure(f"timeout: no connection to {where} within {timeout:g} s",
                                       connected=0, expect_failed=0)  # fmt: skip
        except OSError as exc:
            return ProbeResult.failure(f"connect to {where}: {exc.strerror or exc}",
                                       connected=0, expect_failed=0)  # fmt: skip
        with conn:
            try:
                if p.send is not None:
                    conn.settimeout(max(deadline - time.monotonic(), 0.001))
                    conn.sendall(p.send.encode())
                if self._expect is None:
                    return ProbeResult.success(connected=1, expect_failed=0)
                return self._await_answer(conn, deadline, timeout)
            except OSError as exc:
                return ProbeResult.failure(f"{where}: {exc.strerror or exc}",
                                           connected=1, expect_failed=1)  # fmt: skip

    def _await_answer(self, conn: socket.socket, deadline: float, timeout: float) -> ProbeResult:
        assert self._expect is not None
        answer = b""
        while len(answer) < _MAX_ANSWER:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn.settimeout(remaining)
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                return self._verdict(answer, f"connection closed after {len(answer)} bytes")
            answer += chunk
            if self._expect.search(answer):
                return ProbeResult.success(connected=1, expect_failed=0)
        return self._verdict(answer, f"timeout: no matching answer within {timeout:g} s")

    def _verdict(self, answer: bytes, why: str) -> ProbeResult:
        if self._expect is not None and self._expect.search(answer):
            return ProbeResult.success(connected=1, expect_failed=0)
        shown = answer[:60].decode("latin-1").encode("unicode_escape").decode()
        return ProbeResult.failure(f"{why}, expected {self.params.expect!r}, got {shown!r}",
                                   connected=1, expect_failed=1)  # fmt: skip
