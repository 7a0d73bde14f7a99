"""SMART collector: smartctl's health verdict and wear counters of each configured local disk.

A SMART read can take seconds, so it is cached and redone at most every ``DiskConfig.interval``
(``gardien_smart_data_age_seconds`` says how old the exported values are).  Each read runs
``smartctl --json --all --nocheck=standby [-d TYPE] DEVICE`` in a thread of its own, under the
disk's hard timeout that kills smartctl's process group (a dying disk can hang it in the kernel for
minutes): the scrape waits for it only until its own deadline and otherwise exports the cache.

``--nocheck=standby`` keeps smartctl from spinning up a sleeping disk: it then exits with status 2
and says "Device is in STANDBY mode"; the cached values are kept and ``gardien_smart_standby`` is
1.  A read that times out, cannot start, or cannot open the disk (exit status bit 0 or 1) keeps the
cache too, but ``gardien_smart_healthy`` is 0 until a read completes: a disk that cannot answer is
not known healthy.

smartctl is run here rather than through pySMART, whose command runner has no timeout, cannot pass
``-n standby`` to every query it makes and drops the exit status; pySMART still parses text output
(smartctl older than 7.0, which has no ``--json``): see :mod:`exporter.collectors.smartctl_output`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts
from exporter.collectors.smartctl_output import (
    SmartReading,
    is_standby,
    parse_output,
    smartctl_message,
)
from gardien.command_runner import CommandResult, CommandRunner
from gardien.config import ClusterConfig, DiskConfig

log = logging.getLogger(__name__)

EXIT_BITS = 8
_COMMAND_LINE_ERROR = 1
"""Exit status bit 0: smartctl did not understand its command line (``--json`` before 7.0)."""
_NO_DATA = 0b11
"""Exit status bits 0 and 1 (command line, device open failed): the output holds no SMART data."""


@dataclass
class _DiskState:
    """What is known about one disk; written by its refresh thread under the collector's lock."""

    reading: SmartReading | None = None
    """The last completed read (standby answers and timeouts do not replace it)."""
    read_at: float | None = None
    exit_status: int = 0
    standby: bool = False
    failed: bool = False
    """The last attempt timed out or could not run smartctl."""
    attempted_at: float | None = None
    refresh: threading.Thread | None = None


def device_labels(disks: Sequence[DiskConfig]) -> list[str]:
    """The ``device`` label of each disk: its path, with the type when a path is listed twice
    (disks behind one RAID controller: ``/dev/sda [megaraid,0]``)."""
    paths = [d.device for d in disks]
    return [
        f"{d.device} [{d.type}]" if paths.count(d.device) > 1 and d.type else d.device
        for d in disks
    ]


class SmartCollector(NodeCollector):
    name = "smart"

    def __init__(
        self,
        config: ClusterConfig,
        *,
        runner: CommandRunner | None = None,
        smartctl: str = "smartctl",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config)
        self.runner = runner or CommandRunner()
        self.smartctl = smartctl
        self.clock = clock
        self._lock = threading.Lock()
        self._disks = list(zip(device_labels(config.disks), config.disks, strict=True))
        self._states = {label: _DiskState() for label, _ in self._disks}

    def argv(self, disk: DiskConfig, json: bool = True) -> list[str]:
        argv = [self.smartctl, *(["--json"] if json else []), "--all", "--nocheck=standby"]
        if disk.type:
            argv += ["-d", disk.type]
        return [*argv, disk.device]

    def read(self, disk: DiskConfig) -> CommandResult:
        """Run smartctl once (twice for smartctl < 7.0, which refuses ``--json``)."""
        result = self.runner.run(self.argv(disk), disk.timeout)
        if (
            result.returncode is not None
            and result.returncode & _COMMAND_LINE_ERROR
            and not result.stdout.lstrip().startswith("{")
        ):
            log.info("smartctl does not speak JSON: reading %s as text", disk.device)
            result = self.runner.run(self.argv(disk, json=False), disk.timeout)
        return result

    def _refresh(self, label: str, disk: DiskConfig) -> None:
        try:
            result = self.read(disk)
            code = result.returncode
            standby = code is not None and is_standby(result.output)
            usable = code is not None and not standby and not code & _NO_DATA
            reading = parse_output(result.stdout, disk.device, disk.type) if usable else None
        except Exception:  # a thread must not die silently: the disk is reported failed
            log.exception("SMART read of %s failed", disk.device)
            result = CommandResult((), None, "", "", 0, error="exception")
            standby, reading = False, None
        with self._lock:
            state = self._states[label]
            state.standby = standby
            state.failed = reading is None and not standby
            if result.returncode is not None and not standby:
                state.exit_status = result.returncode
            if reading is not None:
                state.reading, state.read_at = reading, self.clock()
        if reading is None and not standby:
            log.warning(
                "SMART read of %s failed (smartctl exit status %s): %s",
                disk.device,
                result.returncode,
                result.error
                or (f"killed at its {disk.timeout:g}s timeout" if result.timed_out else "")
                or smartctl_message(result.output),
            )

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        deadline = time.monotonic() + timeout
        now = self.clock()
        started = []
        with self._lock:
            for label, disk in self._disks:
                state = self._states[label]
                busy = state.refresh is not None and state.refresh.is_alive()
                due = state.attempted_at is None or now - state.attempted_at >= disk.interval
                if due and not busy:
                    state.attempted_at = now
                    state.refresh = threading.Thread(
                        target=self._refresh, args=(label, disk), name=f"smart {label}", daemon=True
                    )
                    state.refresh.start()
                    started.append(state.refresh)
        for thread in started:
            thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            return self._families(self.clock())

    def _families(self, now: float) -> list[Metric]:
        def gauge(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"gardien_smart_{name}", text, labels=["device"])

        healthy = gauge("healthy", "1 when smartctl's overall health verdict passed.")
        temperature = gauge("temperature_celsius", "Current temperature (NaN when not reported).")
        reallocated = gauge(
            "reallocated_sectors",
            "Reallocated sectors (SCSI: grown defects; NaN when not reported).",
        )
        pending = gauge(
            "pending_sectors", "Sectors waiting to be remapped (NaN when not reported)."
        )
        offline = gauge(
            "offline_uncorrectable_sectors",
            "Sectors found uncorrectable by offline scans (NaN when not reported).",
        )
        power_on = gauge("power_on_seconds", "Power-on time of the disk (NaN when not reported).")
        standby = gauge("standby", "1 when the disk was in standby and was not woken up.")
        age = gauge("data_age_seconds", "Age of the cached SMART read (+Inf before the first).")
        bits = GaugeMetricFamily(
            "gardien_smart_exit_status_bit",
            "Bits 0..7 of smartctl's exit status in the last completed read.",
            labels=["device", "bit"],
        )
        for label, _ in self._disks:
            state = self._states[label]
            reading = state.reading or SmartReading(healthy=False)
            healthy.add_metric([label], float(reading.healthy and not state.failed))
            for family, value in (
                (temperature, reading.temperature_celsius),
                (reallocated, reading.reallocated_sectors),
                (pending, reading.pending_sectors),
                (offline, reading.offline_uncorrectable_sectors),
                (power_on, reading.power_on_seconds),
            ):
                family.add_metric([label], math.nan if value is None else value)
            standby.add_metric([label], float(state.standby))
            age.add_metric([label], math.inf if state.read_at is None else now - state.read_at)
            for bit in range(EXIT_BITS):
                bits.add_metric([label, str(bit)], float(state.exit_status >> bit & 1))
        return [healthy, temperature, reallocated, pending, offline, power_on, bits, standby, age]
