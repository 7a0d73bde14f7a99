"""Volume collector on real ext4 images on loop devices, mounted on a test node.

The mounts live in the node's private mount namespace (a mount in the root namespace would be
copied into every namespace other tests create meanwhile, keeping the loop device busy), and the
collector runs inside the node, as the exporter does in production.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.collectors.volume import WRITE_TEST_FILE
from tests.collectors.helpers import Samples, config_data, session_on_node, value
from tests.support.netns import Node, have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    made = Node("vol")
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Path, str]]]:
    """Two ext4 images, each on its own loop device."""
    folder = tmp_path_factory.mktemp("images")
    made: list[tuple[Path, str]] = []
    try:
        for name in ("a", "b"):
            image = folder / f"{name}.img"
            run("truncate", "-s", "32M", str(image))
            run("mkfs.ext4", "-q", "-F", "-L", name, str(image))
            made.append((image, run("losetup", "-f", "--show", str(image)).strip()))
        yield made
    finally:
        for _, loop in made:
            subprocess.run(["losetup", "-d", loop], check=False, timeout=30)


@contextlib.contextmanager
def mounted(node: Node, device: str, mountpoint: Path) -> Iterator[None]:
    node.run(["mount", device, str(mountpoint)])
    try:
        yield
    finally:
        node.run(["fsfreeze", "--unfreeze", str(mountpoint)], check=False)
        node.run(["umount", str(mountpoint)], check=False)


@pytest.fixture
def mountpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "san mnt"  # mountinfo escapes the space as \040
    folder.mkdir()
    return folder


def scrapes(
    node: Node, device: str, mountpoint: Path, tmp: Path, steps: list[tuple[str, Any]]
) -> list[Samples]:
    volume = {"device": device, "mountpoint": str(mountpoint)}
    data = config_data(groups={"g1": {"nodes": ["n1"], "volume": volume}})
    return session_on_node(node, data, "volume", tmp, steps)


def scrape(node: Node, device: str, mountpoint: Path, tmp: Path) -> Samples:
    return scrapes(node, device, mountpoint, tmp, [("collect", 5)])[0]


def volume(found: Samples, metric: str) -> float:
    return value(found, f"gardien_group_volume_{metric}", group="g1")


def is_mounted(found: Samples, device: str, mountpoint: Path) -> float:
    labels = {"group": "g1", "device": device, "mountpoint": str(mountpoint)}
    return value(found, "gardien_group_volume_mounted", **labels)


def on_node(node: Node, path: Path) -> str:
    """``path`` as the node sees it, from the root namespace."""
    return f"/proc/{node.pid}/root{path}"


@pytest.mark.parametrize("form", ["loop device", "symlink", "image file"])
def test_mounted_read_write(
    node: Node, images: list[tuple[Path, str]], mountpoint: Path, tmp_path: Path, form: str
) -> None:
    image, loop = images[0]
    device = {"loop device": loop, "symlink": str(tmp_path / "san-a"), "image file": str(image)}
    os.symlink(loop, tmp_path / "san-a")
    with mounted(node, loop, mountpoint):
        found = scrape(node, device[form], mountpoint, tmp_path)
        space = os.statvfs(on_node(node, mountpoint))
        left = os.listdir(on_node(node, mountpoint))

    assert is_mounted(found, device[form], mountpoint) == 1
    assert volume(found, "writable") == 1
    assert volume(found, "size_bytes") == space.f_blocks * space.f_frsize
    assert 0 < volume(found, "free_bytes") <= space.f_bavail * space.f_frsize + 65536
    assert "lost+found" in left  # the ext4 volume, not the empty mountpoint folder
    assert WRITE_TEST_FILE not in left


def test_read_only_mount_is_not_writable(
    node: Node, images: list[tuple[Path, str]], mountpoint: Path, tmp_path: Path
) -> None:
    _, loop = images[0]
    with mounted(node, loop, mountpoint):
        node.run(["mount", "-o", "remount,ro", str(mountpoint)])
        found = scrape(node, loop, mountpoint, tmp_path)

    assert is_mounted(found, loop, mountpoint) == 1
    assert volume(found, "writable") == 0
    assert volume(found, "free_bytes") > 0


def test_unmounted_volume(
    node: Node, images: list[tuple[Path, str]], mountpoint: Path, tmp_path: Path
) -> None:
    _, loop = images[0]

    found = scrape(node, loop, mountpoint, tmp_path)

    assert is_mounted(found, loop, mountpoint) == 0
    assert volume(found, "writable") == 0
    assert volume(found, "free_bytes") == volume(found, "size_bytes") == 0
    assert os.listdir(mountpoint) == []  # nothing written to the root filesystem


def test_wrong_device_at_the_mountpoint(
    node: Node, images: list[tuple[Path, str]], mountpoint: Path, tmp_path: Path
) -> None:
    (_, expected), (_, other) = images
    with mounted(node, other, mountpoint):
        found = scrape(node, expected, mountpoint, tmp_path)

    assert is_mounted(found, expected, mountpoint) == 0
    assert volume(found, "writable") == 0


def test_frozen_filesystem_is_not_writable(
    node: Node, images: list[tuple[Path, str]], mountpoint: Path, tmp_path: Path
) -> None:
    """fsfreeze blocks every write like a SAN that lost its paths: the scrape must not hang."""
    _, loop = images[0]
    with mounted(node, loop, mountpoint):
        frozen, again, stuck, thawed = scrapes(
            node,
            loop,
            mountpoint,
            tmp_path,
            [
                ("run", ["fsfreeze", "--freeze", str(mountpoint)]),
                ("collect", 1),
                ("collect", 1),
                ("threads", "volume-check"),
                ("run", ["fsfreeze", "--unfreeze", str(mountpoint)]),
                ("collect", 5),
            ],
        )

    assert is_mounted(frozen, loop, mountpoint) == 1
    assert volume(frozen, "writable") == volume(again, "writable") == 0
    assert stuck[("threads", frozenset())] == 1  # the second scrape started no other check
    assert volume(thawed, "writable") == 1


def test_the_filesystem_is_checked_on_its_own_schedule(
    node: Node, images: list[tuple[Path, str]], mountpoint: Path, tmp_path: Path
) -> None:
    """Scrapes within ``check_every`` report the last check (free space unchanged after a write);
    a read-only remount shows at once all the same; once the check is older, a new one runs."""
    _, loop = images[0]
    volume_cfg = {"device": loop, "mountpoint": str(mountpoint), "check_every": "2s"}
    data = config_data(groups={"g1": {"nodes": ["n1"], "volume": volume_cfg}})
    filler = str(mountpoint / "filler")
    with mounted(node, loop, mountpoint):
        first, cached, read_only, later = session_on_node(
            node,
            data,
            "volume",
            tmp_path,
            [
                ("collect", 5),
                ("run", ["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=8", "conv=fsync"]),
                ("collect", 5),
                ("run", ["mount", "-o", "remount,ro", str(mountpoint)]),
                ("collect", 5),
                ("run", ["mount", "-o", "remount,rw", str(mountpoint)]),
                ("run", ["sleep", "2.2"]),
                ("collect", 5),
            ],
        )
        space = os.statvfs(on_node(node, mountpoint))

    assert volume(first, "writable") == volume(cached, "writable") == 1
    assert volume(cached, "free_bytes") == volume(first, "free_bytes")  # the same check's answer
    assert volume(read_only, "writable") == 0
    assert volume(later, "writable") == 1
    assert volume(later, "free_bytes") <= volume(first, "free_bytes") - 8 * 2**20
    assert volume(later, "free_bytes") <= space.f_bavail * space.f_frsize + 65536
