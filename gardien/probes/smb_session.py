"""List the files of an SMB share in process (smbprotocol, SMB2/3), bounded by a deadline.

The probe does what ``smbclient //server/share -c ls`` did, without a child process: negotiate,
session setup, tree connect, open the folder and query it until the server says there are no more
files.  It only passes on those answers, never on a TCP connect (a frozen smbd still accepts
connections).

Two things smbprotocol does not do the way the probe needs:

* **The anonymous login is a null session**, as ``smbclient -N`` makes it.  pyspnego's NTLM has no
  anonymous credential ("Anonymous user authentication not implemented"), and logging in as
  ``Guest`` instead only works where the server maps bad users to guest.  :class:`_NullSession`
  sends the two NTLM messages of an anonymous login (MS-NLMP 3.1.5.1.2: empty user, empty NT
  response, LM response of one zero byte) through smbprotocol's own session setup messages.
* **Not every wait is bounded**: session setup, tree connect and query wait for their answer with
  no timeout.  The exchange therefore runs in a helper thread; at the deadline the caller shuts the
  connection's socket down, which ends smbprotocol's receiver thread, which wakes every waiting
  request, so the helper ends too (within milliseconds) and nothing outlives the check.

Credentials come from the probe's ``credentials_file`` (smbclient's ``-A`` format), read on every
run; the password goes to NTLM only, never to a log or a reason.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import struct
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smbprotocol.connection import Capabilities, Connection
from smbprotocol.exceptions import (
    MoreProcessingRequired,
    NoMoreFiles,
    NoSuchFile,
    SMBConnectionClosed,
    SMBException,
    SMBResponseException,
)
from smbprotocol.file_info import FileAttributes, FileInformationClass
from smbprotocol.header import NtStatus
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    ImpersonationLevel,
    Open,
    QueryDirectoryFlags,
    ShareAccess,
)
from smbprotocol.session import Session, SMB2SessionSetupRequest, SMB2SessionSetupResponse
from smbprotocol.tree import TreeConnect

# smbprotocol logs every connect, negotiate and login at INFO (several lines per check, the user
# name among them), at which level the exporter logs: keep the library's log to its warnings
for _library in ("smbprotocol", "spnego"):
    logging.getLogger(_library).setLevel(logging.WARNING)

_STATUS_NAMES = {
    value: name for name, value in vars(NtStatus).items() if name.startswith("STATUS_")
}
# what smbclient calls a failed connect (libsmb's map_nt_error_from_unix)
_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "NT_STATUS_CONNECTION_REFUSED",
    errno.EHOSTUNREACH: "NT_STATUS_HOST_UNREACHABLE",
    errno.ENETUNREACH: "NT_STATUS_NETWORK_UNREACHABLE",
    errno.ECONNRESET: "NT_STATUS_CONNECTION_RESET",
}
_SHARE_ALL = (
    ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
)
_TEARDOWN = 0.1
"""Seconds kept from the budget to shut a hung exchange down and see its thread end."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    domain: str = ""

    @property
    def ntlm_user(self) -> str:
        return f"{self.domain}\\{self.username}" if self.domain else self.username


def read_credentials(path: Path) -> Credentials:
    """The ``username =``, ``password =`` and ``domain =`` lines of an smbclient ``-A`` file."""
    keys: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            keys[key.strip().lower()] = value.strip()
    if not keys.get("username"):
        raise ValueError(f"{path}: no 'username =' line")
    return Credentials(keys["username"], keys.get("password", ""), keys.get("domain", ""))


@dataclass(frozen=True)
class ShareTarget:
    """What to list: ``share`` (or its ``directory``) on ``server:port``, as ``credentials``
    (None: the null session)."""

    server: str
    port: int
    share: str
    directory: str | None = None
    credentials: Credentials | None = None


class ShareListingError(Exception):
    """The server refused or did not answer; ``reason`` says so in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def count_entries(target: ShareTarget, timeout: float) -> int:
    """Files and folders in the target's folder, without ``.`` and ``..``.

    Returns within ``timeout`` seconds; raises :class:`ShareListingError` with the reason."""
    exchange = _Exchange(target, timeout)
    name = f"smb-{target.server}:{target.port}"
    helper = threading.Thread(target=exchange.run, name=name, daemon=True)
    helper.start()
    helper.join(max(timeout - _TEARDOWN, timeout / 2))
    if helper.is_alive():
        exchange.abandon()
        helper.join(_TEARDOWN)
        raise ShareListingError(f"no answer within {timeout:g} s")
    if isinstance(exchange.outcome, int):
        return exchange.outcome
    raise ShareListingError(exchange.outcome or "the listing ended without an outcome")


class _Exchange:
    """One connection's listing, run by the helper thread; :meth:`abandon` ends it from outside."""

    def __init__(self, target: ShareTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.outcome: int | str | None = None
        self.negotiated = False
        self._lock = threading.Lock()
        self._abandoned = False
        self._connection: Any = None

    def run(self) -> None:
        try:
            self.outcome = self._list()
        except SMBResponseException as exc:
            self.outcome = status_reason(exc.status)
        except ValueError as exc:  # smbprotocol's failed TCP connect
            self.outcome = connect_reason(exc, self.timeout)
        except SMBConnectionClosed:
            self.outcome = "the server closed the connection"
        except SMBException as exc:
            # before the negotiate's answer, smbprotocol fails only on its own receive timeout
            # (whole seconds, so it can fire just before the deadline)
            self.outcome = (
                f"{type(exc).__name__}: {str(exc)[:200]}"
                if self.negotiated
                else f"no answer within {self.timeout:g} s"
            )
        except Exception as exc:  # the helper thread must always leave an outcome
            self.outcome = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            self._close()

    def abandon(self) -> None:
        """Shut the socket down: smbprotocol's receiver sees the end of the stream and wakes every
        request waiting for an answer (shutdown, not close: the receiver closes it itself)."""
        with self._lock:
            self._abandoned = True
            sock = getattr(getattr(self._connection, "transport", None), "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the receiver
                sock.shutdown(socket.SHUT_RDWR)

    def _list(self) -> int:
        target, creds = self.target, self.target.credentials
        connection = Connection(
            uuid.uuid4(), target.server, target.port, require_signing=bool(creds)
        )
        with self._lock:
            if self._abandoned:
                return 0
            self._connection = connection
        connection.connect(timeout=self.timeout)
        self.negotiated = True
        if creds is None:
            session: Session = _NullSession(connection)
        else:
            session = Session(
                connection,
                creds.ntlm_user,
                creds.password,
                require_encryption=False,
                auth_protocol="ntlm",
            )
        session.connect()
        tree = TreeConnect(session, rf"\\{target.server}\{target.share}")
        tree.connect(require_secure_negotiate=creds is not None)
        folder = Open(tree, (target.directory or "").replace("/", "\\").strip("\\"))
        folder.create(
            ImpersonationLevel.Impersonation,
            DirectoryAccessMask.FILE_LIST_DIRECTORY,
            FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
            _SHARE_ALL,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE,
        )
        count = 0
        flags = QueryDirectoryFlags.SMB2_RESTART_SCANS
        while True:
            try:
                entries = folder.query_directory(
                    "*", FileInformationClass.FILE_NAMES_INFORMATION, flags=flags
                )
            except (NoMoreFiles, NoSuchFile):  # the two end codes (MS-SMB2 3.3.5.18)
                return count
            names = (e["file_name"].get_value().decode("utf-16-le") for e in entries)
            count += sum(1 for name in names if name not in (".", ".."))
            flags = 0

    def _close(self) -> None:
        """Drop the TCP connection; the server frees the session, tree and handle with it."""
        connection = self._connection
        if connection is not None and connection.transport is not None:
            connection.disconnect(close=False)


class _NullSession(Session):  # type: ignore[misc]
    """An anonymous (null) session, as ``smbclient -N`` logs in: no user, no password, no keys,
    so nothing is signed or encrypted (smbprotocol's own code paths for a null session)."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection, require_encryption=False, auth_protocol="ntlm")

    def connect(self) -> None:
        token = _NTLM_NEGOTIATE
        session_id = 0  # until the server's first answer gives it
        while True:
            setup = SMB2SessionSetupRequest()
            setup["capabilities"] = Capabilities.SMB2_GLOBAL_CAP_DFS
            setup["security_mode"] = self.connection.client_security_mode
            setup["buffer"] = token
            request = self.connection.send(setup, sid=session_id, credit_request=64)
            request_id = request.message["message_id"].get_value()
            try:
                response = self.connection.receive(request)
            except MoreProcessingRequired as exc:
                response = exc.header
            # only used to derive keys, which a null session has none of
            self.connection.preauth_integrity_session_hash_value.pop(request_id, None)
            session_id = session_id or int(response["session_id"].get_value())
            if response["status"].get_value() == NtStatus.STATUS_SUCCESS:
                break
            token = _ntlm_anonymous_authenticate(_challenge_flags(response))
        self.session_id = session_id
        self._connected = True
        self.connection.session_table[session_id] = self
        self.encrypt_data = False
        self.signing_required = False


# NTLM flags (MS-NLMP 2.2.2.5) an anonymous client offers: Unicode, target requested, NTLM,
# always sign (a flag, not signing), extended session security, 128 and 56 bit
_NTLM_FLAGS = 0x1 | 0x4 | 0x200 | 0x8000 | 0x80000 | 0x20000000 | 0x80000000
_NTLM_ANONYMOUS = 0x00000800
_NTLM_SIGNATURE = b"NTLMSSP\x00"
# NEGOTIATE_MESSAGE: signature, type 1, flags, empty domain and workstation fields
_NTLM_NEGOTIATE = _NTLM_SIGNATURE + struct.pack("<II8x8x", 1, _NTLM_FLAGS)


def _challenge_flags(response: Any) -> int:
    """The flags of the server's CHALLENGE_MESSAGE in a session setup answer."""
    setup = SMB2SessionSetupResponse()
    setup.unpack(response["data"].get_value())
    token: bytes = setup["buffer"].get_value()
    at = token.find(_NTLM_SIGNATURE)
    if at < 0 or len(token) < at + 24:
        raise SMBException("the server's session setup answer holds no NTLM challenge")
    flags: int = struct.unpack_from("<I", token, at + 20)[0]
    return flags


def _ntlm_anonymous_authenticate(challenge_flags: int) -> bytes:
    """AUTHENTICATE_MESSAGE of an anonymous login: an LM response of one zero byte, every other
    field empty (MS-NLMP 3.1.5.1.2)."""
    flags = (challenge_flags & _NTLM_FLAGS) | _NTLM_ANONYMOUS
    payload_at = 64  # signature 8, type 4, six fields of 8, flags 4
    empty = struct.pack("<HHI", 0, 0, payload_at + 1)
    lm = struct.pack("<HHI", 1, 1, payload_at)
    return (
        _NTLM_SIGNATURE
        + struct.pack("<I", 3)
        + lm
        + empty * 5  # NT response, domain, user, workstation, session key
        + struct.pack("<I", flags)
        + b"\x00"
    )


def status_reason(status: int) -> str:
    """An NT status as smbclient names it (``NT_STATUS_LOGON_FAILURE``)."""
    name = _STATUS_NAMES.get(status)
    return f"NT_{name}" if name else f"NT status 0x{status:08x}"


def connect_reason(exc: ValueError, timeout: float) -> str:
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve the server: {cause.strerror}"
    if isinstance(cause, OSError):
        return _CONNECT_ERRORS.get(cause.errno or 0, f"connect failed: {cause.strerror}")
    return str(exc)[:200]
