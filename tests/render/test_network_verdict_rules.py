"""The recording rule ``node:gardien_network_verdict:info`` against
:func:`gardien.node.verdict.judge`, with the real ``promtool``: every row of the verdict's table
(tests/unit/test_network_verdict.py) as the exporter's series, and the verdict the rule records
must be judge's (the rules and the hook agree).  The alerts for each fault on one node and on
both are in tests/render/test_rules.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gardien.config import ClusterConfig
from gardien.node.verdict import NetworkState, judge
from gardien.render.rules import render_rules
from tests.render.test_rules import CLUSTER, series, target
from tests.unit.test_network_verdict import ROWS, Row

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

VERDICT = "node:gardien_network_verdict:info"
NODE = "node1"


def _inputs(row: Row) -> list[dict[str, str]]:
    rows = [
        series(
            "gardien_network_target_up",
            {**target(NODE), "target": address, "scope": scope},
            "1x10" if up else "0x10",
        )
        for scope, answers in (("internal", row.internal), ("external", row.external))
        for address, up in answers.items()
    ]
    link = "1x10" if row.link else "0x10"
    rows.append(series("gardien_network_link_up", {**target(NODE), "interface": "eth0"}, link))
    return rows


def _expected(row: Row) -> list[dict[str, Any]]:
    state = judge(row.link, row.internal, row.external).state
    if state is NetworkState.UNKNOWN:  # nothing to judge by: the rule records nothing
        return []
    labels = f'cluster="{CLUSTER}", node="{NODE}", verdict="{state}"'
    return [{"labels": f"{VERDICT}{{{labels}}}", "value": 1}]


def _unit_tests(rows: list[Row]) -> dict[str, Any]:
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1s",
        "tests": [
            {
                "name": row.name,
                "interval": "1s",
                "input_series": _inputs(row),
                "promql_expr_test": [
                    {"expr": VERDICT, "eval_time": "5s", "exp_samples": _expected(row)}
                ],
            }
            for row in rows
        ],
    }


def _promtool(
    rules: dict[str, Any], rows: list[Row], folder: Path
) -> subprocess.CompletedProcess[str]:
    (folder / "rules.yml").write_text(yaml.safe_dump(rules))
    test_file = folder / "verdict_test.yml"
    test_file.write_text(yaml.safe_dump(_unit_tests(rows), sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(test_file)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_rule_records_judges_verdict_for_every_row(
    example_config: ClusterConfig, tmp_path: Path
) -> None:
    result = _promtool(render_rules(example_config), ROWS, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_rule_that_ignores_the_link_fails(example_config: ClusterConfig, tmp_path: Path) -> None:
    """The check can fail: the verdict of the hook before issue 9 (no link) disagrees."""
    rules = render_rules(example_config)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("record") == "node:gardien_network_reachable:bool":
                rule["expr"] = "node:gardien_network_target_up:max"
    link_down = [r for r in ROWS if r.name == "link down, targets answering (another route)"]
    result = _promtool(rules, link_down, tmp_path)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert (
        'verdict="isolated"' in out and 'got: {__name__="node:gardien_network_verdict:info"' in out
    )
    assert 'verdict="ok"} 1' in out  # what the broken rule recorded
