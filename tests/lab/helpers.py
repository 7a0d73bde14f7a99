"""Helpers of the lab tests."""

from __future__ import annotations

import os
import shutil
import threading
import time

from gardien_lab import (
    services,
    volumes,
)
from gardien_lab.chaos.watch import addresses
from gardien_lab.topology import NODES, Lab
from gardien_lab.volumes import mounted_in

HOME = {"php4": "node1", "php5": "node2", "mysql1": "node1", "mysql2": "node2", "java": "node2"}


def lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("ip", "nsenter", "losetup", "apache2", "smbd", "mariadbd", "prometheus"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed"
    return None


def vips_by_node(lab: Lab) -> dict[str, set[str]]:
    return {node: addresses(lab, node) for node in NODES}


class Sampler(threading.Thread):
    """Watches, during a scenario, where each group's volume and VIP are: records every sample
    in which a group was active (its image mounted, through either node's loop device, or its VIP
    present) on two nodes at once, and the
    set of nodes each group was seen on.  Bounded: it stops by itself after ``limit`` seconds."""

    def __init__(self, lab: Lab, interval: float = 0.1, limit: float = 300.0) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.interval = interval
        self.limit = limit
        self.groups = services.lab_groups(lab)
        self.images = {g: str(volumes.image(lab, g)) for g in self.groups}
        self.double: list[tuple[float, str, list[str]]] = []
        self.seen_on: dict[str, set[str]] = {g: set() for g in self.groups}
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            vips = vips_by_node(self.lab)
            mounts = {n: volumes.mounted_images(self.lab, n) for n in NODES}
            for name, group in self.groups.items():
                active = [
                    n
                    for n in NODES
                    if str(group.vip.ip) in vips[n] or self.images[name] in mounts[n]
                ]
                self.seen_on[name].update(active)
                if len(active) > 1:
                    self.double.append((time.time(), name, active))
            self.samples += 1
            self._stop_event.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=10)


class MountWatch(threading.Thread):
    """Reads every node's mount table (its holder's ``/proc/PID/mountinfo``) every 10 ms and
    records each sample in which ``mountpoint`` is mounted there.  Bounded by ``limit`` s."""

    def __init__(self, lab: Lab, mountpoint: str, limit: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.holders = {n: lab.holder(n) for n in NODES}
        self.mountpoint = mountpoint
        self.limit = limit
        self.samples = 0
        self.seen: dict[str, list[float]] = {n: [] for n in NODES}
        """Per node, the times of the samples in which the volume was mounted there."""
        self.double: list[float] = []
        """The times of the samples in which it was mounted on two nodes."""
        self._stop_event = threading.Event()

    def _sample(self) -> None:
        now = time.time()
        mounted = [n for n, holder in self.holders.items() if mounted_in(holder, self.mountpoint)]
        for node in mounted:
            self.seen[node].append(now)
        if len(mounted) > 1:
            self.double.append(now)
        self.samples += 1

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            self._sample()
            self._stop_event.wait(0.01)

    def __enter__(self) -> MountWatch:
        self._sample()  # one sample before the call, whatever the thread's start takes
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self._sample()  # and one after it
