"""The lab's console relay (gardien_lab/relay.py) without the lab: a tiny HTTP server in a
network namespace of the test's own, on an address of the lab's supernet that exists only there;
the inner side in that namespace, the outer one in the root namespace on loopback.

Network safety: the only TCP the test sends goes to 127.0.0.1; the relay's inner side reaches the
server inside the test's namespace; the targets it must refuse are refused before any connection.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gardien import exitcodes
from gardien.polling import wait_until
from gardien_lab import netns, relay
from gardien_lab.topology import Lab
from tests.support.exporter import free_port
from tests.support.netns import Node, have_root_and_netns

pytestmark = pytest.mark.skipif(not have_root_and_netns(), reason="needs root and netns")

SERVER = ipaddress.IPv4Address("10.99.250.1")
"""Inside the lab's supernet (so the inner side accepts it), far from the lab's own subnets;
it exists on the test namespace's loopback only."""
SERVER_PORT = 8080


def _relay(*args: str) -> list[str]:
    return [sys.executable, "-m", "gardien_lab.relay", *args]


def _stopped(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    return proc.wait(timeout=15)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Node, Path]]:
    """A namespace with the HTTP server (a 3 MiB file and a small page); removed at the end."""
    netns.guard(relay.SUPERNET)  # the lab's own guard route, idempotent: left as the lab has it
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.txt").write_text("relay test OK\n")
    (site / "big.bin").write_bytes(bytes(range(256)) * (3 * 4096))
    made = Node("relay")
    try:
        made.run(["ip", "link", "set", "lo", "up"])
        made.run(["ip", "addr", "add", f"{SERVER}/32", "dev", "lo"])
        made.popen(
            [sys.executable, "-m", "http.server", "--bind", str(SERVER), "--directory", str(site),
             str(SERVER_PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        served = ["curl", "-fsS", "-m", "2", f"http://{SERVER}:{SERVER_PORT}/hello.txt"]
        assert wait_until(lambda: made.run(served, check=False).returncode == 0, 30)
        yield made, tmp_path
    finally:
        made.destroy()


def test_a_request_goes_through_and_nothing_is_left_after_stop(node: tuple[Node, Path]) -> None:
    made, tmp = node
    sock = tmp / "console.sock"
    port = free_port()
    inner = made.popen(_relay("inner", str(sock), str(SERVER), str(SERVER_PORT)))
    assert wait_until(lambda: relay.answers(socket.AF_UNIX, str(sock)), 30)
    outer = subprocess.Popen(
        _relay("outer", f"127.0.0.1:{port}", str(sock)), start_new_session=True
    )
    try:
        assert wait_until(lambda: relay.answers(socket.AF_INET, ("127.0.0.1", port)), 30)
        with requests.Session() as browser:  # keep-alive: several requests on one connection
            browser.trust_env = False
            for _ in range(3):
                page = browser.get(f"http://127.0.0.1:{port}/hello.txt", timeout=10)
                assert page.status_code == 200
                assert page.text == "relay test OK\n"
            big = browser.get(f"http://127.0.0.1:{port}/big.bin", timeout=30)
            assert big.content == (tmp / "site" / "big.bin").read_bytes()
            missing = browser.get(f"http://127.0.0.1:{port}/nothing", timeout=10)
            assert missing.status_code == 404
    finally:
        codes = (_stopped(outer), _stopped(inner))
    assert codes == (exitcodes.OK, exitcodes.OK)
    assert not sock.exists()
    assert not relay.answers(socket.AF_INET, ("127.0.0.1", port))
    assert [p for p in made.processes() if b"gardien_lab.relay" in _cmdline(p)] == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_the_inner_side_refuses_a_target_outside_the_lab(node: tuple[Node, Path]) -> None:
    made, tmp = node
    sock = tmp / "refused.sock"
    for target in ("10.213.0.1", "192.0.2.1", "127.0.0.1", "::1", "localhost"):
        done = made.run(_relay("inner", str(sock), target, "80"), check=False)
        assert done.returncode == exitcodes.USAGE, target
        assert not sock.exists()


def test_the_outer_side_listens_on_loopback_only(tmp_path: Path) -> None:
    done = subprocess.run(
        _relay("outer", f"0.0.0.0:{free_port()}", str(tmp_path / "s.sock")),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == exitcodes.USAGE


def test_a_labs_outer_side_starts_once_and_stops_by_its_checked_pid_file(tmp_path: Path) -> None:
    """Without the lab's machines: the outer side alone, in the root namespace, as ``lab up``
    starts it and ``lab down`` stops it; a pid file naming another process stops nothing."""
    lab = Lab(name="relaytest", root=tmp_path)
    port = free_port()
    pid = relay.start_outer(lab, port)
    try:
        assert relay.start_outer(lab, port) == pid  # idempotent
        assert relay.outer_running(lab) == pid
        # no inner side (no mon): the console is not reachable, and says where its token is
        shown = relay.status(lab)
        assert shown["console (host)"].startswith("STOPPED")
        assert Path(shown["console token"]).is_relative_to(lab.dir)
    finally:
        relay.stop(lab)
    assert not netns.alive(pid)
    assert relay.outer_running(lab) is None
    assert not relay.answers(socket.AF_INET, ("127.0.0.1", port))
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (lab.dir / "run" / "root-relay.pid").write_text(f"{other.pid}\n")
        assert relay.outer_running(lab) is None
        relay.stop(lab)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(timeout=10)
