"""smb probe against a real smbd on a test node: anonymous and authenticated listings, refusals,
and a frozen smbd that must not hang the probe."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gardien.command_runner import CommandRunner
from gardien.probes.smb import SmbParams, SmbProbe
from gardien_lab.daemons.samba import Share, SmbdInstance
from gardien_lab.freeze import freeze
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
    result = server.probe(share="pub")[0].run()
    assert result.ok, result.reason
    assert result.values == {"entries": 3}


def test_lists_a_folder_of_a_share(server: SmbServer) -> None:
    result = server.probe(share="pub", directory="sub")[0].run()
    assert result.ok, result.reason
    assert result.values == {"entries": 2}


def test_no_server_fails(server: SmbServer) -> None:
    result = server.probe(port=1)[0].run()
    assert not result.ok
    assert result.reason == "NT_STATUS_CONNECTION_REFUSED"


def test_lists_a_share_with_a_credentials_file(server: SmbServer) -> None:
    cred = server.credentials(PASSWORD)
    probe, runner = server.probe(share="priv", credentials_file=str(cred))
    result = probe.run()
    assert result.ok, result.reason
    assert result.values == {"entries": 1}
    assert PASSWORD not in " ".join(runner.results[0].argv)
    assert str(cred) in runner.results[0].argv


def test_wrong_password_fails(server: SmbServer) -> None:
    result = server.probe(share="priv", credentials_file=str(server.credentials("wrong")))[0].run()
    assert not result.ok
    assert result.reason == "NT_STATUS_LOGON_FAILURE"


def test_guest_refused_on_a_private_share(server: SmbServer) -> None:
    result = server.probe(share="priv")[0].run()
    assert not result.ok
    assert result.reason.startswith("NT_STATUS_")


def test_missing_share_fails(server: SmbServer) -> None:
    result = server.probe(share="nosuch")[0].run()
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
