"""The mount table of this node: which filesystem is mounted where, from which device.

It is read from ``<proc_root>/self/mountinfo`` (the mount namespace of the reading process), which
names each mount's device by ``major:minor``: a volume configured as ``/dev/mapper/san-php4``
matches a mount listed as ``/dev/dm-3`` (or the other way round).  A mount of a loop device carries
the file behind it (``<sys_root>/dev/block/M:m/loop/backing_file``), so a volume configured as an
image file matches the loop device that serves it, and a volume configured as the loop device
matches by number.  Only the mount visible at a mountpoint counts: the last one mounted there.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gardien.config.model import VolumeConfig

log = logging.getLogger(__name__)

PROC = Path("/proc")
SYS = Path("/sys")

_OCTAL = re.compile(r"\\([0-7]{3})")
_DELETED = " (deleted)"
LOOP_MAJOR = 7
"""The loop driver's block major (its partitions are ``blkext``'s and have no backing file)."""
"""What the kernel appends to the path of a backing file that was unlinked."""


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\040``-style octal escapes."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


class MountinfoError(ValueError):
    """A line of mountinfo that does not have the kernel's format."""


@dataclass(frozen=True)
class BackingFile:
    """The file a loop device serves."""

    path: str
    deleted: bool
    """Unlinked since the loop device was set up: no path names that file any more."""


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo (and, for a loop device, the file behind it)."""

    device: tuple[int, int]
    """major, minor of the mounted filesystem."""
    source: str
    mountpoint: str
    fstype: str
    read_only: bool
    backing_file: BackingFile | None = None


@functools.lru_cache(maxsize=1024)
def parse_line(line: str) -> Mount:
    """One mountinfo line: ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE
    SOURCE SUPER_OPTIONS`` (no field holds a raw space: they are escaped).  Kept for the lines
    seen again (a node's table changes seldom; its parse was half of a read at every scrape):
    the same line is the same mount, down to its mount ID."""
    mount_part, separator, super_part = line.partition(" - ")
    fields, supers = mount_part.split(), super_part.split()
    if not separator or len(fields) < 6 or len(supers) < 2:
        raise MountinfoError(f"unreadable mountinfo line: {line!r}")
    try:
        major, minor = (int(n) for n in fields[2].split(":"))
    except ValueError:
        raise MountinfoError(f"no major:minor in mountinfo line: {line!r}") from None
    options = set(fields[5].split(","))
    if len(supers) > 2:
        options |= set(supers[2].split(","))
    return Mount(
        device=(major, minor),
        source=_unescape(supers[1]),
        mountpoint=_unescape(fields[4]),
        fstype=supers[0],
        read_only="ro" in options,
    )


def backing_file(device: tuple[int, int], sys_root: Path = SYS) -> BackingFile | None:
    """The file behind a loop device; None for any other device (or a loop device without one).
    Only loop devices are looked up: a scrape reads the whole mount table, dozens of mounts."""
    if device[0] != LOOP_MAJOR:
        return None
    path = f"{sys_root}/dev/block/{device[0]}:{device[1]}/loop/backing_file"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            text = file.read().rstrip("\n")
    except OSError:
        return None
    if text.endswith(_DELETED):
        return BackingFile(text.removesuffix(_DELETED), deleted=True)
    return BackingFile(text, deleted=False)


def block_device(device: str) -> tuple[int, int] | None:
    """``major, minor`` of a block device path (symlinks followed); None for anything else."""
    try:
        info = os.stat(device)
    except OSError:
        return None
    if not stat.S_ISBLK(info.st_mode):
        return None
    return os.major(info.st_rdev), os.minor(info.st_rdev)


def is_image_file(device: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(device).st_mode)
    except OSError:
        return False


class MountTable:
    """The mounts of one reading of mountinfo, in mount order."""

    def __init__(self, mounts: Sequence[Mount]) -> None:
        self.mounts = tuple(mounts)

    def visible(self, mountpoint: str) -> Mount | None:
        """The mount on top at ``mountpoint`` (the last one mounted there)."""
        wanted = os.path.normpath(mountpoint)
        on_top = None
        for mount in self.mounts:
            if mount.mountpoint == wanted:
                on_top = mount
        return on_top

    def of_volume(self, volume: VolumeConfig) -> Mount | None:
        """The mount of ``volume`` at its mountpoint; None when another (or none) is there."""
        mount = self.visible(volume.mountpoint)
        return mount if mount is not None and is_from(mount, volume.device) else None

    def from_device(self, device: str) -> list[Mount]:
        """Every mount of ``device`` (a block device, or an image file behind a loop device)."""
        return [m for m in self.mounts if is_from(m, device)]


def is_from(mount: Mount, device: str) -> bool:
    """Whether ``mount`` is of the configured ``device``: the same block device, the loop device of
    that image file, or (filesystems with anonymous device numbers: btrfs, network ones, and
    devices that do not exist here) the same source path."""
    if mount.device == block_device(device):
        return True
    backing = mount.backing_file
    if backing is not None and not backing.deleted and is_image_file(device):
        return backing.path == os.path.realpath(device)
    return os.path.realpath(mount.source) == os.path.realpath(device)


def read_mount_table(proc_root: Path = PROC, sys_root: Path = SYS) -> MountTable:
    """The mount table of this process's mount namespace; raises OSError when it cannot be read
    (a line of another format is skipped and logged: the kernel's own table has none)."""
    text = (proc_root / "self" / "mountinfo").read_text()
    mounts = []
    for line in text.splitlines():
        try:
            mount = parse_line(line)
        except MountinfoError as exc:
            log.warning("%s", exc)
            continue
        backing = backing_file(mount.device, sys_root)
        if backing is not None:
            mount = dataclasses.replace(mount, backing_file=backing)
        mounts.append(mount)
    return MountTable(mounts)
