"""smartctl's text output (smartctl older than 7.0 has no ``--json``), parsed by pySMART.

pySMART is given the output already read and never runs smartctl itself: its runner has no timeout
and does not keep the exit status (see :mod:`exporter.collectors.smart`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

from pySMART import Device
from pySMART.interface import AtaAttributes, NvmeAttributes
from pySMART.smartctl import Smartctl

from exporter.collectors.smartctl_output import (
    OFFLINE_UNCORRECTABLE,
    PENDING,
    POWER_ON_HOURS,
    REALLOCATED,
    SmartReading,
    as_number,
    hours_to_seconds,
)

log = logging.getLogger(__name__)


class _Replayed(Smartctl):  # type: ignore[misc]  # pySMART is untyped
    """Answers pySMART's queries with one output already read; never runs smartctl."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(smartctl_path="smartctl", options=[])
        self.lines = lines

    def generic_call(self, params: list[str], pass_options: bool = False) -> tuple[list[str], int]:
        if "--all" in params or "--info" in params:
            return self.lines, 0
        return [], 1  # pySMART's extra probing (-d test, -l sataphy...): "not available"


def _guess_type(text: str) -> str:
    if "NVMe" in text:
        return "nvme"
    if "Transport protocol" in text or re.search(r"^Vendor:", text, re.MULTILINE):
        return "scsi"
    return "ata"


def _attribute_raw(device: Any, attribute_id: int) -> float | None:
    attribute = device.if_attributes.legacyAttributes[attribute_id]
    return None if attribute is None or attribute.raw_int is None else float(attribute.raw_int)


def parse_text(output: str, name: str, device_type: str | None = None) -> SmartReading:
    # non-ASCII only appears in localised number separators: drop it like pySMART does
    lines = output.encode("ascii", "ignore").decode().splitlines()
    try:
        device = Device(
            name, interface=device_type or _guess_type(output), smartctl=_Replayed(lines)
        )
    except Exception as exc:  # pySMART raises anything on output it does not expect
        log.warning("pySMART could not parse smartctl output for %s: %s", name, exc)
        return SmartReading(healthy=False)
    reading = SmartReading(
        healthy=device.assessment in ("PASS", "WARN"),  # WARN: an attribute failed in the past
        temperature_celsius=as_number(device.temperature),
    )
    attributes = device.if_attributes
    if isinstance(attributes, AtaAttributes):
        hours = attributes.legacyAttributes[POWER_ON_HOURS]
        counts_hours = hours is not None and "Hour" in hours.name  # some count minutes
        return replace(
            reading,
            reallocated_sectors=_attribute_raw(device, REALLOCATED),
            pending_sectors=_attribute_raw(device, PENDING),
            offline_uncorrectable_sectors=_attribute_raw(device, OFFLINE_UNCORRECTABLE),
            power_on_seconds=hours_to_seconds(
                _attribute_raw(device, POWER_ON_HOURS) if counts_hours else None
            ),
        )
    if isinstance(attributes, NvmeAttributes):
        return replace(
            reading, power_on_seconds=hours_to_seconds(as_number(attributes.powerOnHours))
        )
    diagnostics = getattr(attributes, "diagnostics", None)  # SCSI
    return replace(
        reading,
        reallocated_sectors=as_number(getattr(diagnostics, "Reallocated_Sector_Ct", None)),
        power_on_seconds=hours_to_seconds(as_number(getattr(diagnostics, "Power_On_Hours", None))),
    )
