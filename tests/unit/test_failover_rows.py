"""The failover benchmarks' rows: medians, ratios to gardien, the table and the JSON lines."""

from __future__ import annotations

import json

from benchmarks.failover_rows import Row, as_dict, json_lines, ratio, table

COMPARED = {"apache": "php4"}


def rows() -> list[Row]:
    return [
        Row(
            "php4",
            "Apache + Samba",
            "crash",
            "gardien",
            [
                {"detection": 0.4, "service start": 0.2, "answering": 3.0},
                {"detection": 0.6, "service start": 0.3, "answering": 4.0},
                {"detection": 0.5, "service start": 0.2, "answering": 5.0},
            ],
        ),
        Row("apache", "VIP", "crash", "keepalived", [{"answering": 2.0}, {"answering": 2.2}]),
        Row("apache", "group", "hang", "pacemaker", [{"answering": 64.0}]),
        Row("apache", "group", "isolation", "pacemaker", gave_up=90.0),
    ]


def test_a_peer_row_is_compared_with_gardiens_row_of_the_same_failure_and_kind() -> None:
    found = rows()
    assert ratio(found[1], found, COMPARED) == 4.0 / 2.1
    assert ratio(found[0], found, COMPARED) is None  # gardien's own row
    assert ratio(found[2], found, COMPARED) is None  # no gardien row for a hang


def test_json_gives_one_object_per_row_with_each_phase_median() -> None:
    found = rows()
    lines = [json.loads(line) for line in json_lines(found, COMPARED).splitlines()]
    assert len(lines) == 4
    assert lines[0] == {
        "group": "php4",
        "failure": "crash",
        "tool": "gardien",
        "runs": 3,
        "answering_median": 4.0,
        "answering_max": 5.0,
        "detection_median": 0.5,
        "service_start_median": 0.2,
    }
    assert lines[1]["gardien_ratio"] == 4.0 / 2.1
    assert lines[1]["answering_max"] == 2.2


def test_a_row_without_an_answer_says_how_long_it_waited() -> None:
    found = rows()
    assert as_dict(found[3], found, COMPARED) == {
        "group": "apache",
        "failure": "isolation",
        "tool": "pacemaker",
        "runs": 0,
        "answering_median": None,
        "answering_max": None,
        "gave_up_after": 90.0,
    }


def test_the_table_puts_every_tool_in_one_table() -> None:
    lines = table(rows(), ("detection", "service start", "answering"), COMPARED).splitlines()
    assert lines[0] == (
        "| group (kind) | failure | tool | runs | answering | gardien / this "
        "| detection | service start |"
    )
    assert lines[2] == (
        "| php4 (Apache + Samba) | crash | gardien | 3 | 4.00 (5.00) | - | 0.50 (0.60) "
        "| 0.20 (0.30) |"
    )
    assert lines[3] == "| apache (VIP) | crash | keepalived | 2 | 2.10 (2.20) | 1.90 | - | - |"
    assert lines[5] == (
        "| apache (group) | isolation | pacemaker | 0 | none within 90 s | - | - | - |"
    )
