"""The alert rules, checked and unit-tested with the real ``promtool``.

The unit-test file is generated for the rules of ``examples/intranet.yml``: scenarios below give
input series and the alerts expected (or expected absent) at an evaluation time; the expected
annotations are the rule's own templates filled with the expected labels and value, so a change
of wording does not need a change here, but a change of labels or value does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gardien.config import ClusterConfig
from gardien.render.rules import RuleOptions, alert_names, render_rules

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

CLUSTER = "intranet"
ADDRESSES = {"node1": "10.0.0.1", "node2": "10.0.0.2"}
PORTS = {"gardien-exporter": 19480, "gardien-hook": 19481}


def target(node: str, job: str = "gardien-exporter") -> dict[str, str]:
    """The labels Prometheus adds to every series of a target (see render prometheus)."""
    return {
        "cluster": CLUSTER,
        "node": node,
        "job": job,
        "instance": f"{ADDRESSES[node]}:{PORTS[job]}",
    }


def hook(node: str) -> dict[str, str]:
    return target(node, "gardien-hook")


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items() if v != "")
    return {"series": f"{metric}{{{inner}}}", "values": values}


def probe(node: str, group: str, service: str, probe_name: str, values: str) -> dict[str, str]:
    labels = {
        **target(node),
        "group": group,
        "service": service,
        "probe": probe_name,
        "kind": probe_name,
    }
    return series("gardien_probe_success", labels, values)


@dataclass
class Expect:
    """Alerts ``alert`` expected at ``at``: each a label set (without the rule's labels) and the
    value the annotations show; an empty list means "must not fire"."""

    at: str
    alert: str
    alerts: list[tuple[dict[str, str], float]] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    inputs: list[dict[str, str]]
    expects: list[Expect]
    interval: str = "1s"
    slow: bool = False
    """Hours of data: evaluated every minute instead of every second (promtool's run time)."""


def _group_active(n1: str, n2: str, group: str = "php4") -> list[dict[str, str]]:
    return [
        series("gardien_group_active", {**target("node1"), "group": group}, n1),
        series("gardien_group_active", {**target("node2"), "group": group}, n2),
    ]


def _hooks_idle(group: str = "php4") -> list[dict[str, str]]:
    return [
        series(metric, {**hook(node), "group": group}, "0x30")
        for node in ADDRESSES
        for metric in ("gardien_hook_move_in_progress", "gardien_hook_group_settling")
    ]


def _network(node: str, targets: str, link: str) -> list[dict[str, str]]:
    rows = [
        series("gardien_network_target_up", {**target(node), "target": t, "scope": s}, targets)
        for t, s in (("10.0.0.254", "internal"), ("192.0.2.1", "external"))
    ]
    rows.append(series("gardien_network_link_up", {**target(node), "interface": "eth0"}, link))
    return rows


FAILED = {"cluster": CLUSTER, "group": "php4", "node": "node1"}

NETWORK_FAULTS = {  # docs/alerting.md's table: (internal, external, link) of a node, and whether
    # it is cut off (gardien.node.verdict: isolated) or only degraded
    "link down": (("1x30", "1x30", "0x30"), True),
    "internal targets down only": (("0x30", "1x30", "1x30"), False),
    "external targets down only": (("1x30", "0x30", "1x30"), False),
    "internal and external targets down": (("0x30", "0x30", "1x30"), True),
}


def _scopes(node: str, internal: str, external: str, link: str) -> list[dict[str, str]]:
    """Two targets of each scope, answering alike, and the link."""
    rows = [
        series("gardien_network_target_up", {**target(node), "target": t, "scope": s}, values)
        for t, s, values in (
            ("10.0.0.254", "internal", internal),
            ("10.0.0.20", "internal", internal),
            ("192.0.2.1", "external", external),
            ("198.51.100.1", "external", external),
        )
    ]
    rows.append(series("gardien_network_link_up", {**target(node), "interface": "eth0"}, link))
    return rows


def _network_fault(fault: str, both: bool) -> Scenario:
    """One node (node1) or both with ``fault``: isolation, outage or nothing (degraded)."""
    values, cut_off = NETWORK_FAULTS[fault]
    peer = values if both else ("1x30", "1x30", "1x30")
    isolated = [({"cluster": CLUSTER, "node": "node1"}, 0)] if cut_off and not both else []
    outage = [({"cluster": CLUSTER}, 0)] if cut_off and both else []
    return Scenario(
        f"{fault} on {'both nodes' if both else 'one node'}",
        [*_scopes("node1", *values), *_scopes("node2", *peer)],
        [
            Expect("8s", "GardienNodeIsolated", isolated),
            Expect("8s", "GardienNetworkOutage", outage),
        ],
    )


SCENARIOS = [
    Scenario(
        "a probe failing on the active node fails the group after `for`",
        [
            *_group_active("1x30", "0x30"),
            *_hooks_idle(),
            probe("node1", "php4", "apache-php4", "http", "1 1 0x30"),
            probe("node1", "php4", "apache-php4", "process", "1x30"),
            probe("node2", "php4", "apache-php4", "http", "0x30"),
        ],
        [
            Expect("4s", "GardienGroupFailed"),  # failing since 2s: not yet 3s
            Expect("6s", "GardienGroupFailed", [(FAILED, 1)]),
        ],
    ),
    Scenario(
        "a broken process tree (process probe) fails the group",
        [
            *_group_active("1x30", "0x30"),
            probe("node1", "php4", "apache-php4", "process", "0x30"),
            probe("node1", "php4", "apache-php4", "http", "0x30"),
        ],
        [Expect("5s", "GardienGroupFailed", [(FAILED, 2)])],
    ),
    Scenario(
        "a flapping probe, never failing for `for`, does not fail the group",
        [
            *_group_active("1x30", "0x30"),
            probe("node1", "php4", "apache-php4", "http", "1 0 0 1 0 0 1 0 0 1 0 0 1 0 0 1"),
        ],
        [Expect(f"{t}s", "GardienGroupFailed") for t in range(0, 16)],
    ),
    Scenario(
        "probes failing on the passive node do not fail the group",
        [
            *_group_active("1x30", "0x30"),
            probe("node1", "php4", "apache-php4", "http", "1x30"),
            probe("node2", "php4", "apache-php4", "http", "0x30"),
        ],
        [Expect("10s", "GardienGroupFailed")],
    ),
    Scenario(
        "a group being moved (any node's hook) is starting, not failed",
        [
            *_group_active("1x30", "0x30"),
            probe("node1", "php4", "apache-php4", "http", "0x30"),
            series("gardien_hook_move_in_progress", {**hook("node2"), "group": "php4"}, "1x30"),
            series("gardien_hook_move_in_progress", {**hook("node1"), "group": "php4"}, "0x30"),
        ],
        [Expect("10s", "GardienGroupFailed")],
    ),
    Scenario(
        "a group settling after a move is starting, not failed; it fails once settled",
        [
            *_group_active("1x30", "0x30"),
            probe("node1", "php4", "apache-php4", "http", "0x30"),
            series("gardien_hook_group_settling", {**hook("node1"), "group": "php4"}, "1x10 0x20"),
        ],
        [Expect("10s", "GardienGroupFailed"), Expect("16s", "GardienGroupFailed", [(FAILED, 1)])],
    ),
    Scenario(
        "a local NIC failure isolates the node: failover, no outage",
        [*_network("node1", "1 1 0x30", "1 1 0x30"), *_network("node2", "1x30", "1x30")],
        [
            Expect("5s", "GardienNodeIsolated"),
            Expect("8s", "GardienNodeIsolated", [({"cluster": CLUSTER, "node": "node1"}, 0)]),
            Expect("8s", "GardienNetworkOutage"),
        ],
    ),
    Scenario(
        "targets lost by both nodes: network-wide outage, no isolation",
        [*_network("node1", "1 1 0x30", "1x30"), *_network("node2", "1 1 1 0x30", "1x30")],
        [
            Expect("3s", "GardienNetworkOutage", [({"cluster": CLUSTER}, 0)]),
            Expect("2s", "GardienNodeIsolated"),  # node1 first: isolation pending, not firing
            Expect("15s", "GardienNodeIsolated"),
            Expect("15s", "GardienNetworkOutage", [({"cluster": CLUSTER}, 0)]),
        ],
    ),
    *[_network_fault(fault, both) for fault in NETWORK_FAULTS for both in (False, True)],
    Scenario(
        "node down fires only while the peer is up",
        [
            series("up", target("node1"), "1 1 0x30"),
            series("up", hook("node1"), "1 1 0x30"),
            series("up", target("node2"), "1x30"),
            series("up", hook("node2"), "1x30"),
        ],
        [
            Expect("8s", "GardienNodeDown"),
            Expect("13s", "GardienNodeDown", [({"cluster": CLUSTER, "node": "node1"}, 0)]),
        ],
    ),
    Scenario(
        "every node unreachable (Prometheus cut off): no node down",
        [
            series("up", target("node1"), "0x30"),
            series("up", hook("node1"), "0x30"),
            series("up", target("node2"), "0x30"),
            series("up", hook("node2"), "0x30"),
        ],
        [Expect("20s", "GardienNodeDown")],
    ),
    Scenario(
        "only the exporter down: not a node down, an exporter down",
        [
            series("up", target("node1"), "0x70"),
            series("up", hook("node1"), "1x70"),
            series("up", target("node2"), "1x70"),
            series("up", hook("node2"), "1x70"),
        ],
        [
            Expect("20s", "GardienNodeDown"),
            Expect("65s", "GardienExporterDown", [(target("node1"), 0)]),
            Expect("65s", "GardienHookDown"),
        ],
    ),
    Scenario(
        "a hook down",
        [series("up", hook("node2"), "0x70"), series("up", target("node2"), "1x70")],
        [Expect("65s", "GardienHookDown", [(hook("node2"), 0)])],
    ),
    Scenario(
        "a group active on both nodes is split brain",
        _group_active("1x10", "0 0 1x10"),
        [
            Expect("1s", "GardienSplitBrain"),
            Expect("3s", "GardienSplitBrain", [({"cluster": CLUSTER, "group": "php4"}, 2)]),
        ],
    ),
    Scenario(
        "a group active nowhere",
        [*_group_active("1 0x80", "0x80")],
        [
            Expect("30s", "GardienGroupDown"),
            Expect("65s", "GardienGroupDown", [({"cluster": CLUSTER, "group": "php4"}, 0)]),
        ],
    ),
    Scenario(
        "a frozen group active nowhere is maintenance",
        [
            *_group_active("0x80", "0x80"),
            series("gardien_hook_group_frozen", {**hook("node1"), "group": "php4"}, "1x80"),
        ],
        [Expect("70s", "GardienGroupDown")],
    ),
    Scenario(
        "the active node's volume is not writable",
        [
            *_group_active("1x40", "0x40"),
            series("gardien_group_volume_writable", {**target("node1"), "group": "php4"}, "0x40"),
            series("gardien_group_volume_writable", {**target("node2"), "group": "php4"}, "0x40"),
        ],
        [Expect("35s", "GardienVolumeNotWritable", [({**target("node1"), "group": "php4"}, 0)])],
    ),
    Scenario(
        "the VIP is missing where the volume is mounted",
        [
            series(
                "gardien_group_volume_mounted",
                {
                    **target("node1"),
                    "group": "php4",
                    "device": "/dev/mapper/san-php4",
                    "mountpoint": "/srv/php4",
                },
                "1x30",
            ),
            series(
                "gardien_group_vip_present",
                {**target("node1"), "group": "php4", "address": "10.0.0.41", "interface": "eth0"},
                "0x30",
            ),
        ],
        [
            Expect("10s", "GardienVipMissing"),
            Expect(
                "20s",
                "GardienVipMissing",
                [({"cluster": CLUSTER, "group": "php4", "node": "node1"}, 0)],
            ),
        ],
    ),
    Scenario(
        "a node service failing (not a failover)",
        [probe("node2", "", "winbind", "winbind", "0x40")],
        [
            Expect(
                "35s",
                "GardienNodeServiceFailing",
                [
                    (
                        {
                            **target("node2"),
                            "service": "winbind",
                            "probe": "winbind",
                            "kind": "winbind",
                        },
                        0,
                    )
                ],
            ),
            Expect("35s", "GardienGroupFailed"),
        ],
    ),
    Scenario(
        "a failed move",
        [series("gardien_hook_moves_failed_total", {**hook("node2"), "group": "php4"}, "0 0 1x10")],
        [
            Expect("1s", "GardienMoveFailed"),
            Expect("5s", "GardienMoveFailed", [({**hook("node2"), "group": "php4"}, 1)]),
        ],
    ),
    Scenario(
        "a group moving max_moves times in the window is flapping",
        [
            series("gardien_hook_moves_total", {**hook("node2"), "group": "php4"}, "0 1 1 1"),
            series("gardien_hook_moves_total", {**hook("node1"), "group": "php4"}, "0 0 1 2"),
        ],
        [
            Expect("20m", "GardienGroupFlapping"),
            Expect("30m", "GardienGroupFlapping", [({"cluster": CLUSTER, "group": "php4"}, 3)]),
        ],
        interval="10m",
        slow=True,
    ),
    Scenario(
        "a group frozen for hours, a cluster frozen for hours",
        [
            series("gardien_hook_group_frozen", {**hook("node1"), "group": "php4"}, "1x300"),
            series("gardien_hook_cluster_frozen", hook("node1"), "1x300"),
        ],
        [
            Expect("3h", "GardienGroupFrozenTooLong"),
            Expect(
                "4h10m", "GardienGroupFrozenTooLong", [({"cluster": CLUSTER, "group": "php4"}, 1)]
            ),
            Expect("3h", "GardienClusterFrozenTooLong"),
            Expect("4h10m", "GardienClusterFrozenTooLong", [({"cluster": CLUSTER}, 1)]),
        ],
        interval="1m",
        slow=True,
    ),
    Scenario(
        "a rejected config reload, a failing collector",
        [
            series("gardien_config_last_reload_successful", target("node1"), "0x10"),
            series(
                "gardien_exporter_collector_success",
                {**target("node1"), "collector": "smart"},
                "0x10",
            ),
        ],
        [
            Expect("0m", "GardienConfigReloadFailed", [(target("node1"), 0)]),
            Expect("4m", "GardienCollectorFailing"),
            Expect(
                "6m", "GardienCollectorFailing", [({**target("node1"), "collector": "smart"}, 0)]
            ),
        ],
        interval="1m",
    ),
    Scenario(
        "disks: failing verdict, exit status bit 3, bad sectors, heat",
        [
            series("gardien_smart_healthy", {**target("node1"), "device": "/dev/sda"}, "0x20"),
            series("gardien_smart_healthy", {**target("node1"), "device": "/dev/sdb"}, "1x20"),
            series(
                "gardien_smart_exit_status_bit",
                {**target("node1"), "device": "/dev/sdb", "bit": "3"},
                "1x20",
            ),
            series(
                "gardien_smart_exit_status_bit",
                {**target("node1"), "device": "/dev/sda", "bit": "3"},
                "0x20",
            ),
            *[
                series(f"gardien_smart_{m}_sectors", {**target("node2"), "device": "/dev/sda"}, v)
                for m, v in (
                    ("reallocated", "8x20"),
                    ("pending", "0x20"),
                    ("offline_uncorrectable", "1x20"),
                )
            ],
            series(
                "gardien_smart_temperature_celsius",
                {**target("node2"), "device": "/dev/sda"},
                "60x20",
            ),
        ],
        [
            Expect(
                "0m",
                "GardienDiskFailing",
                [
                    ({**target("node1"), "device": "/dev/sda"}, 0),
                    ({**target("node1"), "device": "/dev/sdb", "bit": "3"}, 1),
                ],
            ),
            Expect("0m", "GardienDiskPrefail", [({**target("node2"), "device": "/dev/sda"}, 9)]),
            Expect("5m", "GardienDiskTemperatureHigh"),
            Expect(
                "11m",
                "GardienDiskTemperatureHigh",
                [({**target("node2"), "device": "/dev/sda"}, 60)],
            ),
        ],
        interval="1m",
    ),
]


def _go_value(value: float) -> str:
    """``{{ $value }}`` as Prometheus prints it (Go's %v of a float64)."""
    return f"{value:g}"


def _expand(template: str, labels: dict[str, str], value: float) -> str:
    text = template.replace("{{ $value }}", _go_value(value))
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)


def _rules_by_alert(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


def unit_tests(rules: dict[str, Any], rule_file: str, slow: bool) -> dict[str, Any]:
    by_alert = _rules_by_alert(rules)
    tests = []
    for scenario in (s for s in SCENARIOS if s.slow == slow):
        checks = []
        for expect in scenario.expects:
            rule = by_alert[expect.alert]
            checks.append(
                {
                    "eval_time": expect.at,
                    "alertname": expect.alert,
                    "exp_alerts": [
                        {
                            "exp_labels": {**labels, **rule["labels"]},
                            "exp_annotations": {
                                k: _expand(v, labels, value) for k, v in rule["annotations"].items()
                            },
                        }
                        for labels, value in expect.alerts
                    ],
                }
            )
        tests.append(
            {
                "name": scenario.name,
                "interval": scenario.interval,
                "input_series": scenario.inputs,
                "alert_rule_test": checks,
            }
        )
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m" if slow else "1s",
        "tests": tests,
    }


def run_unit_tests(
    rules: dict[str, Any], test_rules: dict[str, Any], folder: Path, slow: bool
) -> subprocess.CompletedProcess[str]:
    (folder / "rules.yml").write_text(yaml.safe_dump(rules))
    test_file = folder / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(unit_tests(test_rules, "rules.yml", slow), sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(test_file)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def rules(example_config: ClusterConfig) -> dict[str, Any]:
    return render_rules(example_config, RuleOptions())


def test_promtool_checks_the_rules(rules: dict[str, Any], tmp_path: Path) -> None:
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rule_file)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_unit_test(example_config: ClusterConfig) -> None:
    fired = {e.alert for s in SCENARIOS for e in s.expects if e.alerts}
    assert set(alert_names(example_config)) <= fired, set(alert_names(example_config)) - fired


@pytest.mark.parametrize("slow", [False, True], ids=["seconds", "hours"])
def test_promtool_unit_tests_pass(rules: dict[str, Any], tmp_path: Path, slow: bool) -> None:
    result = run_unit_tests(rules, rules, tmp_path, slow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_can_fail(rules: dict[str, Any], tmp_path: Path) -> None:
    """A broken rule (no `for`, so a flapping probe fires) makes promtool fail."""
    broken = yaml.safe_load(yaml.safe_dump(rules))
    _rules_by_alert(broken)["GardienGroupFailed"]["for"] = "0s"
    result = run_unit_tests(broken, rules, tmp_path, slow=False)
    assert result.returncode != 0
    assert "flapping probe" in result.stdout + result.stderr
