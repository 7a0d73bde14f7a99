"""The rendered files on real daemons, on loopback: Prometheus scrapes a real ``gardien exporter``
and two real ``gardien hook --dry-run`` with the rendered scrape config and rules; Alertmanager
routes with the rendered config.

* every rule expression and every dashboard query parses in Prometheus;
* every metric name they use is one the exporter or a hook really emits;
* every dashboard query returns a series where the daemons provide its data;
* end to end: the probed HTTP service is killed, the rules fire, Alertmanager delivers the webhook
  and the hooks' outcome names the group and the target (the time taken is printed, not asserted).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gardien.render.dashboards import render_dashboards
from gardien.render.rules import RECORDING_RULES, render_rules
from tests.render.daemons import wait_for
from tests.render.promql import instantiate, metric_names, panel_expressions, rule_expressions
from tests.render.stack import HttpService, Stack, cluster_config, first_decision, now, running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None,
        reason="prometheus / prometheus-alertmanager not installed",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="ICMP probes of the network collector need root"),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpService]:
    service = HttpService(tmp_path_factory.mktemp("service"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, service: HttpService) -> Iterator[Stack]:
    """Everything the dashboards show: network targets on loopback, a disk (smartctl cannot read
    it here: its metrics read 0), a group with a VIP (127.0.0.1/8 on lo) and an absent volume."""
    folder = tmp_path_factory.mktemp("stack")
    extra = {
        "network": {"interface": "lo", "internal": ["127.0.0.1"], "external": ["127.0.0.2"]},
        "disks": ["/dev/vda"],
        "groups": {"files": {
            "nodes": ["n2", "n1"],
            "volume": {"device": "/dev/gardien-test-absent", "mountpoint": str(folder / "vol")},
            "vip": {"address": "127.0.0.1/8", "interface": "lo"},
        }},
    }  # fmt: skip
    with running(folder, cluster_config(folder, service.url, extra=extra)) as stack:
        try:
            stack.wait_scraped(
                'gardien_group_active{group="web", node="n1"} == 1',
                'up{job="gardien-hook"} == 1',
                "group_node:gardien_probe_success:min",
            )
        except AssertionError:
            print(stack.logs())
            raise
        yield stack


@pytest.fixture(scope="module")
def exposed(stack: Stack) -> list[str]:
    """The exposition text of the exporter and both hooks, line by line."""
    urls = [*stack.exporters.values(), *stack.hooks.values()]
    return [line for url in urls for line in stack.scrape(url).splitlines() if line]


@pytest.fixture(scope="module")
def emitted(exposed: list[str]) -> set[str]:
    """Every family the daemons declare (``# TYPE``), with samples or not yet (a labelled
    counter has no sample before its first event)."""
    return {_family(line.split()[2]) for line in exposed if line.startswith("# TYPE ")}


@pytest.fixture(scope="module")
def with_samples(exposed: list[str]) -> set[str]:
    """The families that have samples now: the data the dashboards can show."""
    return {_family(line.split("{")[0].split(" ")[0]) for line in exposed
            if not line.startswith("#")}  # fmt: skip


def _family(name: str) -> str:
    return next(iter(metric_names(name)), name)


def _rules(stack: Stack) -> dict[str, Any]:
    return render_rules(stack.config, stack.rule_options)


def _panels(stack: Stack) -> dict[str, list[str]]:
    found = {}
    for name, board in render_dashboards(stack.config).items():
        for title, exprs in panel_expressions(board).items():
            found[f"{name}: {title}"] = [instantiate(e, stack.config.cluster) for e in exprs]
    return found


def test_every_rule_expression_parses(stack: Stack) -> None:
    assert stack.prometheus is not None
    errors = {}
    for name, expr in rule_expressions(_rules(stack)).items():
        answer = stack.prometheus.query(expr)
        if answer["status"] != "success":
            errors[name] = answer.get("error")
    assert errors == {}


def test_every_metric_used_is_emitted(stack: Stack, emitted: set[str]) -> None:
    used = {name: metric_names(expr) - set(RECORDING_RULES) - emitted
            for name, expr in rule_expressions(_rules(stack)).items()}  # fmt: skip
    for title, exprs in _panels(stack).items():
        used[title] = (
            set().union(*(metric_names(e) for e in exprs)) - set(RECORDING_RULES) - emitted
        )
    assert {k: v for k, v in used.items() if v} == {}


def test_every_panel_query_parses_and_shows_data(stack: Stack, with_samples: set[str]) -> None:
    """A query must return a series when every metric it reads has samples; the annotation
    query filters on moves (``> 0``), so it only has to parse."""
    assert stack.prometheus is not None
    problems: dict[str, str] = {}
    checked = 0
    for title, exprs in _panels(stack).items():
        for expr in exprs:
            answer = stack.prometheus.query(expr)
            if answer["status"] != "success":
                problems[title] = f"{expr}: {answer.get('error')}"
                continue
            raw = metric_names(expr) - set(RECORDING_RULES)
            if title.endswith("(annotations)") or not raw <= with_samples:
                continue
            checked += 1
            try:  # a rate over a counter born a moment ago needs a second sample
                wait_for(lambda e=expr: stack.prometheus.vector(e), expr, timeout=15, interval=0.5)
            except AssertionError:
                problems[title] = f"{expr}: no series"
    assert problems == {}
    assert checked >= 20, "the daemons provide too little data for this test to mean much"


def test_the_rendered_alertmanager_config_is_the_one_running(stack: Stack) -> None:
    assert stack.alertmanager is not None
    config = yaml.safe_load((stack.folder / "alertmanager.yml").read_text())
    urls = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert urls == [f"{url}/api/v1/alerts" for url in stack.hooks.values()]


def test_a_crashed_service_reaches_the_hooks(stack: Stack, service: HttpService) -> None:
    """Last in this module: it breaks the service the other tests read."""
    assert stack.prometheus is not None
    assert stack.prometheus.vector('gardien_probe_success{group="web"} == 1')
    stopped = now()
    service.crash()
    _, first = first_decision(stack, "web", stopped)
    print(
        f"\nservice killed -> webhook at a hook: {first['time'] - stopped:.2f} s (scrape and "
        f"evaluation 1 s, for {stack.rule_options.group_failed_for:g} s, group_wait 0 s)"
    )
    decisions = {}
    for node in stack.hooks:
        found = wait_for(
            lambda n=node: [d for d in stack.decisions(n) if d.get("group") == "web"],
            f"a decision about web on {node}",
        )
        decisions[node] = found[0]
    print(json.dumps(decisions, indent=1))
    target = decisions["n2"]
    assert target["alert"]["labels"]["alertname"] == "GardienGroupFailed"
    assert target["alert"]["labels"]["node"] == "n1"
    assert target["details"]["target"] == "n2"
    assert target["message"] == "dry run: would move web n1 -> n2"
    assert decisions["n1"]["message"] == "not mine: target is n2"
