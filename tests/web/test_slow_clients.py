"""Real ``gardien hook`` and ``gardien exporter`` processes on loopback under slow and flooding
clients (issue 13): a thousand connections that never finish their headers, or sit idle kept
alive, or a flood of unauthenticated requests, and still every call answers within its client
timeout; the limits refuse at once and count what they refuse."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gardien.polling import wait_until
from gardien.web.limits import HEADER_TIMEOUT, MAX_CONNECTIONS_PER_CLIENT
from tests.exporter.test_web import client_verified_exporter
from tests.support.exporter import ExporterProcess, labels, samples
from tests.support.hooks import HookPair
from tests.support.slow_clients import KEEP_ALIVE, PARTIAL, SlowClients

SLOW = 1000
CLIENT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 5.0  # the hook's request_timeout in tests.support.hooks


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookPair]:
    pair = HookPair(tmp_path_factory.mktemp("slow-hook"))
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    config = tmp_path_factory.mktemp("slow-exporter") / "cluster.yml"
    config.write_text("cluster: t\nnodes: {node1: {address: 127.0.0.1}}\n")
    process = ExporterProcess(config, log_level="info")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def refused(hook: HookPair, reason: str) -> float:
    text = hook.session.get(hook.url("node1", "/metrics"), timeout=CLIENT_TIMEOUT).text
    return samples(text, "gardien_http_connections_refused_total")[labels(reason=reason)]


def open_connections(text: str) -> float:
    return samples(text, "gardien_http_connections_open")[labels()]


def every_call_answers(hook: HookPair, exporter: ExporterProcess) -> None:
    """``/-/healthy`` of both, an authenticated status call and a scrape, each within
    :data:`CLIENT_TIMEOUT`."""
    healthy = requests.get(hook.url("node1", "/-/healthy"), timeout=CLIENT_TIMEOUT)
    assert healthy.status_code == 200
    status = hook.session.get(hook.url("node1", "/api/v1/status"), timeout=CLIENT_TIMEOUT)
    assert status.status_code == 200 and "g1" in status.json()["groups"]
    assert requests.get(f"{exporter.url}/-/healthy", timeout=CLIENT_TIMEOUT).status_code == 200
    scrape = exporter.scrape(scrape_timeout=CLIENT_TIMEOUT - 1)
    assert scrape.status_code == 200 and "gardien_build_info" in scrape.text


@pytest.mark.parametrize("payload", [PARTIAL, KEEP_ALIVE], ids=["partial-headers", "idle"])
def test_a_thousand_slow_connections_on_each_port_stall_nothing(
    hook: HookPair, exporter: ExporterProcess, payload: bytes
) -> None:
    hook_address = (hook.addresses["node1"], hook.port)
    exporter_address = ("127.0.0.1", exporter.port)
    with (
        SlowClients(hook_address, SLOW, payload) as on_hook,
        SlowClients(exporter_address, SLOW, payload) as on_exporter,
    ):

        def held() -> bool:  # as the servers count them (a few may be closed and reopening)
            text = hook.session.get(hook.url("node1", "/metrics"), timeout=CLIENT_TIMEOUT).text
            on_exporter_side = open_connections(exporter.scrape().text)
            return min(open_connections(text), on_exporter_side) >= SLOW * 0.9

        assert wait_until(held, 60), (on_hook.open_now, on_exporter.open_now)
        every_call_answers(hook, exporter)


def test_a_flood_of_unauthenticated_requests_leaves_the_peer_answered(hook: HookPair) -> None:
    """2,000 requests without credentials from 8 clients; meanwhile the peer's status calls
    answer within half the hook's request_timeout."""
    codes: list[int] = []
    lock = threading.Lock()

    def flood() -> None:
        conn = http.client.HTTPConnection(hook.addresses["node1"], hook.port, timeout=30)
        try:
            for _ in range(250):
                conn.request("GET", "/api/v1/status")
                response = conn.getresponse()
                response.read()
                with lock:
                    codes.append(response.status)
        finally:
            conn.close()

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(8)]
    for thread in flooders:
        thread.start()
    answered = 0
    for _ in range(20):  # peer status calls while the flood lasts, bounded
        if not any(thread.is_alive() for thread in flooders):
            break
        status = hook.session.get(hook.url("node1", "/api/v1/status"), timeout=REQUEST_TIMEOUT / 2)
        assert status.status_code == 200
        answered += 1
    for thread in flooders:
        thread.join(timeout=120)
    assert answered >= 1
    assert codes == [401] * 2000


def test_connections_over_the_per_client_limit_are_refused_at_once(hook: HookPair) -> None:
    address = (hook.addresses["node1"], hook.port)
    source = ("127.88.0.1", 0)
    before = refused(hook, "per_client")
    held = [
        socket.create_connection(address, timeout=CLIENT_TIMEOUT, source_address=source)
        for _ in range(MAX_CONNECTIONS_PER_CLIENT)
    ]
    try:
        with (
            socket.create_connection(
                address, timeout=HEADER_TIMEOUT / 2, source_address=source
            ) as extra,
            contextlib.suppress(ConnectionResetError),
        ):
            assert extra.recv(1) == b""  # closed before the header timeout could
        # another client is served meanwhile
        assert requests.get(hook.url("node1", "/-/healthy"), timeout=CLIENT_TIMEOUT).ok
    finally:
        for conn in held:
            conn.close()
    assert refused(hook, "per_client") >= before + 1


def test_headers_that_never_end_are_closed_after_the_header_timeout(hook: HookPair) -> None:
    before = refused(hook, "header_timeout")
    address = (hook.addresses["node1"], hook.port)
    with socket.create_connection(address, timeout=HEADER_TIMEOUT + 10) as conn:
        conn.sendall(PARTIAL)
        assert conn.recv(1) == b""  # EOF, from the server
    assert refused(hook, "header_timeout") >= before + 1


def test_tls_with_a_client_certificate_under_slow_clients(tmp_path: Path) -> None:
    """Client certificates still work, also while 200 connections that never start their TLS
    handshake are held; a client without a certificate is still refused by TLS."""
    with client_verified_exporter(tmp_path) as (process, cert, key):
        client = {"verify": str(cert), "cert": (str(cert), str(key))}
        with SlowClients(("127.0.0.1", process.port), 200, PARTIAL):
            assert process.scrape(scrape_timeout=CLIENT_TIMEOUT - 1, **client).status_code == 200
            with pytest.raises(requests.exceptions.SSLError):
                process.scrape(verify=str(cert))
