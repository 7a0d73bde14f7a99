"""Collectors pointed at recorded /proc and /sys files (their injectable roots): no root needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.collectors.base import ScrapeFacts
from exporter.collectors.vip import VipCollector
from exporter.collectors.volume import VolumeCollector
from gardien.node.mounts import read_mount_table
from gardien.node.reachability import link_up
from tests.collectors.helpers import config, samples, value

# the first two lines recorded on this project's Debian 12 machine; the group mounts written in the
# same format: a read-only mount of another device on top of a group volume, and a mountpoint
# containing a space
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
131 27 7:5 / /srv/php4 rw,relatime - ext4 /dev/loop5 rw
140 131 7:6 / /srv/php4 ro,relatime - ext4 /dev/loop6 ro
141 27 7:7 / /srv/my\\040sql rw,relatime - ext4 /dev/loop7 rw
"""


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "mountinfo").write_text(MOUNTINFO)
    return tmp_path / "proc"


def test_mount_table(proc_root: Path) -> None:
    mounts = read_mount_table(proc_root).mounts

    assert [m.mountpoint for m in mounts][-1] == "/srv/my sql"
    assert mounts[2].device == (7, 5)
    assert (mounts[2].read_only, mounts[3].read_only) == (False, True)


def group(device: str, mountpoint: str) -> dict[str, object]:
    return {"nodes": ["n1"], "volume": {"device": device, "mountpoint": mountpoint}}


def test_only_the_mount_on_top_counts(proc_root: Path, tmp_path: Path) -> None:
    cfg = config(
        groups={
            "php4": group("/dev/loop5", "/srv/php4"),  # hidden by loop6 mounted over it
            "mysql": group("/dev/loop7", "/srv/my sql"),
            "other": group("/dev/loop6", "/srv/php4/"),
        }
    )
    # the vip collector only reads the mount table (the volume collector would also touch the
    # filesystems at those paths on this machine)
    vip = VipCollector(cfg, proc_root=proc_root, sys_root=tmp_path / "sys", state_dir=tmp_path)

    active = samples(vip.collect(1))

    assert value(active, "gardien_group_active", group="php4") == 0
    assert value(active, "gardien_group_active", group="mysql") == 1
    assert value(active, "gardien_group_active", group="other") == 1


@pytest.mark.parametrize(
    ("operstate", "carrier", "expected"),
    [
        ("up", "1", True),
        ("unknown", "1", True),
        ("lowerlayerdown", "0", False),
        ("down", None, False),
    ],
)
def test_link_state(tmp_path: Path, operstate: str, carrier: str | None, expected: bool) -> None:
    interface = tmp_path / "class" / "net" / "eth0"
    interface.mkdir(parents=True)
    (interface / "operstate").write_text(operstate + "\n")
    if carrier is not None:  # the kernel refuses to read carrier of a down interface (EINVAL)
        (interface / "carrier").write_text(carrier + "\n")

    assert link_up("eth0", tmp_path) is expected
    assert link_up("eth1", tmp_path) is False


def test_unreadable_mount_table_reports_every_volume_down(tmp_path: Path) -> None:
    cfg = config(groups={"php4": group("/dev/loop5", "/srv/php4")})
    collector = VolumeCollector(cfg, proc_root=tmp_path / "absent", sys_root=tmp_path)

    found = samples(collector.collect(1))

    labels = {"group": "php4", "device": "/dev/loop5", "mountpoint": "/srv/php4"}
    assert value(found, "gardien_group_volume_mounted", **labels) == 0
    assert value(found, "gardien_group_volume_writable", group="php4") == 0


def test_the_collectors_of_one_scrape_share_one_mount_table(
    proc_root: Path, tmp_path: Path
) -> None:
    """The scrape's facts are read once: the volume collector judges from the table the vip
    collector read, though the file changed in between; a new scrape reads it again."""
    where = tmp_path / "never-made"  # nothing at the mountpoint: the volume check touches nothing
    mountinfo = proc_root / "self" / "mountinfo"
    mountinfo.write_text(MOUNTINFO + f"150 27 7:8 / {where} rw,relatime - ext4 /dev/loop8 rw\n")
    cfg = config(groups={"g": group("/dev/loop8", str(where))})
    roots = {"proc_root": proc_root, "sys_root": tmp_path / "sys"}
    vip = VipCollector(cfg, state_dir=tmp_path, **roots)
    volume = VolumeCollector(cfg, **roots)
    facts = ScrapeFacts()

    assert value(samples(vip.collect(1, facts)), "gardien_group_active", group="g") == 1
    mountinfo.write_text(MOUNTINFO)  # unmounted after the vip collector's reading
    labels = {"group": "g", "device": "/dev/loop8", "mountpoint": str(where)}
    same_scrape = samples(volume.collect(1, facts))
    next_scrape = samples(volume.collect(1, ScrapeFacts()))

    assert value(same_scrape, "gardien_group_volume_mounted", **labels) == 1
    assert value(same_scrape, "gardien_group_volume_writable", group="g") == 0  # no such folder
    assert value(next_scrape, "gardien_group_volume_mounted", **labels) == 0


def test_a_failed_reading_is_not_kept_for_the_scrape() -> None:
    facts = ScrapeFacts()
    answers = iter([OSError("busy"), "table"])

    def read() -> str:
        answer = next(answers)
        if isinstance(answer, OSError):
            raise answer
        return answer

    with pytest.raises(OSError, match="busy"):
        facts.once("mounts", read)
    assert facts.once("mounts", read) == "table"
    assert facts.once("mounts", read) == "table"  # read once: the iterator would be exhausted
