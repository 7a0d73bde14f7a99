"""The tcp probe against real servers: Apache (send a request, expect the status line) and
MariaDB (expect its greeting)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import pytest

from gardien.probes.tcp import TcpParams, TcpProbe
from tests.probes.conftest import ApacheUnderTest, MariadbUnderTest, loopback, needs_root

pytestmark = [needs_root, pytest.mark.timeout(120)]

HEAD = "HEAD / HTTP/1.0\r\n\r\n"


def probe(host: str, port: int, **params: object) -> TcpProbe:
    return TcpProbe(TcpParams(host=host, port=port, **params))  # type: ignore[arg-type]


def test_send_and_expect_against_apache(apache_factory: Callable[..., ApacheUnderTest]) -> None:
    site = apache_factory("tcp").inst
    ok = probe(site.address, site.port, send=HEAD, expect=r"^HTTP/1\.1 200 OK").run()
    wrong = probe(site.address, site.port, send=HEAD, expect=r"^HTTP/1\.1 500", timeout=2).run()

    assert ok.ok, ok.reason
    assert ok.values == {"connected": 1, "expect_failed": 0}
    assert not wrong.ok
    assert wrong.values == {"connected": 1, "expect_failed": 1}
    # Apache answers and closes the connection: the probe says so rather than waiting
    assert wrong.reason.startswith("connection closed after"), wrong.reason
    assert "HTTP/1.1 200 OK" in wrong.reason


def test_expect_the_mariadb_greeting(
    mariadb_pair: tuple[MariadbUnderTest, MariadbUnderTest],
) -> None:
    one, _ = mariadb_pair
    result = probe(one.inst.address, one.inst.port, expect="MariaDB").run()

    assert result.ok, result.reason


def test_connect_only_passes_on_a_stopped_server_but_expect_fails_in_time(
    apache_factory: Callable[..., ApacheUnderTest],
) -> None:
    site = apache_factory("tcp-hung")
    site.daemon.signal_group(signal.SIGSTOP)
    try:
        connect_only = probe(site.inst.address, site.inst.port, timeout=1).run()
        answered = probe(
            site.inst.address, site.inst.port, send=HEAD, expect="^HTTP/", timeout=1
        ).run()
    finally:
        site.daemon.signal_group(signal.SIGCONT)

    # the kernel completes the handshake for a stopped daemon (docs/lab.md section 5)
    assert connect_only.ok
    assert not answered.ok
    assert answered.values == {"connected": 1, "expect_failed": 1}
    assert answered.reason.startswith("timeout: no matching answer within 1 s")


def test_refused_connection() -> None:
    # port 1: outside the ephemeral range, so the connect cannot meet itself (TCP self-connect)
    result = probe(loopback(), 1).run()

    assert not result.ok
    assert result.values == {"connected": 0, "expect_failed": 0}
    assert "refused" in result.reason


def test_a_listener_that_never_accepts_times_out() -> None:
    address = loopback()
    with socket.socket() as server:
        server.bind((address, 0))
        server.listen(1)
        result = probe(address, server.getsockname()[1], expect="hello", timeout=0.5).run()

    assert not result.ok
    assert "timeout" in result.reason
