"""The node facts read from recorded kernel tables: mountinfo, loop backing files, /proc stat.

The mountinfo lines are real: the first two recorded on this project's Debian 12 machine, the
loop-device mount recorded there too (an ext4 image ``/tmp/hA-cap/vol a.img`` on /dev/loop0,
mounted on ``/tmp/hA-cap/san mnt``; its backing file read before and after the image was
deleted), and the line with an optional field is the example of the kernel's documentation
(Documentation/filesystems/proc.rst).
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from gardien.config.model import GroupConfig, VipConfig, VolumeConfig
from gardien.node import liveness
from gardien.node.addresses import on_interface, vip_present
from gardien.node.holding import Holdings
from gardien.node.mounts import (
    BackingFile,
    MountinfoError,
    MountTable,
    parse_line,
    read_mount_table,
)
from gardien.polling import wait_until

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
65 44 7:0 / /tmp/hA-cap/san\\040mnt rw,relatime - ext4 /dev/loop0 rw
36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
"""
BACKING = "/tmp/hA-cap/vol a.img\n"
BACKING_DELETED = "/tmp/hA-cap/vol a.img (deleted)\n"


def test_mountinfo_lines() -> None:
    proc, root, loop, documented = (parse_line(line) for line in MOUNTINFO.splitlines())

    assert (proc.device, proc.source, proc.mountpoint, proc.fstype) == (
        (0, 21),
        "proc",
        "/proc",
        "proc",
    )
    assert root.source == "/dev/vda1" and not root.read_only
    assert loop.mountpoint == "/tmp/hA-cap/san mnt"  # \040 is a space
    assert loop.device == (7, 0)
    assert (documented.mountpoint, documented.fstype, documented.source) == (
        "/mnt2",
        "ext3",
        "/dev/root",
    )


@pytest.mark.parametrize(
    "line",
    ["", "22 27 0:21 / /proc rw,relatime proc proc rw", "22 27 zero / /proc rw - proc proc rw"],
)
def test_a_line_of_another_format_is_refused(line: str) -> None:
    with pytest.raises(MountinfoError):
        parse_line(line)


def test_read_only_is_the_mount_or_the_superblock() -> None:
    per_mount = parse_line("140 131 7:6 / /srv/php4 ro,relatime - ext4 /dev/loop6 rw")
    superblock = parse_line("140 131 7:6 / /srv/php4 rw,relatime - ext4 /dev/loop6 ro")
    assert per_mount.read_only and superblock.read_only


def _roots(tmp_path: Path, backing: str | None) -> tuple[Path, Path]:
    proc, sys_root = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(MOUNTINFO + "not a mountinfo line\n")
    if backing is not None:
        loop = sys_root / "dev" / "block" / "7:0" / "loop"
        loop.mkdir(parents=True)
        (loop / "backing_file").write_text(backing)
    return proc, sys_root


@pytest.mark.parametrize(
    ("backing", "expected"),
    [
        (BACKING, BackingFile("/tmp/hA-cap/vol a.img", deleted=False)),
        (BACKING_DELETED, BackingFile("/tmp/hA-cap/vol a.img", deleted=True)),
        (None, None),
    ],
)
def test_a_loop_mount_carries_its_backing_file(
    tmp_path: Path, backing: str | None, expected: BackingFile | None
) -> None:
    table = read_mount_table(*_roots(tmp_path, backing))

    assert len(table.mounts) == 4  # the unreadable line skipped
    assert table.visible("/tmp/hA-cap/san mnt/") == table.mounts[2]
    assert table.mounts[2].backing_file == expected
    assert table.mounts[1].backing_file is None


def test_a_volume_given_by_its_image_file_matches_its_loop_device(tmp_path: Path) -> None:
    """The image is a file of the test's own folder: the recorded backing file names it."""
    image = tmp_path / "vol a.img"
    image.write_bytes(b"")
    proc, sys_root = _roots(tmp_path, f"{image}\n")
    by_image = VolumeConfig(device=str(image), mountpoint="/tmp/hA-cap/san mnt")
    elsewhere = VolumeConfig(device=str(image), mountpoint="/srv/other")

    table = read_mount_table(proc, sys_root)

    assert table.of_volume(by_image) is table.mounts[2]
    assert table.of_volume(elsewhere) is None
    assert table.from_device(str(image)) == [table.mounts[2]]
    # deleted (and a new file at that path since): the loop serves another file
    (sys_root / "dev/block/7:0/loop/backing_file").write_text(f"{image} (deleted)\n")
    assert read_mount_table(proc, sys_root).of_volume(by_image) is None


def test_a_device_that_does_not_exist_here_matches_by_its_path() -> None:
    """Filesystems with anonymous device numbers (btrfs, NFS) are known by their source."""
    table = MountTable([parse_line("70 27 0:99 / /srv/php4 rw - btrfs /dev/gardien-absent rw")])
    assert table.of_volume(VolumeConfig(device="/dev/gardien-absent", mountpoint="/srv/php4"))
    assert not table.of_volume(VolumeConfig(device="/dev/gardien-other", mountpoint="/srv/php4"))


def test_addresses_of_an_interface_and_its_labels() -> None:
    table = {
        "eth0": [ipaddress.ip_interface("10.213.0.1/24")],
        "eth0:vip": [ipaddress.ip_interface("10.213.0.41/32")],
        "eth01": [ipaddress.ip_interface("10.213.0.42/24")],
        "eth1": [],
    }
    assert on_interface("eth0", table) == [
        ipaddress.ip_interface("10.213.0.1/24"),
        ipaddress.ip_interface("10.213.0.41/32"),
    ]
    vip = VipConfig(address=ipaddress.ip_interface("10.213.0.41/24"), interface="eth0")
    assert vip_present(vip, table)  # another prefix length: the node answers for it all the same
    assert not vip_present(VipConfig(address=vip.address, interface="eth1"), table)
    elsewhere = VipConfig(address=ipaddress.ip_interface("10.213.0.42/24"), interface="eth0")
    assert not vip_present(elsewhere, table)  # eth01 is not a label of eth0


def test_a_group_without_volume_or_vip_is_held_by_its_marker() -> None:
    holdings = Holdings(MountTable(()), {}, frozenset({"java"}))
    bare = GroupConfig(nodes=("n1",))
    with_vip = GroupConfig(
        nodes=("n1",),
        vip=VipConfig(address=ipaddress.ip_interface("10.213.0.41/24"), interface="eth0"),
    )
    assert holdings.holds("java", bare) and not holdings.holds("batch", bare)
    assert not holdings.holds("java", with_vip)  # a marker does not make a VIP present


STAT = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0"


def test_stat_line_with_parentheses_in_the_command_name() -> None:
    process = liveness.parse_stat(4242, STAT)
    assert process == liveness.Process(4242, "S", 1, 987654)
    assert process.alive and not process.stopped
    assert liveness.parse_stat(1, "1 (init") is None


def _stat(pid: int, state: str, ppid: int, started: int) -> str:
    fields = [state, str(ppid), *["0"] * 17, str(started), "0"]
    return f"{pid} (p{pid}) {' '.join(fields)}\n"


def test_descendants_skip_an_older_process_on_a_reused_parent_pid(tmp_path: Path) -> None:
    for pid, state, ppid, started in [
        (100, "S", 1, 500),  # the master
        (101, "S", 100, 510),  # its worker
        (102, "Z", 101, 520),  # the worker's dead child, not reaped yet
        (103, "T", 100, 530),  # a stopped worker
        (90, "S", 100, 400),  # older than the master: a child of a former process on pid 100
    ]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(_stat(pid, state, ppid, started))

    found = {p.pid: p for p in liveness.descendants(100, tmp_path)}

    assert sorted(found) == [101, 102, 103]
    assert not found[102].alive and found[103].stopped
    master = liveness.read(100, tmp_path)
    assert master is not None and liveness.still_alive(master, tmp_path)
    (tmp_path / "100" / "stat").write_text(_stat(100, "S", 1, 900))  # pid 100 reused
    assert not liveness.still_alive(master, tmp_path)


def test_a_real_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])  # exits at once; not reaped until wait()
    try:
        assert wait_until(lambda: liveness.state(child.pid) == "Z", 10)
        assert not liveness.is_alive(child.pid)
        os.kill(child.pid, 0)  # what a kill -0 check would take for "running"
    finally:
        child.wait()
    assert liveness.state(child.pid) is None


def test_matching_finds_a_real_process_by_its_command_line() -> None:
    marker = f"gardien-liveness-{os.getpid()}"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        found = liveness.matching(re.compile(re.escape(marker)))
        assert [p.pid for p in found] == [sleeper.pid]
        assert liveness.same_network_namespace(sleeper.pid)
        assert liveness.cmdline(sleeper.pid).endswith(f"time.sleep(60) {marker}")
    finally:
        sleeper.kill()
        sleeper.wait()
