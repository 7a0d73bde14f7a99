"""Where the daemons listen by default: their node's address from the cluster config (the
cluster network), not every interface; ``--web.listen-address`` still decides when given."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import requests

from gardien.polling import wait_until
from tests.support.exporter import free_port, stop_process_group
from tests.support.hooks import REPO, HookPair


def listening(port: int) -> list[str]:
    """The local addresses listening on ``port`` (``ss``, read independently of the daemon)."""
    found = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], check=True, capture_output=True, text=True, timeout=10
    ).stdout
    return [line.split()[3] for line in found.splitlines()]


def gardien(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gardien.cli", *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
        )  # fmt: skip


def answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the daemon exited"
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=1).ok
    return False


def test_the_hook_listens_on_its_nodes_address(tmp_path: Path) -> None:
    pair = HookPair(tmp_path)  # node1 at 127.X.Y.1, node2 at 127.X.Y.2
    hook = gardien(
        "hook", "--config.file", str(pair.config_file), "--node", "node1",
        "--state-dir", str(tmp_path / "node1"), log=tmp_path / "hook.log",
    )  # fmt: skip
    try:
        assert wait_until(lambda: answers(pair.url("node1", "/-/healthy"), hook), 30)
        assert listening(pair.port) == [f"{pair.addresses['node1']}:{pair.port}"]
    finally:
        stop_process_group(hook)


def test_the_exporter_listens_on_the_address_of_its_node(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "cluster.yml"
    config.write_text(
        "cluster: t\nnodes: {node1: {address: 127.0.0.1}, node2: {address: 192.0.2.7}}\n"
        f"exporter: {{port: {port}}}\n"
    )
    exporter = gardien(
        "exporter", "--config.file", str(config), "--state-dir", str(tmp_path / "state"),
        log=tmp_path / "exporter.log",
    )  # fmt: skip
    try:
        assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/-/healthy", exporter), 30)
        assert listening(port) == [f"127.0.0.1:{port}"]
    finally:
        stop_process_group(exporter)


def test_an_exporter_on_a_host_of_no_node_needs_the_flag(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yml"
    config.write_text("cluster: t\nnodes: {node1: {address: 192.0.2.7}}\n")
    run = subprocess.run(
        [sys.executable, "-m", "gardien.cli", "exporter", "--config.file", str(config),
         "--state-dir", str(tmp_path / "state")],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "give --web.listen-address" in run.stderr
