"""The in-process SMB client's pure parts: the credentials file, the anonymous NTLM message and
the names of NT statuses (the exchange runs against a real smbd in tests/probes/test_smb.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gardien.probes.smb_session import (
    Credentials,
    _ntlm_anonymous_authenticate,
    read_credentials,
    status_reason,
)


def test_reads_an_smbclient_authentication_file(tmp_path: Path) -> None:
    path = tmp_path / "cred"
    path.write_text("username = svc-probe\npassword =  p=a ss \n\ndomain=INTRANET\n")
    creds = read_credentials(path)
    assert creds == Credentials("svc-probe", "p=a ss", "INTRANET")
    assert creds.ntlm_user == "INTRANET\\svc-probe"


def test_a_file_without_a_domain_logs_in_without_one(tmp_path: Path) -> None:
    path = tmp_path / "cred"
    path.write_text("username = svc-probe\npassword = x\n")
    assert read_credentials(path).ntlm_user == "svc-probe"


def test_a_file_without_a_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cred"
    path.write_text("password = secret\n")
    with pytest.raises(ValueError, match="username") as refused:
        read_credentials(path)
    assert "secret" not in str(refused.value)


def test_the_anonymous_authenticate_message_has_no_user_and_an_lm_response_of_one_zero() -> None:
    token = _ntlm_anonymous_authenticate(0xE2898215)
    assert token[:12] == b"NTLMSSP\x00" + struct.pack("<I", 3)
    fields = [struct.unpack_from("<HHI", token, 12 + 8 * i) for i in range(6)]
    lm, nt, domain, user, workstation, key = fields
    assert lm == (1, 1, 64) and token[64:] == b"\x00"
    assert all(length == 0 for length, _, _ in (nt, domain, user, workstation, key))
    (flags,) = struct.unpack_from("<I", token, 60)
    assert flags & 0x800  # NTLMSSP_NEGOTIATE_ANONYMOUS
    assert not flags & 0x40000000  # no key exchange: a null session has no key


def test_nt_statuses_are_named_as_smbclient_names_them() -> None:
    assert status_reason(0xC000006D) == "NT_STATUS_LOGON_FAILURE"
    assert status_reason(0xC00000CC) == "NT_STATUS_BAD_NETWORK_NAME"
    assert status_reason(0xC0000022) == "NT_STATUS_ACCESS_DENIED"
    assert status_reason(0xC0FFEE00) == "NT status 0xc0ffee00"
