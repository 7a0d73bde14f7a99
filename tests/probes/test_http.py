"""The http probe against real Apache instances (and a Tomcat, in test_tomcat.py)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gardien.probes.http import HttpParams, HttpProbe
from gardien_lab.daemons.apache import ApacheInstance
from tests.probes.conftest import ApacheUnderTest, free_port, needs_root

pytestmark = [needs_root, pytest.mark.timeout(120)]

PAGES = {
    "index.html": "welcome\n",
    "health.php": "DB OK\n",
    "broken.html": "Fatal error: cannot connect to the database\n",
}


def probe(url: str, **params: object) -> HttpProbe:
    return HttpProbe(HttpParams(url=url, **params))  # type: ignore[arg-type]


@pytest.fixture
def two_apaches(
    apache_factory: Callable[..., ApacheUnderTest],
) -> tuple[ApacheUnderTest, ApacheUnderTest]:
    return apache_factory("www1", PAGES), apache_factory("www2", {"health.php": "DB DOWN\n"})


def test_two_instances_are_probed_independently(
    two_apaches: tuple[ApacheUnderTest, ApacheUnderTest],
) -> None:
    www1, www2 = two_apaches
    ok = probe(f"{www1.inst.url}health.php", expect_regex="DB OK").run()
    bad = probe(f"{www2.inst.url}health.php", expect_regex="DB OK").run()

    assert ok.ok, ok.reason
    assert ok.values == {"status_code": 200, "content_failed": 0}
    assert not bad.ok
    assert bad.values == {"status_code": 200, "content_failed": 1}
    assert "does not match 'DB OK'" in bad.reason


def test_fail_regex_catches_an_error_page_served_with_200(
    two_apaches: tuple[ApacheUnderTest, ApacheUnderTest],
) -> None:
    www1, _ = two_apaches
    result = probe(f"{www1.inst.url}broken.html", fail_regex="Fatal error").run()
    fine = probe(f"{www1.inst.url}index.html", fail_regex="Fatal error").run()

    assert not result.ok
    assert result.values["content_failed"] == 1
    assert "matches fail_regex" in result.reason
    assert fine.ok, fine.reason


def test_wrong_status_fails_and_reports_the_code(
    two_apaches: tuple[ApacheUnderTest, ApacheUnderTest],
) -> None:
    www1, _ = two_apaches
    missing = probe(f"{www1.inst.url}nope.html").run()
    expected_404 = probe(f"{www1.inst.url}nope.html", expect_status=[404]).run()

    assert not missing.ok
    assert missing.values == {"status_code": 404, "content_failed": 0}
    assert missing.reason == "status 404, expected 200"
    assert expected_404.ok


def test_host_header_selects_the_virtual_host(
    apache_factory: Callable[..., ApacheUnderTest],
) -> None:
    def vhosts(inst: ApacheInstance) -> str:
        # name-based virtual hosts on the instance's one address: the Host header picks the site
        return f"""
<VirtualHost {inst.address}:{inst.port}>
  ServerName default.lab.test
  DocumentRoot {inst.htdocs}
</VirtualHost>
<VirtualHost {inst.address}:{inst.port}>
  ServerName app.lab.test
  DocumentRoot {inst.htdocs / "app"}
</VirtualHost>
"""

    pages = {"index.html": "default site\n", "app/index.html": "APP UP\n"}
    site = apache_factory("vhost", pages, vhosts)
    by_name = probe(site.inst.url, host="app.lab.test", expect_regex="APP UP").run()
    default = probe(site.inst.url, expect_regex="APP UP").run()

    assert by_name.ok, by_name.reason
    assert not default.ok
    assert default.values["content_failed"] == 1


def test_hung_apache_fails_within_the_timeout(
    apache_factory: Callable[..., ApacheUnderTest],
) -> None:
    site = apache_factory("hung")
    assert probe(site.inst.url, timeout=1).run().ok
    site.daemon.signal_group(signal.SIGSTOP)  # the whole process group, as in docs/lab.md section 5
    try:
        result = probe(site.inst.url, timeout=1).run()
    finally:
        site.daemon.signal_group(signal.SIGCONT)

    assert not result.ok
    assert result.reason.startswith("timeout: no answer from")
    assert result.values["status_code"] == 0


def test_connection_refused_is_a_failure_not_an_exception() -> None:
    result = probe("http://127.0.0.1:1/").run()

    assert not result.ok
    assert "Connection refused" in result.reason


@pytest.fixture
def tls_apache(
    apache_factory: Callable[..., ApacheUnderTest], lab_dir: Path
) -> tuple[ApacheUnderTest, str]:
    """An Apache serving HTTPS with a self-signed certificate; returns it and its https URL."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a self-signed certificate)")
    cert, key = lab_dir / "tls.crt", lab_dir / "tls.key"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=tls.lab.test", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    port = free_port("127.0.0.1")

    def https(inst: ApacheInstance) -> str:
        return f"""
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
Listen {inst.address}:{port} https
<VirtualHost {inst.address}:{port}>
  SSLEngine on
  SSLCertificateFile {cert}
  SSLCertificateKeyFile {key}
  DocumentRoot {inst.htdocs}
</VirtualHost>
"""

    site = apache_factory("tls", PAGES, https)
    return site, f"https://{site.inst.address}:{port}/health.php"


def test_tls_verification_on_by_default_and_can_be_switched_off(
    tls_apache: tuple[ApacheUnderTest, str],
) -> None:
    _, url = tls_apache
    verified = probe(url, expect_regex="DB OK").run()
    unverified = probe(url, expect_regex="DB OK", verify_tls=False).run()

    assert not verified.ok
    assert "TLS certificate verify failed: self-signed certificate" in verified.reason
    assert unverified.ok, unverified.reason


def test_a_trickling_body_is_cut_at_the_deadline() -> None:
    """A server sending one byte every 0.2 s never hits a per-read timeout; the deadline holds."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(100):  # bounded: at most 20 s, ended early by the probe's close
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        result = probe(url, expect_regex="never", timeout=1).run()
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()

    assert not result.ok
    assert result.reason == "timeout: body not read within 1 s"
    assert result.values == {"status_code": 200, "content_failed": 0}


def test_each_run_opens_its_own_connection_and_keeps_no_cookie() -> None:
    """The probe's session is kept across runs, but not a connection nor what a server set.

    The server answers without ``Connection: close`` and, like a busy one, closes the first
    connection late: only once the second request has come in (or after 5 s).  A second run on
    that first connection would wait for an answer that never comes and fail.
    """
    seen: list[tuple[int, str | None, str | None]] = []
    second_request = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive unless the client asks otherwise

        def do_GET(self) -> None:
            if seen:
                second_request.set()
            seen.append(
                (self.client_address[1], self.headers["Cookie"], self.headers["Connection"])
            )
            self.send_response(200)
            self.send_header("Set-Cookie", "session=abc; Path=/")
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"OK\n")
            self.wfile.flush()
            if len(seen) == 1:
                second_request.wait(timeout=5)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check = probe(f"http://127.0.0.1:{server.server_address[1]}/", expect_regex="OK")
        results = [check.run(), check.run()]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert all(r.ok for r in results), results
    assert len(seen) == 2
    (first_port, _, first_conn), (second_port, second_cookie, second_conn) = seen
    assert first_port != second_port
    assert second_cookie is None
    assert first_conn == second_conn == "close"


def test_redirects_are_followed_only_when_asked_with_the_cookies_they_set() -> None:
    """``/login`` sets a cookie and redirects (relative Location) to ``/app``, which answers 200
    only with that cookie; ``/loop`` redirects to itself forever."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/login":
                self.send_response(302)
                self.send_header("Set-Cookie", "ticket=t1; Path=/")
                self.send_header("Location", "app")
            elif self.path == "/loop":
                self.send_response(301)
                self.send_header("Location", "/loop")
            elif self.path == "/app" and self.headers["Cookie"] == "ticket=t1":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            else:
                self.send_response(403)
            body = f"{self.path}: APP UP\n".encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        not_followed = probe(f"{base}/login", expect_regex="APP UP").run()
        redirect_expected = probe(f"{base}/login", expect_status=[302]).run()
        followed = probe(f"{base}/login", expect_regex="/app: APP UP", follow_redirects=True)
        results = [followed.run(), followed.run()]
        endless = probe(f"{base}/loop", follow_redirects=True, timeout=3).run()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert not not_followed.ok
    assert not_followed.values == {"status_code": 302, "content_failed": 0}
    assert redirect_expected.ok, redirect_expected.reason
    assert all(r.ok for r in results), results
    assert not endless.ok
    assert endless.values["status_code"] == 0
    assert "redirects" in endless.reason
