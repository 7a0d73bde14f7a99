"""Building blocks of the Grafana dashboards (:mod:`gardien.render.dashboards`): panels of
PromQL queries on the Prometheus data source variable, the label matchers of the dashboard
variables, value mappings, and a dashboard with its ``datasource``/``cluster``/``node``/``group``
variables, built with the grafana-foundation-sdk (Grafana 11.6 models)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# The selectors of the dashboard variables, to put inside the braces of a PromQL series selector.
C = 'cluster="$cluster"'
CN = 'cluster="$cluster", node=~"$node"'
CG = 'cluster="$cluster", group=~"$group"'

UP_DOWN: list[model.ValueMapping] = [
    model.ValueMap(
        options={
            "0": model.ValueMappingResult(text="down", color="red", index=0),
            "1": model.ValueMappingResult(text="up", color="green", index=1),
        }
    )
]
HELD: list[model.ValueMapping] = [
    model.ValueMap(
        options={
            "0": model.ValueMappingResult(text="-", color="transparent", index=0),
            "1": model.ValueMappingResult(text="active", color="green", index=1),
        }
    )
]


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel: a range query with a legend, or an instant one (a table)."""

    expr: str
    legend: str = ""
    instant: bool = False


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(query.expr).ref_id(ref_id).datasource(DATASOURCE)
    if query.legend:
        target = target.legend_format(query.legend)
    if query.instant:
        target = target.instant().format(PromQueryFormat.TABLE)
    return target


PanelBuilder = table.Panel | stat.Panel | statetimeline.Panel | timeseries.Panel


def _with(
    panel: PanelBuilder,
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    width: int,
    height: int,
) -> PanelBuilder:
    panel = panel.title(title).description(description).datasource(DATASOURCE)
    for i, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + i)))
    return panel.span(width).height(height)


def matrix_panel(
    title: str,
    description: str,
    expr: str,
    *,
    rows: str,
    columns: str,
    mappings: list[model.ValueMapping],
    width: int = 12,
) -> table.Panel:
    """A rows x columns table of an instant 0/1 query (e.g. group x node)."""
    panel = (
        table.Panel()
        .mappings(mappings)
        .with_transformation(
            model.DataTransformerConfig(
                id_val="groupingToMatrix",
                options={"columnField": columns, "rowField": rows, "valueField": "Value"},
            )
        )
    )
    result = _with(panel, title, description, [Query(expr, instant=True)], width=width, height=8)
    assert isinstance(result, table.Panel)
    return result


def timeline_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    mappings: list[model.ValueMapping],
    width: int = 24,
) -> statetimeline.Panel:
    result = _with(
        statetimeline.Panel().mappings(mappings), title, description, queries, width=width, height=8
    )
    assert isinstance(result, statetimeline.Panel)
    return result


def series_panel(
    title: str, description: str, queries: Sequence[Query], *, unit: str, width: int = 12
) -> timeseries.Panel:
    result = _with(
        timeseries.Panel().unit(unit), title, description, queries, width=width, height=8
    )
    assert isinstance(result, timeseries.Panel)
    return result


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "none",
    mappings: list[model.ValueMapping] | None = None,
    width: int = 6,
) -> stat.Panel:
    panel = stat.Panel().unit(unit).reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    if mappings:
        panel = panel.mappings(mappings)
    result = _with(panel, title, description, queries, width=width, height=5)
    assert isinstance(result, stat.Panel)
    return result


def _with_variables(board: dash.Dashboard, *extra: str) -> dash.Dashboard:
    """``datasource`` and ``cluster`` always; ``node`` and ``group`` as asked."""
    board = board.with_variable(
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
    )
    label_queries = {
        "cluster": "label_values(gardien_build_info, cluster)",
        "node": 'label_values(gardien_build_info{cluster="$cluster"}, node)',
        "group": 'label_values(gardien_group_active{cluster="$cluster"}, group)',
    }
    for name in ("cluster", *extra):
        variable = (
            dash.QueryVariable(name)
            .label(name.capitalize())
            .datasource(DATASOURCE)
            .query({"query": label_queries[name], "refId": f"{name}-values"})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )
        if name != "cluster":
            variable = variable.multi(True).include_all(True).all_value(".*")
        board = board.with_variable(variable)
    return board


def new_dashboard(
    uid: str, title: str, description: str, variables: Sequence[str]
) -> dash.Dashboard:
    board = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["gardien"])
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("browser")
        .readonly()
    )
    return _with_variables(board, *variables)
