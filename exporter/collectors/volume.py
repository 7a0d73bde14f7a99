"""Volume collector: is each group's volume mounted, from the right device, read-write and writable?

Mounted means: at its mountpoint, the visible mount is of the configured device (see
:mod:`gardien.node.mounts`).  Writable means mounted read-write *and* a small file
(``.gardien-write-test``) could be written, fsynced and removed: a SAN that lost its paths keeps the
mount read-write while every write blocks.  That is also why the filesystem is only touched from a
daemon thread per group: a blocked ``fsync`` (or ``statvfs``) cannot be interrupted, so the scrape
stops waiting at its deadline and reports the volume not writable; later scrapes wait for that same
check instead of starting another one, until it answers.  Nothing is ever written to an unmounted
mountpoint (that would be the root filesystem).

The filesystem check runs at most every ``volume.check_every`` (5 s by default), not at every
scrape: at sub-second scrapes a write test per scrape was four fsyncs a second on the shared volume
for an alert that waits 30 s (``GardienVolumeNotWritable``).  The mount table is read at every
scrape, so an unmount or a read-only remount shows at once; a check answers only for the mount it
was started on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts, shared_mount_table
from gardien.config import ClusterConfig, VolumeConfig
from gardien.node.mounts import PROC, SYS, Mount, MountTable

log = logging.getLogger(__name__)

WRITE_TEST_FILE = ".gardien-write-test"


@dataclass(frozen=True)
class FilesystemFacts:
    free_bytes: float
    size_bytes: float
    written: bool
    """The write test passed (False when it failed or was not asked for)."""


def check_filesystem(mountpoint: str, write_test: bool) -> FilesystemFacts:
    """Space of the filesystem at ``mountpoint`` and, if asked, the result of a write test."""
    vfs = os.statvfs(mountpoint)
    written = False
    if write_test:
        path = os.path.join(mountpoint, WRITE_TEST_FILE)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"gardien write test\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.unlink(path)
            written = True
        except OSError as exc:
            log.warning("write test on %s failed: %s", mountpoint, exc)
    return FilesystemFacts(vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize, written)


class _Check:
    """One :func:`check_filesystem` call running in its own daemon thread, for ``mount``."""

    def __init__(self, mount: Mount, mountpoint: str, write_test: bool) -> None:
        self.mount = mount
        self.mountpoint = mountpoint
        self.started = time.monotonic()
        self.facts: FilesystemFacts | None = None
        self.done = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(write_test,), name=f"volume-check {mountpoint}", daemon=True
        )
        thread.start()

    def _run(self, write_test: bool) -> None:
        try:
            self.facts = check_filesystem(self.mountpoint, write_test)
        except OSError as exc:
            log.warning("cannot check filesystem at %s: %s", self.mountpoint, exc)
        finally:
            self.done.set()


class VolumeCollector(NodeCollector):
    name = "volume"

    def __init__(
        self,
        config: ClusterConfig,
        *,
        proc_root: Path = PROC,
        sys_root: Path = SYS,
    ) -> None:
        super().__init__(config)
        self.proc_root = proc_root
        self.sys_root = sys_root
        self._checks: dict[str, _Check] = {}
        """The last filesystem check started per group (still running if its volume hangs)."""

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        deadline = time.monotonic() + timeout
        mounted = GaugeMetricFamily(
            "gardien_group_volume_mounted",
            "1 when the group's volume is mounted at its mountpoint from the expected device.",
            labels=["group", "device", "mountpoint"],
        )
        writable = GaugeMetricFamily(
            "gardien_group_volume_writable",
            "1 when the group's volume is mounted read-write and the write test passed.",
            labels=["group"],
        )
        free = GaugeMetricFamily(
            "gardien_group_volume_free_bytes",
            "Bytes available to unprivileged users on the group's volume (0 when not mounted).",
            labels=["group"],
        )
        size = GaugeMetricFamily(
            "gardien_group_volume_size_bytes",
            "Size of the filesystem on the group's volume (0 when not mounted).",
            labels=["group"],
        )
        try:
            mounts = shared_mount_table(facts or ScrapeFacts())(self.proc_root, self.sys_root)
        except OSError as exc:  # every volume is then reported not mounted, not left out
            log.error("cannot read the mount table: %s", exc)
            mounts = MountTable(())
        checks: dict[str, _Check | None] = {}
        rw: dict[str, bool] = {}
        for group, cfg in self.config.groups.items():
            if cfg.volume is None:
                continue
            mount = mounts.of_volume(cfg.volume)
            mounted.add_metric(
                [group, cfg.volume.device, cfg.volume.mountpoint], float(bool(mount))
            )
            rw[group] = mount is not None and not mount.read_only
            if mount is not None:
                checks[group] = self._start(group, mount, cfg.volume, rw[group])
            else:
                checks[group] = None
        for group, check in checks.items():
            found = None
            if check is not None and check.done.wait(max(deadline - time.monotonic(), 0.0)):
                found = check.facts
            elif check is not None:
                log.warning("filesystem check of group %s did not finish in time", group)
            volume = self.config.groups[group].volume
            assert volume is not None
            ok = rw[group] and found is not None and (found.written or not volume.write_test)
            writable.add_metric([group], float(ok))
            free.add_metric([group], found.free_bytes if found else 0.0)
            size.add_metric([group], found.size_bytes if found else 0.0)
        return [mounted, writable, free, size]

    def _start(self, group: str, mount: Mount, volume: VolumeConfig, read_write: bool) -> _Check:
        """The last check of the group's filesystem while it is younger than ``check_every`` and
        of this same mount, the previous one while it is still stuck (its answer, when it comes,
        proves the filesystem works again), else a new one."""
        previous = self._checks.get(group)
        if previous is not None and not previous.done.is_set():
            log.warning(
                "filesystem at %s blocked for %.0fs: waiting for that check, not starting another",
                previous.mountpoint,
                time.monotonic() - previous.started,
            )
            return previous
        if (
            previous is not None
            and previous.mount == mount
            and time.monotonic() - previous.started < volume.check_every
        ):
            return previous
        check = _Check(mount, volume.mountpoint, read_write and volume.write_test)
        self._checks[group] = check
        return check
