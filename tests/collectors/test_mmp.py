"""MMP collector on real images: ``dumpe2fs -h`` of sparse files made here (no root needed), read
at most every refresh period and cached in between."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.collectors.mmp import MmpCollector
from gardien.command_runner import CommandRunner
from tests.collectors.helpers import config, samples, value

pytestmark = pytest.mark.skipif(
    shutil.which("mkfs.ext4") is None or shutil.which("dumpe2fs") is None,
    reason="needs e2fsprogs",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _image(path: Path, *features: str) -> str:
    subprocess.run(["truncate", "-s", "8M", str(path)], check=True, timeout=30)
    subprocess.run(["mkfs.ext4", "-q", "-F", *features, str(path)], check=True, timeout=60)
    return str(path)


def test_every_volume_shows_its_mmp_state_read_once_per_refresh(tmp_path: Path) -> None:
    devices = {
        "shared": _image(tmp_path / "shared.img", "-O", "mmp", "-E", "mmp_update_interval=2"),
        "plain": _image(tmp_path / "plain.img"),
        "away": "/dev/disk/by-id/not-here",
    }
    groups = {
        name: {"nodes": ["n1"], "volume": {"device": device, "mountpoint": f"/srv/{name}"}}
        for name, device in devices.items()
    }
    runner, clock = CommandRunner(record=True), Clock()
    collector = MmpCollector(config(groups=groups), runner=runner, clock=clock, refresh=60)

    found = samples(collector.collect(10))

    def of(name: str, group: str) -> float:
        return value(found, f"gardien_group_volume_mmp_{name}", group=group, device=devices[group])

    facts = ("enabled", "readable", "update_interval_seconds")
    assert [of(n, "shared") for n in facts] == [1, 1, 2]
    assert of("mount_wait_seconds", "shared") == 0  # made clean: a mount would not wait
    assert [of(n, "plain") for n in facts] == [0, 1, 0]
    assert [of("enabled", "away"), of("readable", "away")] == [0, 0]  # exported all the same
    assert of("data_age_seconds", "shared") == 0
    reads = len(runner.ran)
    assert reads == 3

    clock.now += 30
    found = samples(collector.collect(10))
    assert len(runner.ran) == reads  # cached: no dumpe2fs within the refresh period
    assert of("data_age_seconds", "shared") == 30 and of("enabled", "shared") == 1

    clock.now += 31
    samples(collector.collect(10))
    assert len(runner.ran) == 2 * reads
