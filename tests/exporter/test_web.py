"""``--web.config.file``: TLS and basic auth on the real exporter, and the web config checks."""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import sys
import wsgiref.util
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests

from gardien.errors import ConfigError
from gardien.web import (
    LISTEN_BACKLOG,
    AuthMiddleware,
    BasicAuth,
    BearerToken,
    WebConfig,
    WebServer,
    load_web_config,
    parse_listen_address,
)
from tests.support.exporter import ExporterProcess

PASSWORD = "s3cret-scrape"


def make_cert(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, http_target: str
) -> Iterator[tuple[ExporterProcess, str]]:
    folder = tmp_path_factory.mktemp("web")
    cert, _key = make_cert(folder)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    (folder / "web.yml").write_text(
        "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    config = folder / "cluster.yml"
    config.write_text(
        "cluster: t\nnodes: {node1: {address: 127.0.0.1}}\n"
        f"node_services: [{{name: web, probes: [{{http: {{url: '{http_target}/health'}}}}]}}]\n"
    )
    process = ExporterProcess(
        config, ["--web.config.file", str(folder / "web.yml")], scheme="https"
    )
    try:
        process.wait_ready(verify=str(cert))
        yield process, str(cert)
    finally:
        process.stop()


def test_tls_and_basic_auth(secured: tuple[ExporterProcess, str]) -> None:
    process, verify = secured
    assert process.scrape(verify=verify).status_code == 401
    wrong = process.scrape(verify=verify, auth=("prometheus", "wrong"))
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert process.scrape(verify=verify, auth=("someone", PASSWORD)).status_code == 401
    for _ in range(2):  # the second time from the cache of verified credentials
        right = process.scrape(verify=verify, auth=("prometheus", PASSWORD))
        assert right.status_code == 200
        assert "gardien_probe_success" in right.text
    assert requests.get(f"{process.url}/-/healthy", verify=verify, timeout=5).status_code == 200
    assert requests.get(process.url, verify=verify, timeout=5).status_code == 401
    with pytest.raises(requests.ConnectionError):  # plain HTTP on the TLS port
        requests.get(process.url.replace("https", "http") + "/metrics", timeout=5)
    assert PASSWORD not in process.output()


def test_a_bad_web_config_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yml"
    config.write_text("cluster: t\nnodes: {node1: {address: 127.0.0.1}}\n")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {prometheus: plain-password}\n")
    run = subprocess.run(
        [sys.executable, "-m", "gardien.cli", "exporter", "--config.file", str(config),
         "--web.config.file", str(web), "--web.listen-address", "127.0.0.1:0"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "basic_auth_users.prometheus: not a bcrypt hash" in run.stderr
    assert "plain-password" not in run.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tls_server_config: {cert_file: server.crt}\n", "tls_server_config.key_file: required"),
        ("tls_server_config: {cert_file: nope.crt, key_file: server.key}\n", "does not exist"),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, "
            "client_ca_file: server.crt}\n",
            "client_ca_file is set but client_auth_type does not verify",
        ),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, "
            "client_auth_type: RequireAndVerifyClientCert}\n",
            "needs client_ca_file",
        ),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.crt}\n",
            "cannot load the certificate or key",
        ),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS9}\n",
            "min_version",
        ),
        ("basic_auth_users: [a, b]\n", "basic_auth_users: must be a mapping"),
        ("tls_config: {}\n", "unknown key 'tls_config'"),
        ("http_server_config: {http2: maybe}\n", "http2: must be true or false"),
    ],
)
def test_web_config_problems_are_reported(tmp_path: Path, text: str, problem: str) -> None:
    make_cert(tmp_path)
    (tmp_path / "web.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(tmp_path / "web.yml")
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_a_good_web_config_with_client_verification(tmp_path: Path) -> None:
    make_cert(tmp_path)
    (tmp_path / "web.yml").write_text(
        "tls_server_config: {cert_file: server.crt, key_file: server.key, client_ca_file: "
        "server.crt, client_auth_type: RequireAndVerifyClientCert, min_version: TLS13}\n"
        "http_server_config: {headers: {X-Frame-Options: deny}}\n"
    )
    config = load_web_config(tmp_path / "web.yml")
    assert config.tls is not None and config.tls.client_ca_file == tmp_path / "server.crt"
    assert config.headers == {"X-Frame-Options": "deny"}


def _call(app: Any, path: str, authorization: str | None = None) -> str:
    environ: dict[str, Any] = {"PATH_INFO": path}
    wsgiref.util.setup_testing_defaults(environ)
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    statuses = []

    def start_response(status: str, _headers: list[tuple[str, str]], _exc: Any = None) -> Any:
        statuses.append(status)

    b"".join(app(environ, start_response))
    return statuses[0]


def _ok(_environ: Any, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def test_bearer_token_or_basic_user_passes_the_middleware() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4))
    app = AuthMiddleware(_ok, [BasicAuth({"u": hashed}), BearerToken("tok-123")])
    basic = "Basic " + base64.b64encode(b"u:pw").decode()
    assert _call(app, "/api", "Bearer tok-123").startswith("200")
    assert _call(app, "/api", basic).startswith("200")
    assert _call(app, "/api", "Bearer tok-12").startswith("401")
    assert _call(app, "/api", "Basic !!!").startswith("401")
    assert _call(app, "/api").startswith("401")
    assert _call(app, "/-/healthy").startswith("200")
    assert _call(AuthMiddleware(_ok, []), "/api").startswith("200")  # no auth configured


@contextlib.contextmanager
def client_verified_exporter(folder: Path) -> Iterator[tuple[ExporterProcess, Path, Path]]:
    """A ready exporter that requires client certificates, its certificate and key (also the
    client's: it is its own CA)."""
    cert, key = make_cert(folder)
    (folder / "web.yml").write_text(
        "tls_server_config: {cert_file: server.crt, key_file: server.key, "
        "client_ca_file: server.crt, client_auth_type: RequireAndVerifyClientCert}\n"
    )
    config = folder / "cluster.yml"
    config.write_text("cluster: t\nnodes: {node1: {address: 127.0.0.1}}\n")
    process = ExporterProcess(
        config, ["--web.config.file", str(folder / "web.yml")], scheme="https", log_level="info"
    )
    try:
        process.wait_ready(verify=str(cert), cert=(str(cert), str(key)))
        yield process, cert, key
    finally:
        process.stop()


def test_client_certificates_are_required_when_configured(tmp_path: Path) -> None:
    with client_verified_exporter(tmp_path) as (process, cert, key):
        assert process.scrape(verify=str(cert), cert=(str(cert), str(key))).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            process.scrape(verify=str(cert))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:19480", ("127.0.0.1", 19480)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_addresses(address: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(address) == expected


@pytest.mark.parametrize("address", ["19480", "host:", "1.2.3.4:70000", "[::1:80", "a:b:80"])
def test_bad_listen_addresses(address: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen_address(address)


def test_every_address_for_an_empty_host() -> None:
    host, port = parse_listen_address(":19480")
    assert host in ("::", "0.0.0.0") and port == 19480


def test_the_server_queues_a_burst_of_connections() -> None:
    """The listen backlog reaches the kernel (cheroot's default of 5 dropped connection attempts of
    a burst, retried a second later), and every connection of a burst is answered."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = WebServer(app, "127.0.0.1:0", WebConfig(), threads=2)
    server.start()
    try:
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{server.port}"],
            check=True, capture_output=True, text=True, timeout=10,
        ).stdout.split()  # fmt: skip
        assert listening[0] == "LISTEN" and int(listening[2]) == LISTEN_BACKLOG, listening
        address = ("127.0.0.1", server.port)
        burst = [socket.create_connection(address, timeout=30) for _ in range(64)]
        try:
            for conn in burst:
                conn.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            for conn in burst:
                assert conn.makefile("rb").readline().startswith(b"HTTP/1.1 200")
        finally:
            for conn in burst:
                conn.close()
    finally:
        server.stop()
