"""The lab's SAN: one sparse ext4 image per group with multi-mount protection, and on each node a
loop device of its own on every image (docs/lab.md section 4).

As a SAN presents one LUN to both nodes through device nodes of their own (``/dev/sdc`` here,
``/dev/sdf`` there) under one name (``/dev/disk/by-id/...``, a multipath alias), each node sees
its loop device of a group's image as :func:`device_path` (``/run/gardien-lab-san/GROUP``): a
symlink in a tmpfs of the node's own (``NODE_TMPFS``).  The cluster config names that path, the
same on both nodes.  Two nodes mounting a volume at once are then two superblocks on one image,
and ext4's MMP makes the kernel refuse the second mount, below gardien.

A volume is mounted only in the mount namespace of the node that holds the group (by the node's
agent: :mod:`gardien_lab.services`).  Every loop device attached is recorded as made
(:mod:`gardien_lab.made`); ``lab down`` detaches every device backed by the lab's own images (both
nodes', found again with ``losetup -j`` even after a crash of ``lab up``), and only those.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from gardien.command_runner import CommandRunner
from gardien.node.mmp import read_mmp
from gardien.node.mounts import Mount, MountinfoError, backing_file, block_device, parse_line
from gardien_lab import made
from gardien_lab.netns import run
from gardien_lab.topology import MACHINES, SAN_LINKS, Lab

log = logging.getLogger(__name__)

IMAGE_SIZE = "512M"
MMP_UPDATE_INTERVAL = 1
"""Seconds between the holder's MMP writes (the kernel checks every 5 s at least whatever it is:
a mount after an unclean stop waits 22 s, docs/config.md)."""


LOOP_MAJOR = 7
"""The block major of loop devices (Documentation/admin-guide/devices.txt): the other mounts of a
node (its tmpfs, proc, the root filesystem) have no backing file to look up."""


def image(lab: Lab, group: str) -> Path:
    return lab.dir / "san" / f"{group}.img"


def device_path(group: str) -> str:
    """The group's volume on every node: a symlink to that node's own loop device."""
    return f"{SAN_LINKS}/{group}"


def ensure_image(lab: Lab, group: str) -> Path:
    """The group's image exists, formatted with MMP (an image of an older lab gets MMP once no
    node has it mounted)."""
    img = image(lab, group)
    if not img.exists():
        img.parent.mkdir(parents=True, exist_ok=True)
        run(["truncate", "-s", IMAGE_SIZE, str(img)])
        mmp = ["-O", "mmp", "-E", f"mmp_update_interval={MMP_UPDATE_INTERVAL}"]
        run(["mkfs.ext4", "-q", "-F", *mmp, "-L", group[:16], str(img)])
    elif not read_mmp(str(img), CommandRunner()).enabled and not _mounted_anywhere(lab, img):
        log.info("volume %s: enabling MMP on %s", group, img)
        run(["tune2fs", "-O", "mmp", "-E", f"mmp_update_interval={MMP_UPDATE_INTERVAL}", str(img)])
    return img


def _link(lab: Lab, node: str, group: str) -> Path:
    """The node's symlink, as seen from here."""
    return lab.fs_root(node) / device_path(group).lstrip("/")


def node_device(lab: Lab, node: str, group: str) -> str | None:
    """The loop device ``node`` sees its volume of ``group`` through (its symlink's target),
    if that is a loop device of the group's image."""
    try:
        target = os.readlink(_link(lab, node, group))
    except OSError:
        return None
    return target if _backing_file(target) == str(image(lab, group)) else None


def ensure_device(lab: Lab, node: str, group: str, nodes: Sequence[str]) -> str:
    """``node`` has a loop device of its own on the group's image, linked at
    :func:`device_path`; returns the loop device.  One that no node of ``nodes`` links to nor
    mounts (its node was powered off since) is taken again, else a new one is attached."""
    img = ensure_image(lab, group)
    device = node_device(lab, node, group)
    if device is not None:
        return device
    taken = {node_device(lab, n, group) for n in nodes if n != node and lab.holder(n)}
    mounted = _mounted_devices(lab, nodes)
    free = [d for d in _loops_of(img) if d not in taken and block_device(d) not in mounted]
    if free:
        device = free[0]
    else:
        device = run(["losetup", "-f", "--show", str(img)]).stdout.strip()
        record = made.load(lab.dir)
        record.loops[device] = str(img)
        made.save(lab.dir, record)
    run([*lab.prefix_argv(node), "ln", "-sfn", device, device_path(group)])
    log.info("volume %s: %s on %s of %s", group, img, device, node)
    return device


def ensure_volume(lab: Lab, group: str, nodes: Sequence[str]) -> str:
    """The group's image, and a device of its own on every node of ``nodes`` that is on;
    returns the path the config names (:func:`device_path`)."""
    for node in nodes:
        if lab.holder(node) is not None:
            ensure_device(lab, node, group, nodes)
    return device_path(group)


def mountpoint(lab: Lab, group: str) -> str:
    return f"/srv/gardien-{lab.name}/{group}"


def is_mounted(lab: Lab, machine: str, path: str) -> bool:
    return mounted_in(lab.holder(machine), path)


def mounted_in(holder: int | None, path: str) -> bool:
    """Is ``path`` in the mount table of the machine whose holder process is ``holder``?  Read
    from the kernel (``/proc/PID/mounts``), not from anything gardien says."""
    if holder is None:
        return False
    try:
        mounts = Path(f"/proc/{holder}/mounts").read_text()
    except OSError:
        return False
    return any(line.split()[1] == path for line in mounts.splitlines() if line.strip())


def mount(lab: Lab, machine: str, device: str, path: str) -> None:
    prefix = lab.prefix_argv(machine)
    run([*prefix, "mkdir", "-p", path])
    if not is_mounted(lab, machine, path):
        run([*prefix, "mount", "-t", "ext4", device, path])


def umount(lab: Lab, machine: str, path: str) -> None:
    if is_mounted(lab, machine, path):
        run([*lab.prefix_argv(machine), "umount", path])


def _backing_file(device: str) -> str:
    return run(["losetup", "-n", "-O", "BACK-FILE", device], check=False).stdout.strip()


def detach_all(lab: Lab) -> list[str]:
    """Detach the loop devices backed by the lab's images (those recorded as made, and any a
    crash left unrecorded), then remove the images; returns problems."""
    problems = []
    san = lab.dir / "san"
    images = {str(img) for img in san.glob("*.img")} if san.is_dir() else set()
    recorded = made.load(lab.dir).loops
    devices = {d for d, img in recorded.items() if img in images}
    devices.update(d for img in images for d in _loops_of(Path(img)))
    for device in sorted(devices):
        if _backing_file(device) not in images:
            continue  # detached since, and perhaps attached again by someone else
        if (
            run(["losetup", "-d", device], check=False).returncode != 0
            or _backing_file(device) in images
        ):
            problems.append(
                f"loop device {device} of {_backing_file(device)} could not be detached"
            )
    for img in images:
        Path(img).unlink(missing_ok=True)
    return problems


def _loops_of(path: Path) -> list[str]:
    out = run(["losetup", "-j", str(path), "-O", "NAME", "-n"], check=False).stdout
    return out.split()


def _mounts(lab: Lab, machine: str) -> list[Mount]:
    """The mounts of ``machine``'s mount namespace (none when it is off)."""
    holder = lab.holder(machine)
    found: list[Mount] = []
    if holder is None:
        return found
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{holder}/mountinfo").read_text().splitlines():
            with contextlib.suppress(MountinfoError):
                found.append(parse_line(line))
    return found


def mounted_images(lab: Lab, machine: str) -> set[str]:
    """The image files behind the loop devices mounted in ``machine``'s mount namespace."""
    backing = (backing_file(m.device) for m in _mounts(lab, machine) if m.device[0] == LOOP_MAJOR)
    return {b.path for b in backing if b is not None and not b.deleted}


def holders(lab: Lab, group: str, machines: Sequence[str]) -> list[str]:
    """Machines whose mount namespace has the group's image mounted, through whichever loop
    device (the double-activation check)."""
    img = str(image(lab, group))
    return [m for m in machines if img in mounted_images(lab, m)]


def _mounted_anywhere(lab: Lab, img: Path) -> bool:
    return any(str(img) in mounted_images(lab, m) for m in MACHINES)


def _mounted_devices(lab: Lab, machines: Sequence[str]) -> set[tuple[int, int]]:
    """``major, minor`` of every filesystem mounted in any of ``machines``."""
    return {m.device for machine in machines for m in _mounts(lab, machine)}
