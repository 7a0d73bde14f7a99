"""The chaos campaign's pure parts: the checker's reading of samples, the kinds' names and the
report."""

from __future__ import annotations

import argparse
import json

import pytest

from gardien_lab.chaos import report
from gardien_lab.chaos.campaign import Result, Trial, Violation
from gardien_lab.chaos.command import _kinds
from gardien_lab.chaos.kinds import ALL_KINDS, KINDS
from gardien_lab.chaos.watch import NodeFacts, Sample, Watch
from gardien_lab.topology import Lab


def facts(mounted: tuple[str, ...] = (), vips: tuple[str, ...] = ()) -> NodeFacts:
    return NodeFacts(frozenset(mounted), frozenset(vips))


def test_a_sample_with_a_volume_or_a_vip_on_two_nodes_is_a_double() -> None:
    fine = Sample(1.0, {"node1": facts(("php4",), ("php4",)), "node2": facts(("php5",))})
    assert fine.double() == []
    both = Sample(
        2.0, {"node1": facts(("php4",), ("php4",)), "node2": facts(("php4",), ("php5", "php4"))}
    )
    assert both.double() == [("php4", "volume"), ("php4", "VIP")]


def test_arrivals_are_the_moves_the_kernel_saw() -> None:
    watch = Watch(Lab(name="unit"), limit=0)
    on1 = {"node1": facts(("php4",), ("php4",)), "node2": facts()}
    gone = {"node1": facts(), "node2": facts()}
    half = {"node1": facts(), "node2": facts(("php4",))}
    on2 = {"node1": facts(), "node2": facts(("php4",), ("php4",))}
    for t, nodes in enumerate((on1, gone, half, on2, gone, on1, on1)):
        watch.changes.append(Sample(float(t), nodes))
    # only a node holding both volume and VIP counts; back on node1 is a move too
    assert watch.arrivals("php4") == [(3.0, "node2"), (5.0, "node1")]
    assert watch.arrivals("php5") == []
    assert [s.time for s in watch.around(3.0, span=1.0)] == [1.0, 2.0, 3.0, 4.0]


def test_every_kind_the_issue_names_is_in_the_registry() -> None:
    for kind in (
        "crash-apache", "crash-samba", "crash-mariadb", "crash-tomcat", "hang-apache",
        "hang-samba", "hang-mariadb", "hang-tomcat", "apache-workers", "page-wrong",
        "public-link-down", "cluster-link-down", "cluster-link-drop", "router-down",
        "external-down", "node-freeze", "node-poweroff", "hook-kill", "hook-kill-mid-move",
        "exporter-kill", "monitoring-restart", "webhook-old", "webhook-repeated", "volume-full",
        "two-at-once",
    ):  # fmt: skip
        assert kind in ALL_KINDS
    assert all(name == kind.name for name, kind in KINDS.items())


def test_unknown_kinds_are_refused_with_the_known_ones() -> None:
    assert _kinds("crash-apache, two-at-once") == ["crash-apache", "two-at-once"]
    with pytest.raises(argparse.ArgumentTypeError, match=r"crash-nothing.*the kinds: crash-apache"):
        _kinds("crash-nothing,crash-apache")


def test_the_report_tells_each_violation_with_its_replay_and_samples() -> None:
    result = Result(7, "lab", {"window": "60s"})
    result.trials.append(
        Trial(1, "crash-apache", ["apache of php4 killed on node1"], 10.0, 10.0, 14.0, 1)
    )
    bad = Trial(2, "node-poweroff", ["node1 powered off"], 20.0, 30.0, None, 0)
    bad.violations.append(
        Violation("not-recovered", 90.0, "php4 nowhere", 2, ("  -1.00 s  node1: mounted -",))
    )
    result.trials.append(bad)
    text = report.text(result)
    assert "replay: gardien lab chaos --seed 7 --faults 2" in text
    assert "1. crash-apache: apache of php4 killed on node1" in text
    assert "node1: mounted -" in text
    assert "violations: 1" in text
    rows = {r.kind: r for r in report.per_kind(result.trials)}
    assert rows["crash-apache"].outage_median == 4.0
    assert rows["node-poweroff"].recovered == 0
    data = json.loads(report.as_json(result))
    assert [v["invariant"] for v in data["violations"]] == ["not-recovered"]
    assert data["trials"][0]["outage"] == 4.0
