"""ext4 MMP as gardien reads it: recorded ``dumpe2fs -h`` output (e2fsprogs 1.47.0, in
``tests/fixtures/dumpe2fs``), the kernel's wait, and ``check-config``'s machine checks on real
images made here (``mkfs.ext4`` on sparse files: no root needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gardien import exitcodes
from gardien.command_runner import CommandRunner
from gardien.config import VolumeConfig
from gardien.node.mmp import (
    MmpProblem,
    MmpSequence,
    check_wait,
    parse_dumpe2fs,
    problem_of,
    read_mmp,
    unclean_mount_wait,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "dumpe2fs"
REPO = Path(__file__).parents[2]

needs_mkfs = pytest.mark.skipif(
    shutil.which("mkfs.ext4") is None or shutil.which("dumpe2fs") is None,
    reason="needs e2fsprogs",
)


def test_a_clean_mmp_block_is_read_with_its_interval_and_last_writer() -> None:
    found = parse_dumpe2fs("/dev/x", (FIXTURES / "mmp-clean.txt").read_text())
    assert found.readable and found.enabled
    assert (found.update_interval, found.block, found.check_interval) == (1, 1618, 5)
    assert found.sequence is MmpSequence.CLEAN
    assert found.last_node == "vm" and found.last_device == "loop6"
    assert found.last_update == 1796126327
    assert found.mount_wait() == 0.0


def test_a_block_left_active_makes_the_mount_wait_two_checks() -> None:
    """Captured while another loop device had it mounted (the on-disk state a crash leaves)."""
    found = parse_dumpe2fs("/dev/x", (FIXTURES / "mmp-in-use.txt").read_text())
    assert found.sequence is MmpSequence.ACTIVE
    assert found.last_device == "loop5"
    assert found.mount_wait() == 22.0  # 2 x (2 x 5 + 1): measured 22.0 s, docs/config.md


def test_a_filesystem_without_mmp_and_an_unreadable_device() -> None:
    plain = parse_dumpe2fs("/dev/x", (FIXTURES / "no-mmp.txt").read_text())
    assert plain.readable and not plain.enabled and plain.update_interval is None
    assert not parse_dumpe2fs("/dev/x", "dumpe2fs 1.47.0 (5-Feb-2023)\n").readable
    missing = read_mmp("/nonexistent/device", CommandRunner())
    assert not missing.readable and "No such file" in missing.reason


def test_the_kernels_wait() -> None:
    assert check_wait(1) == check_wait(5) == 11.0  # never under 5 s between checks
    assert check_wait(10) == 21.0
    assert check_wait(100) == 160.0  # at most the interval plus 60 s
    assert check_wait(1, check_interval=8) == 17.0  # a slow holder's recorded interval counts
    assert unclean_mount_wait(5) == 22.0


def test_what_makes_a_device_unfit() -> None:
    volume = VolumeConfig(device="/dev/x", mountpoint="/srv/x", mmp=True, mmp_update_interval=1)
    fit = parse_dumpe2fs("/dev/x", (FIXTURES / "mmp-clean.txt").read_text())
    assert problem_of(volume, fit) is None
    plain = parse_dumpe2fs("/dev/x", (FIXTURES / "no-mmp.txt").read_text())
    assert problem_of(volume, plain) is MmpProblem.NOT_ENABLED
    assert problem_of(volume, read_mmp("/nonexistent", CommandRunner())) is MmpProblem.UNREADABLE
    slow = parse_dumpe2fs(
        "/dev/x",
        (FIXTURES / "mmp-clean.txt")
        .read_text()
        .replace("MMP update interval:      1", "MMP update interval:      30"),
    )
    assert problem_of(volume, slow) is MmpProblem.INTERVAL_TOO_LONG
    # up to 5 s every interval waits the same: a device at 5 s does for a config saying 1
    five = parse_dumpe2fs(
        "/dev/x",
        (FIXTURES / "mmp-clean.txt")
        .read_text()
        .replace("MMP update interval:      1", "MMP update interval:      5"),
    )
    assert problem_of(volume, five) is None


def _image(path: Path, *features: str) -> Path:
    subprocess.run(["truncate", "-s", "8M", str(path)], check=True, timeout=30)
    subprocess.run(["mkfs.ext4", "-q", "-F", *features, str(path)], check=True, timeout=60)
    return path


@needs_mkfs
def test_check_config_keeps_file_and_machine_checks_apart(tmp_path: Path) -> None:
    good = _image(tmp_path / "good.img", "-O", "mmp", "-E", "mmp_update_interval=1")
    plain = _image(tmp_path / "plain.img")
    config = tmp_path / "cluster.yml"
    config.write_text(
        "cluster: test\n"
        "nodes:\n"
        "  node1: {address: 127.0.0.1}\n"
        "groups:\n"
        "  good:\n"
        "    nodes: [node1]\n"
        f"    volume: {{device: {good}, mountpoint: /srv/good, mmp: true}}\n"
        "  plain:\n"
        "    nodes: [node1]\n"
        "    volume:\n"
        f"      device: {plain}\n"
        "      mountpoint: /srv/plain\n"
        "      mmp: true\n"
        "  away:\n"
        "    nodes: [node1]\n"
        "    volume: {device: /dev/disk/by-id/not-here, mountpoint: /srv/away, mmp: true}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gardien.cli", "check-config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == exitcodes.CONFIG_INVALID, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith(f"{config}: valid: ")  # the file checks pass
    assert out[1].startswith("machine checks (") and "3 volume(s)" in out[1], out
    assert f"groups.good.volume: {good} has MMP, updated every 1 s" in result.stdout
    assert "groups.away.volume: /dev/disk/by-id/not-here not here: not checked" in result.stdout
    problems = result.stderr.strip().splitlines()
    assert len(problems) == 1, problems  # the device that is not here is not a problem
    assert problems[0].startswith(f"{config}: line 13: groups.plain.volume.mmp: on this machine:")
    assert f"tune2fs -O mmp -E mmp_update_interval=5 {plain}" in problems[0]
