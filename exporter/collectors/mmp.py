"""MMP collector: whether each group's volume device has ext4's multi-mount protection, as this
node reads it (:mod:`gardien.node.mmp`).

``dumpe2fs -h`` forks and reads the device, so a device is read at most every :data:`REFRESH`
seconds and the values are cached in between (``gardien_group_volume_mmp_data_age_seconds`` says how
old they are).  Each read runs in a thread of its own under a hard timeout: the scrape waits for
it only until its deadline and otherwise exports the cache (a SAN that hangs cannot hold the
scrape).  Every configured volume is exported, ``mmp: true`` or not: a volume without MMP shows
0, which is what an operator enabling it wants to see.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts
from gardien.command_runner import CommandRunner
from gardien.config import ClusterConfig
from gardien.node.mmp import MmpState, read_mmp

log = logging.getLogger(__name__)

REFRESH = 60.0
"""Seconds between two reads of a device's MMP state."""
_READ_TIMEOUT = 10.0


@dataclass
class _Cached:
    state: MmpState | None = None
    read_at: float | None = None
    refresh: threading.Thread | None = None


class MmpCollector(NodeCollector):
    name = "mmp"

    def __init__(
        self,
        config: ClusterConfig,
        *,
        runner: CommandRunner | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh: float = REFRESH,
    ) -> None:
        super().__init__(config)
        self.runner = runner or CommandRunner()
        self.clock = clock
        self.refresh = refresh
        self._lock = threading.Lock()
        self._volumes = {g: spec.volume for g, spec in config.groups.items() if spec.volume}
        self._cache = {group: _Cached() for group in self._volumes}

    def _read(self, group: str, device: str) -> None:
        try:
            state = read_mmp(device, self.runner, _READ_TIMEOUT)
        except Exception:  # a thread must not die silently: the device reads as unreadable
            log.exception("reading the MMP state of %s failed", device)
            state = MmpState(device, reason="the read failed (see the exporter's log)")
        with self._lock:
            cached = self._cache[group]
            cached.state, cached.read_at = state, self.clock()

    def _start_due(self) -> list[threading.Thread]:
        """Start a read of every device whose values are older than :attr:`refresh` and that
        is not being read already."""
        started = []
        now = self.clock()
        with self._lock:
            for group, volume in self._volumes.items():
                cached = self._cache[group]
                busy = cached.refresh is not None and cached.refresh.is_alive()
                fresh = cached.read_at is not None and now - cached.read_at < self.refresh
                if busy or fresh:
                    continue
                cached.refresh = threading.Thread(
                    target=self._read, args=(group, volume.device), name=f"mmp {group}", daemon=True
                )
                cached.refresh.start()
                started.append(cached.refresh)
        return started

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        deadline = time.monotonic() + timeout
        for thread in self._start_due():
            thread.join(max(deadline - time.monotonic(), 0.0))
        labels = ["group", "device"]
        enabled = GaugeMetricFamily(
            "gardien_group_volume_mmp_enabled",
            "1 when the volume's device has ext4 multi-mount protection (as last read here).",
            labels=labels,
        )
        readable = GaugeMetricFamily(
            "gardien_group_volume_mmp_readable",
            "1 when dumpe2fs could read the volume's device on this node at the last read.",
            labels=labels,
        )
        interval = GaugeMetricFamily(
            "gardien_group_volume_mmp_update_interval_seconds",
            "The device's MMP update interval (0 without MMP or unread).",
            labels=labels,
        )
        wait = GaugeMetricFamily(
            "gardien_group_volume_mmp_mount_wait_seconds",
            "How long a mount here would wait for MMP at the last read: 0 after a clean "
            "unmount, the kernel's wait while the MMP block holds a live sequence.",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "gardien_group_volume_mmp_data_age_seconds",
            "Seconds since the device's MMP state was last read (-1 before the first read).",
            labels=labels,
        )
        now = self.clock()
        with self._lock:
            cache = {group: (c.state, c.read_at) for group, c in self._cache.items()}
        for group, volume in self._volumes.items():
            state, read_at = cache[group]
            values = [group, volume.device]
            enabled.add_metric(values, float(state is not None and state.enabled))
            readable.add_metric(values, float(state is not None and state.readable))
            interval.add_metric(values, float(state.update_interval or 0) if state else 0.0)
            wait.add_metric(values, state.mount_wait() if state else 0.0)
            age.add_metric(values, now - read_at if read_at is not None else -1.0)
        return [enabled, readable, interval, wait, age]
