"""The lab's SAN: one sparse ext4 image per group on a loop device (LAB.md section 4).

A volume is mounted only in the mount namespace of the node that holds the group.  The loop device
of an image is found again with ``losetup -j`` (not from a saved number), so ``lab down`` detaches
it even after a crash of ``lab up``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from gardien_lab.topology import Lab, run

log = logging.getLogger(__name__)

IMAGE_SIZE = "512M"


def image(lab: Lab, group: str) -> Path:
    return lab.dir / "san" / f"{group}.img"


def loop_of(path: Path) -> str | None:
    """The first loop device backed by ``path``, if any."""
    if not path.exists():
        return None
    out = run(["losetup", "-j", str(path), "-O", "NAME", "-n"], check=False).stdout.split()
    return out[0] if out else None


def ensure_volume(lab: Lab, group: str) -> str:
    """The group's image exists, is formatted and attached; returns its loop device."""
    img = image(lab, group)
    if not img.exists():
        img.parent.mkdir(parents=True, exist_ok=True)
        run(["truncate", "-s", IMAGE_SIZE, str(img)])
        run(["mkfs.ext4", "-q", "-F", "-L", group[:16], str(img)])
    device = loop_of(img)
    if device is None:
        device = run(["losetup", "-f", "--show", str(img)]).stdout.strip()
        log.info("volume %s: %s on %s", group, img, device)
    return device


def mountpoint(lab: Lab, group: str) -> str:
    return f"/srv/gardien-{lab.name}/{group}"


def is_mounted(lab: Lab, machine: str, path: str) -> bool:
    holder = lab.holder(machine)
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


@contextlib.contextmanager
def mounted_on(lab: Lab, machine: str, device: str, path: str) -> Iterator[Path]:
    """The volume mounted on ``machine`` for the block; yields its path as seen from here.

    Left mounted afterwards if it already was (the node holds the group)."""
    already = is_mounted(lab, machine, path)
    mount(lab, machine, device, path)
    try:
        yield lab.fs_root(machine) / path.lstrip("/")
    finally:
        if not already:
            umount(lab, machine, path)


def detach_all(lab: Lab) -> list[str]:
    """Detach every loop device of the lab's images and remove the images; returns problems."""
    problems = []
    san = lab.dir / "san"
    for img in sorted(san.glob("*.img")) if san.is_dir() else []:
        while (device := loop_of(img)) is not None:
            if (
                run(["losetup", "-d", device], check=False).returncode != 0
                or loop_of(img) == device
            ):
                problems.append(f"loop device {device} of {img} could not be detached")
                break
        img.unlink(missing_ok=True)
    return problems


def holders_of(lab: Lab, device: str, machines: tuple[str, ...]) -> list[str]:
    """Machines whose mount namespace has ``device`` mounted (the double-activation check)."""
    found = []
    for machine in machines:
        holder = lab.holder(machine)
        if holder is None:
            continue
        with contextlib.suppress(OSError):
            if any(
                line.split()[0] == device
                for line in Path(f"/proc/{holder}/mounts").read_text().splitlines()
            ):
                found.append(machine)
    return found
