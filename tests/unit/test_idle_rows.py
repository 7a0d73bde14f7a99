"""The idle-cost benchmark's per-node sum of a peer's daemons (benchmarks/idle_cost.py)."""

from __future__ import annotations

import os

from benchmarks.idle_cost import Watched, budgets, node_total


def test_a_nodes_daemons_are_summed_and_each_child_counted_once() -> None:
    parent = Watched("pr-a", "pacemakerd 1", os.getpid(), seconds=10.0)
    child = Watched("pr-a", "pacemaker-based 2", os.getppid(), seconds=10.0)
    parent.children = {child.ident, (9001, 5), (9002, 6)}  # the daemon it started, two checks
    child.children = {(9002, 6), (9003, 7)}
    found = {
        "pr-a pacemakerd 1": {"self": 0.5, "children": 2.0, "rss": 10.0, "forks": 0.3},
        "pr-a pacemaker-based 2": {"self": 0.25, "children": 0.0, "rss": 20.0, "forks": 0.2},
    }
    assert node_total([parent, child], found) == {
        "self": 0.75,
        "children": 2.0,
        "rss": 30.0,
        "forks": 0.3,  # 9001, 9002, 9003 in 10 s: not the watched daemon, 9002 once
    }


def test_budgets_are_only_said_for_a_measured_gardien() -> None:
    peers_only = {"pr-a keepalived (2 processes)": {"self": 0.1, "children": 0.8, "rss": 13.0}}
    assert budgets(peers_only, 1.0) == ""


def test_the_cpu_budget_follows_the_scrape_interval() -> None:
    node = {"self": 1.0, "children": 0.5, "rss": 40.0}
    found = {"node1 exporter": node, "node1 hook": node}
    assert budgets(found, 1.0) == (
        "node1: exporter + hook 3.00 % of a core (budget 2.0 %), "
        "exporter RSS 40.0 MiB (budget 45 MiB)"
    )
    assert "(budget 5.0 %)" in budgets(found, 0.5)
