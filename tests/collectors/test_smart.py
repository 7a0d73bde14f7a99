"""SMART collector replaying real smartctl captures through a stand-in ``smartctl`` first on PATH.

No disk here answers SMART (docs/lab.md section 5), so each test writes a ``smartctl`` script that
prints a captured output (``tests/fixtures/smart-captures``, with its sources and licences) and
exits with the captured exit status; the collector runs it exactly as it runs the real one (its own
process group, hard timeout). Expected values come from smartctl's own verdict in the capture
(``smart_status.passed``, ``smartctl.exit_status``, the attribute table), or, for text captures,
from the verdict line and the values pySMART's authors recorded beside them.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from exporter.collectors.smart import SmartCollector
from gardien.command_runner import DEFAULT_ENV, CommandRunner
from tests.collectors.helpers import Samples, config, samples, value

CAPTURES = Path(__file__).parents[1] / "fixtures" / "smart-captures"
JSON_DIR = CAPTURES / "smartctl-json"
TEXT_DIR = CAPTURES / "pysmart-text" / "singletests"
JSON_CAPTURES = sorted(JSON_DIR.glob("*.json"))
# text captures whose verdict pySMART's recorded values agree with (the others need -x output or
# a non-C locale that smartctl never prints under LC_ALL=C)
TEXT_CAPTURES = [
    "megaraid_ph_sata_hdd_0",
    "nvme_0",
    "nvme_6",
    "sas_hdd_0_issue_51",
    "sat_hdd_0_issue70",
    "sata_hdd_0_issue42",
    "sata_hdd_1_issue46",
    "sata_ssd_1_issue_72",
]
DEVICE = "/dev/gardien-test-disk"
"""Absent on every machine: the real smartctl cannot open it."""
REAL_SMARTCTL = shutil.which("smartctl", path="/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stand_in(bindir: Path, body: str) -> None:
    script = bindir / "smartctl"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def replay(bindir: Path, capture: Path, exit_status: int) -> None:
    stand_in(bindir, f"cat {shlex.quote(str(capture))}\nexit {exit_status}")


def collector(bindir: Path, clock: FakeClock | None = None, **disk: Any) -> SmartCollector:
    env = {**DEFAULT_ENV, "PATH": f"{bindir}:{DEFAULT_ENV['PATH']}"}
    return SmartCollector(
        config(disks=[{"device": DEVICE, **disk}]),
        runner=CommandRunner(env=env),
        clock=clock or FakeClock(),
    )


def smart(found: Samples, name: str) -> float:
    return value(found, f"gardien_smart_{name}", device=DEVICE)


def same(found: float, expected: float | None) -> bool:
    return math.isnan(found) if expected is None else found == expected


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("capture", JSON_CAPTURES, ids=lambda p: p.stem)
def test_json_capture_matches_smartctl_verdict(bindir: Path, capture: Path) -> None:
    document = json.loads(capture.read_text())
    exit_status = document["smartctl"]["exit_status"]
    replay(bindir, capture, exit_status)

    found = samples(collector(bindir).collect(10))

    assert smart(found, "healthy") == float(document["smart_status"]["passed"])
    assert smart(found, "temperature_celsius") == document["temperature"]["current"]
    attributes = {a["id"]: a for a in document.get("ata_smart_attributes", {}).get("table", [])}
    for attribute_id, name in (
        (5, "reallocated_sectors"),
        (197, "pending_sectors"),
        (198, "offline_uncorrectable_sectors"),
    ):
        expected = attributes[attribute_id]["raw"]["value"] if attribute_id in attributes else None
        if attribute_id == 5 and "scsi_grown_defect_list" in document:
            expected = document["scsi_grown_defect_list"]
        assert same(smart(found, name), expected), name
    power_on = document.get("power_on_time")
    seconds = power_on["hours"] * 3600 + power_on.get("minutes", 0) * 60 if power_on else None
    assert same(smart(found, "power_on_seconds"), seconds)
    for bit in range(8):
        bit_value = value(found, "gardien_smart_exit_status_bit", device=DEVICE, bit=str(bit))
        assert bit_value == (exit_status >> bit) & 1, f"bit {bit}"
    assert smart(found, "standby") == 0
    assert smart(found, "data_age_seconds") == 0


def test_json_captures_include_failures() -> None:
    """The parametrized test above must see failing drives too, or it proves little."""
    verdicts = [json.loads(p.read_text()) for p in JSON_CAPTURES]
    assert any(not d["smart_status"]["passed"] for d in verdicts)
    assert any(d["smartctl"]["exit_status"] & 0b11111100 for d in verdicts)


def text_capture(name: str) -> tuple[Path, dict[str, Any]]:
    folder = TEXT_DIR / name
    output = next(p for p in folder.iterdir() if "--all" in p.name)
    return output, json.loads((folder / "device.json").read_text())


@pytest.mark.parametrize("name", TEXT_CAPTURES)
def test_text_capture_parsed_by_pysmart(bindir: Path, name: str) -> None:
    output, device = text_capture(name)
    replay(bindir, output, 0)
    disk_type = device.get("interface") or output.name.split("_")[2]

    found = samples(collector(bindir, type=disk_type).collect(10))

    text = output.read_text(errors="replace")
    passed = "test result: PASSED" in text or "SMART Health Status: OK" in text
    recorded_pass = device["values"]["assessment"] == "PASS"
    assert smart(found, "healthy") == float(passed) == float(recorded_pass)
    assert same(smart(found, "temperature_celsius"), device["values"].get("temperature"))
    attributes = device["values"].get("attributes") or []
    if any(attributes):  # an ATA drive: its attribute table, as pySMART recorded it
        for attribute_id, metric in ((5, "reallocated_sectors"), (197, "pending_sectors")):
            recorded = attributes[attribute_id]
            assert same(smart(found, metric), recorded and recorded["raw_int"]), metric


def test_smartctl_without_json_is_read_as_text(bindir: Path) -> None:
    """smartctl < 7.0 refuses --json (exit bit 0): the collector asks again for text."""
    output, device = text_capture("sata_hdd_0_issue42")
    stand_in(
        bindir,
        'case "$*" in *--json*) echo "=======> UNRECOGNIZED OPTION: json"; exit 1;; esac\n'
        f"cat {shlex.quote(str(output))}",
    )

    found = samples(collector(bindir).collect(10))

    assert smart(found, "healthy") == 1
    assert smart(found, "temperature_celsius") == device["values"]["temperature"]
    assert value(found, "gardien_smart_exit_status_bit", device=DEVICE, bit="0") == 0


STANDBY_JSON = {
    # what smartctl 7.3 prints for a sleeping disk with --json -n standby (ataprint.cpp: jinf())
    "json_format_version": [1, 0],
    "smartctl": {
        "version": [7, 3],
        "exit_status": 2,
        "messages": [{"string": "Device is in STANDBY mode, exit(2)", "severity": "information"}],
    },
    "device": {"name": DEVICE, "type": "sat", "protocol": "ATA"},
}


@pytest.mark.parametrize(
    "standby_output",
    [json.dumps(STANDBY_JSON), "smartctl 6.6\n\nDevice is in STANDBY mode, exit(2)\n"],
    ids=["json", "text"],
)
def test_standby_keeps_cached_values(bindir: Path, tmp_path: Path, standby_output: str) -> None:
    capture = JSON_DIR / "sat-null-TOSHIBA_HDWR160-sdc.json"
    document = json.loads(capture.read_text())
    clock = FakeClock()
    smart_collector = collector(bindir, clock, interval=60)
    replay(bindir, capture, 0)
    first = samples(smart_collector.collect(10))
    sleeping = tmp_path / "standby.out"
    sleeping.write_text(standby_output)
    replay(bindir, sleeping, 2)

    clock.now += 30  # within the interval: cached, smartctl not run
    cached = samples(smart_collector.collect(10))
    clock.now += 45  # due again: the disk sleeps
    asleep = samples(smart_collector.collect(10))

    assert smart(first, "standby") == smart(cached, "standby") == 0
    assert smart(cached, "data_age_seconds") == 30
    assert smart(asleep, "standby") == 1
    assert smart(asleep, "data_age_seconds") == 75
    assert smart(asleep, "healthy") == 1
    assert smart(asleep, "temperature_celsius") == document["temperature"]["current"]
    assert smart(asleep, "power_on_seconds") == smart(first, "power_on_seconds")
    assert value(asleep, "gardien_smart_exit_status_bit", device=DEVICE, bit="1") == 0


def process_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # killed, waiting for a late reaper (docs/lab.md section 10)


def test_hanging_smartctl_is_killed_at_the_disk_timeout(bindir: Path, tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    stand_in(bindir, f"sleep 300 &\necho $! > {child}\nwait")

    found = samples(collector(bindir, timeout=2).collect(20))

    assert smart(found, "healthy") == 0
    assert math.isinf(smart(found, "data_age_seconds"))
    assert math.isnan(smart(found, "temperature_celsius"))
    assert process_gone(int(child.read_text()))


def test_a_read_still_running_is_not_started_twice(bindir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    stand_in(bindir, f"echo run >> {runs}\nexec sleep 3")
    clock = FakeClock()
    smart_collector = collector(bindir, clock, timeout=2, interval=1)

    first = samples(smart_collector.collect(0.2))  # the scrape gives up before smartctl ends
    clock.now += 5
    second = samples(smart_collector.collect(0.2))

    assert smart(first, "healthy") == smart(second, "healthy") == 0
    assert runs.read_text().count("run") == 1


def test_missing_smartctl_reports_unhealthy(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    smart_collector = SmartCollector(
        config(disks=[DEVICE]),
        runner=CommandRunner(env={"PATH": str(empty)}),
        smartctl=str(empty / "smartctl"),
    )

    found = samples(smart_collector.collect(5))

    assert smart(found, "healthy") == 0
    assert math.isinf(smart(found, "data_age_seconds"))
    assert os.listdir(empty) == []


@pytest.mark.skipif(REAL_SMARTCTL is None, reason="smartctl (smartmontools) not installed")
def test_real_smartctl_cannot_open_the_disk() -> None:
    disks = [{"device": DEVICE, "type": "sat"}]
    found = samples(SmartCollector(config(disks=disks)).collect(20))

    assert smart(found, "healthy") == 0
    assert value(found, "gardien_smart_exit_status_bit", device=DEVICE, bit="1") == 1
    assert math.isinf(smart(found, "data_age_seconds"))
    assert smart(found, "standby") == 0


@pytest.mark.skipif(REAL_SMARTCTL is None, reason="smartctl (smartmontools) not installed")
def test_disk_gone_after_a_good_read_keeps_the_cache_unhealthy(bindir: Path) -> None:
    capture = JSON_DIR / "sat-null-TOSHIBA_HDWR160-sdc.json"
    clock = FakeClock()
    smart_collector = collector(bindir, clock, interval=60, type="sat")
    replay(bindir, capture, 0)
    good = samples(smart_collector.collect(10))
    stand_in(bindir, f'exec {REAL_SMARTCTL} "$@"')  # the real smartctl, on a disk that is not there

    clock.now += 60
    gone = samples(smart_collector.collect(20))

    assert smart(good, "healthy") == 1
    assert smart(gone, "healthy") == 0
    assert value(gone, "gardien_smart_exit_status_bit", device=DEVICE, bit="1") == 1
    assert smart(gone, "temperature_celsius") == smart(good, "temperature_celsius")
    assert smart(gone, "data_age_seconds") == 60
    assert smart(gone, "standby") == 0
