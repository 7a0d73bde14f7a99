"""The dashboards against Grafana 11.6's dashboard model, and what rules and dashboards query
against the metric contract (docs/metrics.md).

Schema: no JSON Schema of the Grafana 11.6 dashboard ships in a PyPI or npm package reachable
here (the grafana-foundation-sdk wheel carries the 11.6 models as Python classes, its repository's
``jsonschema/`` folder is not packaged).  So each dashboard is decoded with the SDK's
``Dashboard.from_json`` (panel options and field config by each panel plugin's own model,
queries by the Prometheus data query model) and encoded again: every key and value we wrote must
survive, so a key the 11.6 model does not know, or one at the wrong place, fails the test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.render.conftest import REPO
from tests.render.promql import (
    documented_metrics,
    panel_expressions,
    rule_expressions,
    unknown_names,
)

BOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
UIDS = {"gardien-overview", "gardien-node", "gardien-failover"}


def load(path: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def missing(written: Any, decoded: Any, where: str = "") -> list[str]:
    """Everything of ``written`` that ``decoded`` lost or changed (defaults it added are fine)."""
    if isinstance(written, dict):
        if not isinstance(decoded, dict):
            return [f"{where}: {decoded!r} is not an object"]
        return [m for k, v in written.items()
                for m in (missing(v, decoded[k], f"{where}.{k}") if k in decoded
                          else [f"{where}.{k}: unknown to the 11.6 model"])]  # fmt: skip
    if isinstance(written, list):
        if not isinstance(decoded, list) or len(decoded) != len(written):
            return [f"{where}: list changed"]
        return [m for i, (a, b) in enumerate(zip(written, decoded, strict=True))
                for m in missing(a, b, f"{where}[{i}]")]  # fmt: skip
    return [] if written == decoded else [f"{where}: {written!r} became {decoded!r}"]


def test_the_three_dashboards_are_there() -> None:
    assert {load(p)["uid"] for p in BOARDS} == UIDS


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_dashboard_fits_the_grafana_11_6_model(path: Any) -> None:
    register_default_plugins()
    written = load(path)
    decoded = json.loads(json.dumps(Dashboard.from_json(written), cls=JSONEncoder))
    for panel in decoded["panels"]:
        panel.pop("id", None)  # ids are set after the build, see render_dashboards
    for panel in written["panels"]:
        assert isinstance(panel.pop("id"), int)
    assert missing(written, decoded) == []


def test_the_model_check_can_fail() -> None:
    register_default_plugins()
    written = load(BOARDS[0])
    written["panels"][0]["fieldConfig"]["defaults"]["unitt"] = "s"
    decoded = json.loads(json.dumps(Dashboard.from_json(written), cls=JSONEncoder))
    assert any("unitt" in m for m in missing(written, decoded))


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_dashboard_conventions(path: Any) -> None:
    board = load(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["cluster"]["type"] == "query"
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'cluster="$cluster"' in target["expr"], (panel["title"], target["expr"])
    for name in ("node", "group"):
        used = any(f"${name}" in t["expr"] for p in board["panels"] for t in p["targets"])
        assert used == (name in variables), f"${name} used/declared mismatch in {path.name}"


def test_provisioning_points_at_the_dashboards() -> None:
    provisioning = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "dashboards" / "gardien.yml").read_text()
    )
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_every_metric_queried_is_in_the_contract() -> None:
    known = documented_metrics(REPO / "docs" / "metrics.md")
    assert "gardien_probe_success" in known and "gardien_smart_pending_sectors" in known
    rules = yaml.safe_load((REPO / "alerts" / "rules.yml").read_text())
    unknown = {name: unknown_names(expr, known) for name, expr in rule_expressions(rules).items()}
    for path in BOARDS:
        for title, exprs in panel_expressions(load(path)).items():
            unknown[f"{path.stem}: {title}"] = set().union(
                *(unknown_names(e, known) for e in exprs)
            )
    assert {k: v for k, v in unknown.items() if v} == {}
