"""ldap probe against a real slapd on a loopback port: anonymous and DN binds, searches, ldaps
with and without certificate verification, refusals, and a frozen slapd."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gardien.probes.ldap import LdapParams, LdapProbe
from gardien_lab.daemons.slapd import LdapUser, SlapdInstance
from gardien_lab.freeze import freeze

pytestmark = pytest.mark.skipif(
    shutil.which("slapd") is None or shutil.which("openssl") is None,
    reason="needs Debian's slapd and openssl",
)

PASSWORD = "Ld4p-probe!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Ldap:
    instance: SlapdInstance
    slapd: subprocess.Popen[bytes]
    ca_file: Path
    folder: Path

    def password_file(self, password: str) -> Path:
        path = self.folder / f"pw-{len(list(self.folder.glob('pw-*')))}"
        path.write_text(password + "\n")
        path.chmod(0o600)
        return path

    def probe(self, **params: object) -> LdapProbe:
        values = {"url": self.instance.url, "timeout": 10, **params}
        return LdapProbe(LdapParams.model_validate(values))


@pytest.fixture(scope="module")
def ldap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ldap]:
    tmp = tmp_path_factory.mktemp("ldap")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    instance = SlapdInstance(
        base_dir=tmp / "slapd",
        port=free_port(),
        ldaps_port=free_port(),
        tls_cert=cert,
        tls_key=key,
        users=(LdapUser("probe", PASSWORD), LdapUser("alice", "alice-pw")),
    )
    instance.write_config()
    subprocess.run(instance.load_argv(), check=True, capture_output=True, timeout=30)
    slapd = subprocess.Popen(
        instance.foreground_argv(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        instance.wait_ready()
        yield Ldap(instance, slapd, cert, tmp)
    finally:
        os.kill(slapd.pid, signal.SIGCONT)
        slapd.terminate()
        try:
            slapd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            slapd.kill()
            slapd.wait()


def test_anonymous_bind_reads_the_root_dse(ldap: Ldap) -> None:
    result = ldap.probe().run()
    assert result.ok, result.reason
    assert result.values == {"entries": 1}


def test_bind_as_a_dn_and_search_a_subtree(ldap: Ldap) -> None:
    result = ldap.probe(
        bind_dn=ldap.instance.user_dn("probe"),
        password_file=str(ldap.password_file(PASSWORD)),
        base=ldap.instance.suffix,
        scope="sub",
        filter="(objectClass=inetOrgPerson)",
        min_entries=2,
    ).run()
    assert result.ok, result.reason
    assert result.values == {"entries": 2}


def test_wrong_password_fails(ldap: Ldap) -> None:
    result = ldap.probe(
        bind_dn=ldap.instance.user_dn("probe"), password_file=str(ldap.password_file("nope"))
    ).run()
    assert not result.ok
    assert result.reason.startswith("bind failed: invalidCredentials")


def test_too_few_entries_fails(ldap: Ldap) -> None:
    result = ldap.probe(base=ldap.instance.suffix, scope="sub", filter="(uid=nobody)").run()
    assert not result.ok
    assert result.reason == "search found 0 entries, expected at least 1"
    assert result.values == {"entries": 0}


def test_missing_base_fails(ldap: Ldap) -> None:
    result = ldap.probe(base="ou=nowhere,dc=gardien,dc=test").run()
    assert not result.ok
    assert result.reason.startswith("search failed: noSuchObject")


def ldaps_url(ldap: Ldap) -> str:
    return f"ldaps://localhost:{ldap.instance.ldaps_port}"


def test_ldaps_verified_with_the_ca_file(ldap: Ldap) -> None:
    result = ldap.probe(url=ldaps_url(ldap), ca_file=str(ldap.ca_file)).run()
    assert result.ok, result.reason


def test_ldaps_with_an_unknown_ca_fails_unless_verification_is_off(ldap: Ldap) -> None:
    refused = ldap.probe(url=ldaps_url(ldap)).run()
    assert not refused.ok
    assert "certificate verify failed" in refused.reason
    assert ldap.probe(url=ldaps_url(ldap), verify_tls=False).run().ok


def test_start_tls(ldap: Ldap) -> None:
    result = ldap.probe(
        start_tls=True, ca_file=str(ldap.ca_file), url=f"ldap://localhost:{ldap.instance.port}"
    ).run()
    assert result.ok, result.reason


def test_bind_dn_needs_a_password_file() -> None:
    with pytest.raises(ValueError, match="both 'bind_dn' and 'password_file'"):
        LdapParams.model_validate({"url": "ldap://127.0.0.1", "bind_dn": "cn=x"})


def test_frozen_slapd_fails_within_the_timeout(ldap: Ldap) -> None:
    """A SIGSTOPped slapd still accepts TCP connections; only the missing answer tells."""
    probe = ldap.probe(timeout=1.5)
    freeze(ldap.slapd.pid)
    try:
        result = probe.run()
    finally:
        os.kill(ldap.slapd.pid, signal.SIGCONT)
    assert not result.ok
    assert "timed out" in result.reason, result.reason
    assert ldap.probe().run().ok


def test_no_server_fails(ldap: Ldap) -> None:
    result = ldap.probe(url=f"ldap://127.0.0.1:{free_port()}").run()
    assert not result.ok
    assert result.reason.startswith("LDAPSocketOpenError")
