"""Every alert name is a constant of :mod:`gardien.alerts`: the rules define exactly those, and the
``failover`` label marks exactly the alerts the hooks act on."""

from __future__ import annotations

from gardien import alerts
from gardien.config import ClusterConfig
from gardien.render.rules import alert_names, render_rules


def test_the_rules_define_exactly_the_alerts_named_in_gardien_alerts(
    example_config: ClusterConfig,
) -> None:
    constants = [
        value for name, value in vars(alerts).items() if name.isupper() and isinstance(value, str)
    ]

    assert sorted(alert_names(example_config)) == sorted(constants)


def test_the_failover_label_marks_exactly_the_alerts_the_hooks_act_on(
    example_config: ClusterConfig,
) -> None:
    rules = [r for group in render_rules(example_config)["groups"] for r in group["rules"]]

    labelled = {r["alert"] for r in rules if r.get("labels", {}).get("failover") == "true"}

    assert labelled == alerts.FAILOVER_ALERTS
