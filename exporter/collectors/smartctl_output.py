"""Read the facts gardien exports from one output of ``smartctl --all``.

smartctl 7.0 and later answer in JSON (``--json``), the machine interface smartctl documents and
versions (``json_format_version``): smartctl's own health verdict is ``smart_status.passed``, and
temperature and power-on time come already normalised across ATA, SCSI and NVMe.  Older smartctl
(and saved outputs) speak text, which pySMART parses: its :class:`pySMART.Device` is given the
output already read (:class:`_Replayed`), because left to itself it runs smartctl with no timeout,
drops the exit status, and runs extra commands (``-d test``, ``-l sataphy``...) while parsing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from pySMART import Device
from pySMART.interface import AtaAttributes, NvmeAttributes
from pySMART.smartctl import Smartctl

log = logging.getLogger(__name__)

_STANDBY = re.compile(r"Device is in [A-Z][A-Z ()]* mode, exit\(\d+\)")
_FIRST_INT = re.compile(r"\d+")

REALLOCATED, POWER_ON_HOURS, PENDING, OFFLINE_UNCORRECTABLE = 5, 9, 197, 198
"""ATA attribute ids."""


@dataclass(frozen=True)
class SmartReading:
    """What one completed smartctl run said about a disk (None: not reported by this disk)."""

    healthy: bool
    temperature_celsius: float | None = None
    reallocated_sectors: float | None = None
    pending_sectors: float | None = None
    offline_uncorrectable_sectors: float | None = None
    power_on_seconds: float | None = None


def is_standby(output: str) -> bool:
    """smartctl ``-n standby`` skipped the disk because it sleeps (text or JSON message)."""
    return _STANDBY.search(output) is not None


def smartctl_message(output: str) -> str:
    """What smartctl said went wrong, for the log: its JSON messages, or the last line of text."""
    if output.lstrip().startswith("{"):
        try:
            messages = json.loads(output).get("smartctl", {}).get("messages", [])
            return "; ".join(str(m.get("string", "")) for m in messages)
        except (ValueError, AttributeError):
            pass
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def parse_output(output: str, name: str, device_type: str | None = None) -> SmartReading:
    """The facts in one ``smartctl --all`` output (JSON or text); unhealthy when unreadable."""
    if output.lstrip().startswith("{"):
        try:
            document = json.loads(output)
        except ValueError as exc:
            log.warning("smartctl JSON for %s unreadable: %s", name, exc)
            return SmartReading(healthy=False)
        return parse_json(document)
    return parse_text(output, name, device_type)


def _ata_raw(attribute: dict[str, Any]) -> float | None:
    """The raw value as smartctl shows it (``"12 (Average 11)"`` is 12, not the packed 48 bits)."""
    raw = attribute.get("raw", {})
    match = _FIRST_INT.match(str(raw.get("string", "")))
    if match:
        return float(match.group())
    value = raw.get("value")
    return float(value) if isinstance(value, int | float) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_json(document: dict[str, Any]) -> SmartReading:
    attributes = {a.get("id"): a for a in document.get("ata_smart_attributes", {}).get("table", [])}

    def ata(attribute_id: int) -> float | None:
        return _ata_raw(attributes[attribute_id]) if attribute_id in attributes else None

    power_on = document.get("power_on_time", {})
    hours, minutes = _number(power_on.get("hours")), _number(power_on.get("minutes"))
    reallocated = ata(REALLOCATED)
    if reallocated is None:  # SCSI: the grown defect list holds the reallocated blocks
        reallocated = _number(document.get("scsi_grown_defect_list"))
    return SmartReading(
        healthy=document.get("smart_status", {}).get("passed") is True,
        temperature_celsius=_number(document.get("temperature", {}).get("current")),
        reallocated_sectors=reallocated,
        pending_sectors=ata(PENDING),
        offline_uncorrectable_sectors=ata(OFFLINE_UNCORRECTABLE),
        power_on_seconds=None if hours is None else hours * 3600 + (minutes or 0) * 60,
    )


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
        temperature_celsius=_number(device.temperature),
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
            power_on_seconds=_seconds(
                _attribute_raw(device, POWER_ON_HOURS) if counts_hours else None
            ),
        )
    if isinstance(attributes, NvmeAttributes):
        return replace(reading, power_on_seconds=_seconds(_number(attributes.powerOnHours)))
    diagnostics = getattr(attributes, "diagnostics", None)  # SCSI
    return replace(
        reading,
        reallocated_sectors=_number(getattr(diagnostics, "Reallocated_Sector_Ct", None)),
        power_on_seconds=_seconds(_number(getattr(diagnostics, "Power_On_Hours", None))),
    )


def _seconds(hours: float | None) -> float | None:
    return None if hours is None else hours * 3600
