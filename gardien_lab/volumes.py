"""The lab's SAN: one sparse ext4 image per group on a loop device (docs/lab.md section 4).

A volume is mounted only in the mount namespace of the node that holds the group (by the node's
agent: :mod:`gardien_lab.services`).  The loop device of an image is found again with
``losetup -j`` (not from a saved number) and recorded as made (:mod:`gardien_lab.made`); ``lab
down`` detaches the devices backed by the lab's own images, and only those, even after a crash of
``lab up``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from gardien_lab import made
from gardien_lab.netns import run
from gardien_lab.topology import Lab

log = logging.getLogger(__name__)

IMAGE_SIZE = "512M"


def image(lab: Lab, group: str) -> Path:
    return lab.dir / "san" / f"{group}.img"


def loop_of(path: Path) -> str | None:
    """The first loop device backed by ``path``, if any."""
    found = _loops_of(path) if path.exists() else []
    return found[0] if found else None


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
        record = made.load(lab.dir)
        record.loops[device] = str(img)
        made.save(lab.dir, record)
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
