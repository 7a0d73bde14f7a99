"""smb probe against a real smbd on a test node: anonymous and authenticated listings, refusals,
and a frozen smbd that must not hang the probe.

A share listing runs in the test's process (smbprotocol): :meth:`SmbServer.check` runs it from a
thread that entered the node's network namespace, where smbd listens on 127.0.0.1.  A server
listing runs smbclient on the node through the runner's ``nsenter`` prefix."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gardien.command_runner import CommandRunner
from gardien.polling import wait_until
from gardien.probes import smb_session
from gardien.probes.base import ProbeResult
from gardien.probes.smb import SmbParams, SmbProbe
from gardien_lab.daemons.samba import Share, SmbdInstance
from gardien_lab.freeze import freeze, thaw
from tests.support.netns import Node, have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]

USER = "gardienprobe"
PASSWORD = "S3cret-probe!"


@dataclass(frozen=True)
class SmbServer:
    node: Node
    smbd: subprocess.Popen[bytes]
    cred_dir: Path

    def probe(self, timeout: float = 10.0, **params: object) -> tuple[SmbProbe, CommandRunner]:
        runner = CommandRunner(self.node.prefix(), record=True)
        probe = SmbProbe(
            SmbParams.model_validate({"server": "127.0.0.1", "timeout": timeout, **params}),
            runner=runner,
        )
        return probe, runner

    def check(self, probe: SmbProbe) -> ProbeResult:
        """``probe.run()`` from this thread, entered in the node's network namespace."""
        with self.node.entered():
            return probe.run()

    def credentials(self, password: str) -> Path:
        path = self.cred_dir / f"cred-{len(list(self.cred_dir.iterdir()))}"
        path.write_text(f"username = {USER}\npassword = {password}\ndomain = GARDIEN\n")
        path.chmod(0o600)
        return path


def private_passwd(node: Node, folder: Path) -> None:
    """Give the node an /etc/passwd with the test user (root namespace untouched)."""
    passwd = folder / "passwd"
    passwd.write_text(
        Path("/etc/passwd").read_text()
        + f"{USER}:x:64123:65534:gardien probe:/nonexistent:/usr/sbin/nologin\n"
    )
    passwd.chmod(0o644)
    node.run(["mount", "--bind", str(passwd), "/etc/passwd"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmbServer]:
    tmp = tmp_path_factory.mktemp("smb")
    node = Node("smb")
    smbd: subprocess.Popen[bytes] | None = None
    try:
        node.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=755", "tmpfs", "/run/samba"])
        private_passwd(node, tmp)
        instance = SmbdInstance(
            base_dir=tmp / "smbd",
            address="127.0.0.1",
            shares=(
                Share("pub", tmp / "pub", force_user="root"),
                Share("priv", tmp / "priv", guest_ok=False, valid_users=(USER,), force_user="root"),
            ),
        )
        instance.write_config()
        for name in ("a.txt", "b.txt", "sub/c", "sub/d"):
            (tmp / "pub" / name).parent.mkdir(exist_ok=True)
            (tmp / "pub" / name).write_text("x")
        (tmp / "priv" / "secret.txt").write_text("x")
        node.run(instance.add_user_argv(USER), input=f"{PASSWORD}\n{PASSWORD}\n")
        smbd = node.popen(
            instance.foreground_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        instance.wait_ready(prefix=node.prefix())
        cred_dir = tmp / "cred"
        cred_dir.mkdir()
        yield SmbServer(node, smbd, cred_dir)
    finally:
        node.destroy()
        if smbd is not None:
            smbd.wait(timeout=5)


def test_lists_shares_anonymously(server: SmbServer) -> None:
    probe, runner = server.probe()
    result = probe.run()
    assert result.ok, result.reason
    assert result.values == {"shares": 3}  # pub, priv, IPC$
    assert "-N" in runner.results[0].argv


def test_lists_one_share_anonymously(server: SmbServer) -> None:
    probe, runner = server.probe(share="pub")
    result = server.check(probe)
    assert result.ok, result.reason
    assert result.values == {"entries": 3}
    assert runner.results == []  # in process: the runner ran nothing


def test_lists_a_folder_of_a_share(server: SmbServer) -> None:
    result = server.check(server.probe(share="pub", directory="sub")[0])
    assert result.ok, result.reason
    assert result.values == {"entries": 2}


def test_no_server_fails(server: SmbServer) -> None:
    result = server.probe(port=1)[0].run()
    assert not result.ok
    assert result.reason == "NT_STATUS_CONNECTION_REFUSED"


def test_lists_a_share_with_a_credentials_file(server: SmbServer) -> None:
    cred = server.credentials(PASSWORD)
    probe, runner = server.probe(share="priv", credentials_file=str(cred))
    result = server.check(probe)
    assert result.ok, result.reason
    assert result.values == {"entries": 1}
    assert runner.results == []  # no argv at all, so no password in one


def test_a_share_listing_logs_neither_the_password_nor_a_line_per_check(
    server: SmbServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The exporter logs at INFO; smbprotocol would log every connect and login there."""
    caplog.set_level(logging.INFO)
    for password in (PASSWORD, "wrong"):
        probe = server.probe(share="priv", credentials_file=str(server.credentials(password)))[0]
        server.check(probe)
    assert PASSWORD not in caplog.text
    assert [r.name for r in caplog.records if r.name.startswith(("smbprotocol", "spnego"))] == []


def test_wrong_password_fails(server: SmbServer) -> None:
    probe = server.probe(share="priv", credentials_file=str(server.credentials("wrong")))[0]
    result = server.check(probe)
    assert not result.ok
    assert result.reason == "NT_STATUS_LOGON_FAILURE"
    assert "wrong" not in result.reason


def test_guest_refused_on_a_private_share(server: SmbServer) -> None:
    result = server.check(server.probe(share="priv")[0])
    assert not result.ok
    assert result.reason.startswith("NT_STATUS_")


def test_missing_share_fails(server: SmbServer) -> None:
    result = server.check(server.probe(share="nosuch")[0])
    assert not result.ok
    assert result.reason == "NT_STATUS_BAD_NETWORK_NAME"


def test_frozen_smbd_fails_within_the_timeout(server: SmbServer) -> None:
    """A SIGSTOPped smbd still accepts TCP connections; the probe must kill smbclient and fail."""
    probe, runner = server.probe(timeout=2.0)
    freeze(server.smbd.pid)
    try:
        result = probe.run()
    finally:
        os.kill(server.smbd.pid, signal.SIGCONT)
    assert not result.ok
    assert "killed" in result.reason
    (ran,) = runner.results
    assert ran.timed_out
    assert not Path(f"/proc/{ran.pid}").exists()  # killed and reaped
    assert not any("smbclient" in _cmdline(pid) for pid in server.node.processes())
    # and the server answers again once resumed
    assert server.probe()[0].run().ok


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_frozen_smbd_fails_a_share_listing_within_the_timeout(server: SmbServer) -> None:
    """In process, against a SIGSTOPped smbd that accepts TCP and never answers: each check fails
    by its deadline, starts no child process, and leaves no thread or fd behind."""
    probe, runner = server.probe(timeout=1.0, share="pub")
    freeze(server.smbd.pid)
    try:
        _hung_checks(server, probe)
    finally:
        os.kill(server.smbd.pid, signal.SIGCONT)
    assert runner.results == []
    assert server.check(probe).ok  # and the server answers again once resumed


def test_smbd_frozen_after_the_negotiate_fails_a_share_listing_within_the_timeout(
    server: SmbServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """smbd (and its connection's process) frozen once it answered the negotiate: smbprotocol
    waits for the session setup's answer without a timeout, so only the probe's deadline (which
    shuts the socket down) ends the check and its threads."""
    probe = server.probe(timeout=1.0, share="pub")[0]
    session_setup = smb_session._NullSession.connect

    def frozen_first(session: smb_session._NullSession) -> None:
        freeze(server.smbd.pid, group=True)  # smbd, its helpers, the connection's child
        session_setup(session)

    monkeypatch.setattr(smb_session._NullSession, "connect", frozen_first)
    try:
        _hung_checks(server, probe)
    finally:
        thaw(server.smbd.pid, group=True)
    monkeypatch.undo()
    assert server.check(probe).ok


def _hung_checks(server: SmbServer, probe: SmbProbe) -> None:
    """Run HUNG_CHECKS checks that cannot get an answer, each from a thread while this one reads
    /proc: each fails at its deadline, none starts a child process, and afterwards this process
    holds no more threads or file descriptors than before."""
    before = _threads_and_fds()
    children_before = _children()
    new_children: set[int] = set()
    results: list[ProbeResult] = []
    for _ in range(HUNG_CHECKS):
        worker = threading.Thread(target=lambda: results.append(server.check(probe)))
        worker.start()
        for _ in range(100):  # 5 s at most; the check ends after its timeout
            new_children |= _children() - children_before
            worker.join(0.05)
            if not worker.is_alive():
                break
        assert not worker.is_alive()
    timeout = probe.params.timeout
    assert [r.reason for r in results] == [f"no answer within {timeout:g} s"] * HUNG_CHECKS
    assert all(r.duration <= timeout + 0.5 for r in results)  # by the deadline, not 600 s later
    assert new_children == set()
    assert wait_until(lambda: _no_more_than(before), 5), (_threads_and_fds(), before)


HUNG_CHECKS = 5


def test_killed_smbd_fails_a_share_listing(server: SmbServer, tmp_path: Path) -> None:
    """A second smbd on the node lists its share in process until SIGKILLed, then is refused."""
    instance = SmbdInstance(
        base_dir=tmp_path / "smbd",
        address="127.0.0.1",
        port=1445,
        shares=(Share("pub", tmp_path / "pub", force_user="root"),),
    )
    instance.write_config()
    out = subprocess.DEVNULL
    smbd = server.node.popen(instance.foreground_argv(), stdout=out, stderr=out)
    probe = server.probe(share="pub", port=1445)[0]
    try:
        assert wait_until(lambda: server.check(probe).ok, 15)
    finally:
        smbd.kill()
        smbd.wait(timeout=5)
    result = server.check(probe)
    assert not result.ok
    assert result.reason == "NT_STATUS_CONNECTION_REFUSED"


def _children() -> set[int]:
    """Every child process of this process, whichever of its threads started it."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids |= {int(pid) for pid in (task / "children").read_text().split()}
    return pids


def _threads_and_fds() -> tuple[int, int]:
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def _no_more_than(before: tuple[int, int]) -> bool:
    threads, fds = _threads_and_fds()
    return threads <= before[0] and fds <= before[1]
