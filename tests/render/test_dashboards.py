"""The dashboards against Grafana 11.6's dashboard schema and model, and what rules and dashboards
query against the metric contract (docs/metrics.md).

Schema: no JSON Schema of the Grafana 11.6 dashboard ships on PyPI, so the schema is generated
from Grafana's own generated TypeScript types of the dashboard (``Dashboard`` of the npm package
@grafana/schema 11.6.0) by ts-json-schema-generator 2.4.0, both installed by
scripts/install-deps.sh into ``.cache/grafana-schema``; every dashboard, committed and freshly
rendered, must validate against it (Draft 7).  That schema is closed (no unknown key anywhere)
while Grafana's CUE source leaves ``AnnotationQuery`` open for the data source's own query
fields: the Prometheus data source of Grafana 11.6 reads its annotation query at the top level
(``expr``, ``step``...), so exactly those fields are added to ``AnnotationQuery``.

Model: each dashboard is also decoded with the SDK's ``Dashboard.from_json`` (panel options and
field config by each panel plugin's own model, queries by the Prometheus data query model) and
encoded again: every key and value we wrote must survive.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from jsonschema import Draft7Validator, ValidationError

from gardien.config import ClusterConfig
from gardien.render.dashboards import DASHBOARDS, render_dashboards
from tests.render.conftest import REPO
from tests.render.promql import (
    documented_metrics,
    panel_expressions,
    rule_expressions,
    unknown_names,
)

BOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
UIDS = {"gardien-overview", "gardien-node", "gardien-failover"}

SCHEMA_DIR = REPO / ".cache" / "grafana-schema"  # scripts/install-deps.sh
GRAFANA_SCHEMA = SCHEMA_DIR / "node_modules" / "@grafana" / "schema"
DASHBOARD_TYPES = GRAFANA_SCHEMA / "dist/esm/raw/dashboard/x/dashboard_types.gen.d.ts"
GENERATOR = SCHEMA_DIR / "node_modules" / ".bin" / "ts-json-schema-generator"
# What @grafana/prometheus 11.6.0 reads at the top level of an annotation (annotationQuery,
# processAnnotationResponse): it has no target-based annotation support yet.
PROMETHEUS_ANNOTATION = {
    "expr": {"type": "string"},
    "step": {"type": "string"},
    "titleFormat": {"type": "string"},
    "textFormat": {"type": "string"},
    "tagKeys": {"type": "string"},
    "useValueForTime": {"type": "boolean"},
}


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


@pytest.fixture(scope="session")
def grafana_schema(tmp_path_factory: pytest.TempPathFactory) -> Draft7Validator:
    """Grafana 11.6's dashboard JSON Schema, generated once per session."""
    if not (GENERATOR.exists() and DASHBOARD_TYPES.exists()):
        pytest.skip(
            f"{SCHEMA_DIR} has no @grafana/schema 11.6.0 and ts-json-schema-generator 2.4.0:"
            " run scripts/install-deps.sh (npm)"
        )
    assert json.loads((GRAFANA_SCHEMA / "package.json").read_text())["version"] == "11.6.0"
    out = tmp_path_factory.mktemp("grafana-schema") / "dashboard.schema.json"
    subprocess.run(
        [
            str(GENERATOR),
            *("--path", str(DASHBOARD_TYPES), "--type", "Dashboard"),
            *("--no-type-check", "--out", str(out)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    schema = json.loads(out.read_text())
    schema["definitions"]["AnnotationQuery"]["properties"].update(PROMETHEUS_ANNOTATION)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def explain(error: ValidationError) -> list[str]:
    """The error at its JSON path; for a union (a panel is a Panel or a RowPanel), the errors of
    the branch that came closest instead of "not valid under any of the given schemas"."""
    if not error.context:
        return [f"{error.json_path}: {error.message}"]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    return [m for sub in min(branches.values(), key=len) for m in explain(sub)]


def schema_errors(validator: Draft7Validator, board: dict[str, Any]) -> list[str]:
    return [m for error in validator.iter_errors(board) for m in explain(error)]


def test_the_three_dashboards_are_there() -> None:
    assert {load(p)["uid"] for p in BOARDS} == UIDS


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_committed_dashboard_validates_against_the_grafana_11_6_schema(
    path: Any, grafana_schema: Draft7Validator
) -> None:
    assert schema_errors(grafana_schema, load(path)) == []


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_rendered_dashboard_validates_against_the_grafana_11_6_schema(
    name: str, grafana_schema: Draft7Validator, example_config: ClusterConfig
) -> None:
    assert schema_errors(grafana_schema, render_dashboards(example_config)[name]) == []


def test_the_schema_check_can_fail(grafana_schema: Draft7Validator) -> None:
    board = load(REPO / "grafana" / "dashboards" / "gardien-failover.json")
    board["panels"][1]["gridPos"]["w"] = "8"
    board["annotations"]["list"][0]["exprr"] = board["annotations"]["list"][0]["expr"]
    board["templating"]["list"][0]["auto"] = False
    assert schema_errors(grafana_schema, board) == [
        "$.annotations.list[0]: Additional properties are not allowed ('exprr' was unexpected)",
        "$.panels[1].gridPos.w: '8' is not of type 'number'",
        "$.templating.list[0]: Additional properties are not allowed ('auto' was unexpected)",
    ]


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
