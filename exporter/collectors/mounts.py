"""Is a group's volume mounted at its mountpoint from the expected device?

The mount table is read from ``<proc_root>/self/mountinfo``: it names each mount's device by
``major:minor``, so a volume configured as ``/dev/mapper/san-php4`` matches a mount listed as
``/dev/dm-3`` (or the other way round), and a volume configured as an image file matches the loop
device that serves it (``/sys/block/loopN/loop/backing_file``).  Only the mount that is visible at
the mountpoint counts: the last one mounted there.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from gardien.config.model import VolumeConfig

log = logging.getLogger(__name__)

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo``."""

    device: tuple[int, int]
    """major, minor of the mounted filesystem."""
    source: str
    mountpoint: str
    fstype: str
    read_only: bool


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\040``-style octal escapes."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(proc_root: Path = Path("/proc")) -> list[Mount]:
    """The mount table of this process's mount namespace, in mount order (empty, and logged, when
    it cannot be read: every volume is then reported not mounted rather than not reported)."""
    try:
        table = (proc_root / "self" / "mountinfo").read_text()
    except OSError as exc:
        log.error("cannot read the mount table: %s", exc)
        return []
    mounts = []
    for line in table.splitlines():
        fields = line.split()
        try:
            dash = fields.index("-")
            major, minor = (int(n) for n in fields[2].split(":"))
        except ValueError:
            log.warning("unreadable mountinfo line: %r", line)
            continue
        options = set(fields[5].split(",")) | set(fields[dash + 3].split(","))
        mounts.append(
            Mount(
                device=(major, minor),
                source=_unescape(fields[dash + 2]),
                mountpoint=_unescape(fields[4]),
                fstype=fields[dash + 1],
                read_only="ro" in options,
            )
        )
    return mounts


def device_numbers(device: str, sys_root: Path = Path("/sys")) -> set[tuple[int, int]]:
    """The ``major:minor`` numbers a configured device can be mounted as.

    A block device (symlinks followed) is its own number; a regular file (a disk image) is every
    loop device whose backing file it is.  Empty when the device does not exist here.
    """
    try:
        info = os.stat(device)
    except OSError:
        return set()
    if stat.S_ISBLK(info.st_mode):
        return {(os.major(info.st_rdev), os.minor(info.st_rdev))}
    if not stat.S_ISREG(info.st_mode):
        return set()
    image = os.path.realpath(device)
    found = set()
    for loop in (sys_root / "block").glob("loop*"):
        try:
            backing = (loop / "loop" / "backing_file").read_text().strip()
            number = (loop / "dev").read_text().strip()
        except OSError:
            continue  # a loop device without a backing file
        if backing == image:
            major, minor = number.split(":")
            found.add((int(major), int(minor)))
    return found


def visible_mount(mounts: list[Mount], mountpoint: str) -> Mount | None:
    """The mount that is on top at ``mountpoint`` (the last one mounted there)."""
    wanted = os.path.normpath(mountpoint)
    on_top = None
    for mount in mounts:
        if mount.mountpoint == wanted:
            on_top = mount
    return on_top


def volume_mount(
    volume: VolumeConfig, mounts: list[Mount], sys_root: Path = Path("/sys")
) -> Mount | None:
    """The mount of ``volume`` at its mountpoint; None when another (or none) is there."""
    mount = visible_mount(mounts, volume.mountpoint)
    if mount is None:
        return None
    if mount.device in device_numbers(volume.device, sys_root):
        return mount
    # filesystems with anonymous device numbers (btrfs, network filesystems): compare sources
    if os.path.realpath(mount.source) == os.path.realpath(volume.device):
        return mount
    return None
