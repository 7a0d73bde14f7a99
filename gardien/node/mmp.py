"""ext4 multi-mount protection (MMP) of a device, as ``dumpe2fs -h`` shows it.

MMP is the storage's own refusal of a second owner: while a node has the filesystem mounted, its
kernel rewrites a sequence number in the MMP block every update interval, and a mount elsewhere
that sees the number change fails ("Device is already active on another node", the mount command
exits 32 with EBUSY).  The cost is on the mount after an *unclean* stop (a node fenced or lost
with the filesystem mounted): the MMP block still holds a live sequence number, so the kernel's
mount waits one check period to see whether it changes, writes its own and waits one more before
it trusts it.  A clean unmount writes the "clean" number, and the next mount does not wait.

:func:`read_mmp` never raises: a device that cannot be read is a :class:`MmpState` with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gardien.command_runner import CommandRunner
from gardien.config.model import VolumeConfig

MIN_CHECK_INTERVAL = 5
"""The kernel checks at least every 5 s, whatever the update interval
(EXT4_MMP_MIN_CHECK_INTERVAL)."""
MAX_EXTRA_WAIT = 60
"""A wait of the kernel's is at most the check interval plus 60 s."""

_SEQ_CLEAN = 0xFF4D4D50
"""EXT4_MMP_SEQ_CLEAN: the last holder unmounted cleanly."""
_SEQ_FSCK = 0xE24D4D50
"""EXT4_MMP_SEQ_FSCK: e2fsck (or another e2fsprogs tool) has the device open."""

_TIMEOUT = 10.0


class MmpSequence(StrEnum):
    """What the MMP block's sequence number says about the last holder."""

    CLEAN = "clean"
    """Unmounted cleanly: the next mount does not wait."""
    FSCK = "fsck"
    """A checker has it: the kernel refuses to mount."""
    ACTIVE = "active"
    """Mounted somewhere now, or left mounted by a node that stopped uncleanly: a mount waits
    (:func:`unclean_mount_wait`) and fails if the number changes meanwhile."""


def check_wait(update_interval: int, check_interval: int = 0) -> float:
    """One wait of the kernel's MMP check, in seconds: ``min(2 * ci + 1, ci + 60)`` with ``ci``
    the longest of the update interval, the check interval the MMP block records (the holder
    raises it when its writes are slow) and 5 s (fs/ext4/mmp.c, ``ext4_multi_mount_protect``)."""
    interval = max(update_interval, check_interval, MIN_CHECK_INTERVAL)
    return float(min(2 * interval + 1, interval + MAX_EXTRA_WAIT))


def unclean_mount_wait(update_interval: int, check_interval: int = 0) -> float:
    """How long a mount waits after an unclean stop: two check waits (one to see the number stay,
    one after writing its own); 22 s for any update interval up to 5 s (measured on a 6.x kernel,
    docs/config.md)."""
    return 2 * check_wait(update_interval, check_interval)


@dataclass(frozen=True)
class MmpState:
    """The MMP facts of one device; ``reason`` is set (and the rest unknown) when it could not be
    read."""

    device: str
    reason: str = ""
    """Why the device could not be read (missing, not ext4, dumpe2fs failed); empty when read."""
    enabled: bool = False
    """The filesystem has the ``mmp`` feature."""
    update_interval: int | None = None
    """Seconds between the holder's MMP writes (``tune2fs -E mmp_update_interval=N``)."""
    block: int | None = None
    """Where the MMP block is (filesystem block number)."""
    check_interval: int | None = None
    """The check interval the last holder recorded in the MMP block."""
    sequence: MmpSequence | None = None
    last_update: int | None = None
    """When the MMP block was last written (seconds since the epoch)."""
    last_node: str | None = None
    """The host name of the node that last wrote it."""
    last_device: str | None = None
    """The device name that node wrote it through."""

    @property
    def readable(self) -> bool:
        return not self.reason

    def mount_wait(self) -> float:
        """How long a mount would wait now: 0 after a clean stop (or without MMP), else the
        unclean stop's wait."""
        if not self.enabled or self.sequence is MmpSequence.CLEAN:
            return 0.0
        return unclean_mount_wait(self.update_interval or 0, self.check_interval or 0)

    def to_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "reason": self.reason,
            "enabled": self.enabled,
            "update_interval": self.update_interval,
            "block": self.block,
            "check_interval": self.check_interval,
            "sequence": str(self.sequence) if self.sequence else None,
            "last_update": self.last_update,
            "last_node": self.last_node,
            "last_device": self.last_device,
        }


_FIELD = re.compile(r"^\s*([A-Za-z_ #]+?):\s*(.*?)\s*$")


def _fields(text: str) -> dict[str, str]:
    """``Key: value`` lines of dumpe2fs (both the superblock's and the MMP block's)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def _sequence(number: int | None) -> MmpSequence | None:
    if number is None:
        return None
    if number == _SEQ_CLEAN:
        return MmpSequence.CLEAN
    if number == _SEQ_FSCK:
        return MmpSequence.FSCK
    return MmpSequence.ACTIVE


def parse_dumpe2fs(device: str, text: str) -> MmpState:
    """The MMP facts in ``dumpe2fs -h`` output (e2fsprogs 1.47's field names)."""
    fields = _fields(text)
    features = fields.get("Filesystem features")
    if features is None:
        return MmpState(device, reason="no ext2/3/4 superblock in dumpe2fs's output")
    if "mmp" not in features.split():
        return MmpState(device, enabled=False)
    return MmpState(
        device,
        enabled=True,
        update_interval=_number(fields.get("MMP update interval")),
        block=_number(fields.get("MMP block number")),
        check_interval=_number(fields.get("mmp_check_interval")),
        sequence=_sequence(_number(fields.get("mmp_sequence"))),
        last_update=_number(fields.get("mmp_update_time")),
        last_node=fields.get("mmp_node_name") or None,
        last_device=fields.get("mmp_device_name") or None,
    )


def read_mmp(device: str, runner: CommandRunner, timeout: float = _TIMEOUT) -> MmpState:
    """``dumpe2fs -h DEVICE`` read into an :class:`MmpState`; never raises (a device that cannot
    be read is a state with its reason).  It only reads: it works while the device is mounted,
    here or on another node."""
    result = runner.run(["dumpe2fs", "-h", device], timeout=timeout)
    if not result.ok:
        return MmpState(device, reason=result.describe())
    return parse_dumpe2fs(device, result.stdout)


class MmpProblem(StrEnum):
    """What makes a device unfit for a volume configured ``mmp: true``."""

    UNREADABLE = "unreadable"
    NOT_ENABLED = "not_enabled"
    INTERVAL_TOO_LONG = "interval_too_long"
    """Its wait after an unclean stop is longer than the config's ``mmp_update_interval``
    allows for: the mount could outlast the start budget."""


def problem_of(volume: VolumeConfig, found: MmpState) -> MmpProblem | None:
    """Why ``found`` does not do for ``volume`` (``mmp: true``); None when it does."""
    if not found.readable:
        return MmpProblem.UNREADABLE
    if not found.enabled:
        return MmpProblem.NOT_ENABLED
    allowed = unclean_mount_wait(volume.mmp_update_interval)
    if unclean_mount_wait(found.update_interval or 0) > allowed:
        return MmpProblem.INTERVAL_TOO_LONG
    return None


def describe_problem(volume: VolumeConfig, found: MmpState, problem: MmpProblem) -> str:
    """The problem for an operator, with what to do about it."""
    if problem is MmpProblem.UNREADABLE:
        return f"cannot read the MMP state of {volume.device}: {found.reason}"
    if problem is MmpProblem.NOT_ENABLED:
        return (
            f"{volume.device} has no MMP (the volume says mmp: true); enable it while it is "
            f"unmounted on every node: tune2fs -O mmp -E "
            f"mmp_update_interval={volume.mmp_update_interval} {volume.device}"
        )
    return (
        f"{volume.device} updates its MMP block every {found.update_interval} s: a mount after "
        f"an unclean stop would wait {unclean_mount_wait(found.update_interval or 0):g} s, "
        f"longer than mmp_update_interval {volume.mmp_update_interval} allows for "
        f"({unclean_mount_wait(volume.mmp_update_interval):g} s); set it to "
        f"{found.update_interval}"
    )
