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
from dataclasses import dataclass
from typing import Any

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
    # pySMART (1.3 MiB) is only loaded for text output, i.e. smartctl older than 7.0
    from exporter.collectors.smartctl_text import parse_text  # noqa: PLC0415

    return parse_text(output, name, device_type)


def _ata_raw(attribute: dict[str, Any]) -> float | None:
    """The raw value as smartctl shows it (``"12 (Average 11)"`` is 12, not the packed 48 bits)."""
    raw = attribute.get("raw", {})
    match = _FIRST_INT.match(str(raw.get("string", "")))
    if match:
        return float(match.group())
    value = raw.get("value")
    return float(value) if isinstance(value, int | float) else None


def as_number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_json(document: dict[str, Any]) -> SmartReading:
    attributes = {a.get("id"): a for a in document.get("ata_smart_attributes", {}).get("table", [])}

    def ata(attribute_id: int) -> float | None:
        return _ata_raw(attributes[attribute_id]) if attribute_id in attributes else None

    power_on = document.get("power_on_time", {})
    hours, minutes = as_number(power_on.get("hours")), as_number(power_on.get("minutes"))
    reallocated = ata(REALLOCATED)
    if reallocated is None:  # SCSI: the grown defect list holds the reallocated blocks
        reallocated = as_number(document.get("scsi_grown_defect_list"))
    return SmartReading(
        healthy=document.get("smart_status", {}).get("passed") is True,
        temperature_celsius=as_number(document.get("temperature", {}).get("current")),
        reallocated_sectors=reallocated,
        pending_sectors=ata(PENDING),
        offline_uncorrectable_sectors=ata(OFFLINE_UNCORRECTABLE),
        power_on_seconds=None if hours is None else hours * 3600 + (minutes or 0) * 60,
    )


def hours_to_seconds(hours: float | None) -> float | None:
    return None if hours is None else hours * 3600
