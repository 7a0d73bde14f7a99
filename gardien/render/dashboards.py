"""Grafana dashboards for a cluster (``gardien render dashboards``), built with the
grafana-foundation-sdk (Grafana 11.6 models), plus the file-provisioning YAML that loads them.

Three dashboards with fixed uids: the cluster overview (where each group runs, its health, every
probe), the node detail (network reachability, link, volumes, VIPs, SMART) and the failover
history (moves, durations, outcomes, with an annotation per move).  The data source is a template
variable; ``$cluster``, ``$node`` and ``$group`` come from label values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from gardien.config import ClusterConfig
from gardien.options import Option, command_line
from gardien.render.panels import (
    CG,
    CN,
    DATASOURCE,
    HELD,
    UP_DOWN,
    C,
    Query,
    matrix_panel,
    new_dashboard,
    series_panel,
    stat_panel,
    timeline_panel,
)


@dataclass(frozen=True)
class DashboardOptions:
    """What ``gardien render dashboards`` takes besides the config."""

    dashboards_path: str = field(
        default="/var/lib/grafana/dashboards/gardien",
        metadata=command_line(
            Option(
                ("--dashboards-path",),
                metavar="DIR",
                help="where Grafana reads the dashboards, written into the provisioning file",
                show_default=str,
            )
        ),
    )


def overview() -> dash.Dashboard:
    board = new_dashboard(
        "gardien-overview",
        "Gardien / Cluster overview",
        "Where each group runs, whether it is healthy, and every probe.",
        ["node", "group"],
    )
    panels: list[Builder[Any]] = [
        matrix_panel(
            "Placement (group x node)",
            "1 where the node holds the group (volume and VIP).",
            f"max by (group, node) (gardien_group_active{{{C}}})",
            rows="group",
            columns="node",
            mappings=HELD,
        ),
        matrix_panel(
            "Group health on its active node",
            "0 when a probe of the group fails on the node that holds it.",
            f"group_node:gardien_probe_success:min{{{CG}}}"
            " and on (cluster, group, node) (gardien_group_active == 1)",
            rows="group",
            columns="node",
            mappings=UP_DOWN,
        ),
        stat_panel(
            "Nodes holding each group",
            "1 is right; 0 is down; 2 is split brain.",
            [Query(f"group:gardien_group_active:sum{{{CG}}}", "{{group}}")],
            width=12,
        ),
        stat_panel(
            "Daemons up",
            "Exporter and hook of each node, as Prometheus scrapes them.",
            [Query(f'up{{{CN}, job=~"gardien-exporter|gardien-hook"}}', "{{node}} {{job}}")],
            mappings=UP_DOWN,
            width=12,
        ),
        timeline_panel(
            "Probe status",
            "Every probe of every service (node services have no group).",
            [
                Query(
                    f'gardien_probe_success{{{CN}, group=~"$group|"}}',
                    "{{node}} {{service}}/{{probe}}",
                )
            ],
            mappings=UP_DOWN,
        ),
        series_panel(
            "Probe latency",
            "Time each probe took (a hung service shows its timeout).",
            [
                Query(
                    f'gardien_probe_duration_seconds{{{CN}, group=~"$group|"}}',
                    "{{node}} {{service}}/{{probe}}",
                )
            ],
            unit="s",
            width=24,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


def node_detail() -> dash.Dashboard:
    board = new_dashboard(
        "gardien-node",
        "Gardien / Node detail",
        "Network reachability, link, volumes, VIPs and disks of a node.",
        ["node"],
    )
    panels: list[Builder[Any]] = [
        matrix_panel(
            "Network reachability (target x node)",
            "1 when the node's ICMP echo to the target is answered.",
            f"max by (target, node) (gardien_network_target_up{{{CN}}})",
            rows="target",
            columns="node",
            mappings=UP_DOWN,
        ),
        stat_panel(
            "Network verdict",
            "1 when the link is up and at least one target answers.",
            [Query(f"node:gardien_network_reachable:bool{{{CN}}}", "{{node}}")],
            mappings=UP_DOWN,
            width=6,
        ),
        stat_panel(
            "Link",
            "Operstate up and carrier.",
            [Query(f"gardien_network_link_up{{{CN}}}", "{{node}} {{interface}}")],
            mappings=UP_DOWN,
            width=6,
        ),
        series_panel(
            "Round trip time",
            "Last answered echo per target (0 when none).",
            [Query(f"gardien_network_target_rtt_seconds{{{CN}}}", "{{node}} {{target}}")],
            unit="s",
            width=24,
        ),
        timeline_panel(
            "Volumes mounted and writable",
            "Per group volume, on the nodes that mount it.",
            [
                Query(f"gardien_group_volume_mounted{{{CN}}}", "{{node}} {{group}} mounted"),
                Query(f"gardien_group_volume_writable{{{CN}}}", "{{node}} {{group}} writable"),
            ],
            mappings=UP_DOWN,
            width=12,
        ),
        series_panel(
            "Volume usage",
            "Used fraction of each mounted volume.",
            [
                Query(
                    f"1 - gardien_group_volume_free_bytes{{{CN}}}"
                    f" / gardien_group_volume_size_bytes{{{CN}}}",
                    "{{node}} {{group}}",
                )
            ],
            unit="percentunit",
        ),
        timeline_panel(
            "VIPs",
            "1 when the group's virtual IP is on its interface.",
            [Query(f"gardien_group_vip_present{{{CN}}}", "{{node}} {{group}} {{address}}")],
            mappings=UP_DOWN,
            width=12,
        ),
        stat_panel(
            "SMART health",
            "smartctl's overall verdict per disk.",
            [Query(f"gardien_smart_healthy{{{CN}}}", "{{node}} {{device}}")],
            mappings=UP_DOWN,
            width=12,
        ),
        series_panel(
            "Disk temperature",
            "Per disk.",
            [Query(f"gardien_smart_temperature_celsius{{{CN}}}", "{{node}} {{device}}")],
            unit="celsius",
        ),
        series_panel(
            "Bad sectors",
            "Reallocated, pending and offline uncorrectable sectors per disk.",
            [
                Query(f"gardien_smart_reallocated_sectors{{{CN}}}", "{{node}} {{device}} realloc"),
                Query(f"gardien_smart_pending_sectors{{{CN}}}", "{{node}} {{device}} pending"),
                Query(
                    f"gardien_smart_offline_uncorrectable_sectors{{{CN}}}",
                    "{{node}} {{device}} offline unc.",
                ),
            ],
            unit="none",
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


def failover_history() -> dash.Dashboard:
    board = new_dashboard(
        "gardien-failover",
        "Gardien / Failover history",
        "Moves of each group: how many, how long, how they ended.",
        ["group"],
    ).annotation(
        dash.AnnotationQuery()
        .name("Moves")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("orange")
        .expr(f"changes(gardien_hook_last_move_timestamp_seconds{{{CG}}}[1m]) > 0")
    )
    panels: list[Builder[Any]] = [
        stat_panel(
            "Moves in range",
            "Moves each hook ran as target, per group.",
            [
                Query(
                    f"sum by (group) (increase(gardien_hook_moves_total{{{CG}}}[$__range]))",
                    "{{group}}",
                )
            ],
            width=8,
        ),
        stat_panel(
            "Failed moves in range",
            "Moves that ended in error.",
            [
                Query(
                    f"sum by (group) (increase(gardien_hook_moves_failed_total{{{CG}}}[$__range]))",
                    "{{group}}",
                )
            ],
            width=8,
        ),
        stat_panel(
            "Since last move",
            "Per group.",
            [
                Query(
                    f"time() - max by (group) (gardien_hook_last_move_timestamp_seconds{{{CG}}})",
                    "{{group}}",
                )
            ],
            unit="s",
            width=8,
        ),
        series_panel(
            "Move duration",
            "Median and 95th percentile of move durations.",
            [
                Query(
                    "histogram_quantile(0.5, sum by (group, le) (rate("
                    f"gardien_hook_move_duration_seconds_bucket{{{CG}}}[$__rate_interval])))",
                    "{{group}} p50",
                ),
                Query(
                    "histogram_quantile(0.95, sum by (group, le) (rate("
                    f"gardien_hook_move_duration_seconds_bucket{{{CG}}}[$__rate_interval])))",
                    "{{group}} p95",
                ),
            ],
            unit="s",
        ),
        series_panel(
            "Decisions",
            "What the hooks decided on alerts (moved, skipped, refused, not_mine...).",
            [
                Query(
                    "sum by (action) (increase("
                    f"gardien_hook_decisions_total{{{C}}}[$__rate_interval]))",
                    "{{action}}",
                )
            ],
            unit="none",
        ),
        timeline_panel(
            "Moving, settling, frozen",
            "Per group, on any node's hook.",
            [
                Query(
                    f"max by (group) (gardien_hook_move_in_progress{{{CG}}})", "{{group}} moving"
                ),
                Query(
                    f"max by (group) (gardien_hook_group_settling{{{CG}}})", "{{group}} settling"
                ),
                Query(f"max by (group) (gardien_hook_group_frozen{{{CG}}})", "{{group}} frozen"),
            ],
            mappings=[],
        ),
        series_panel(
            "Webhook requests",
            "Alertmanager notifications received, by HTTP status.",
            [
                Query(
                    "sum by (node, code) (increase("
                    f"gardien_hook_webhook_requests_total{{{C}}}[$__rate_interval]))",
                    "{{node}} {{code}}",
                )
            ],
            unit="none",
            width=24,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


DASHBOARDS = {
    "gardien-overview.json": overview,
    "gardien-node.json": node_detail,
    "gardien-failover.json": failover_history,
}


def _without_interval_fields(board: model.Dashboard) -> model.Dashboard:
    """Leave out ``auto``, ``auto_min`` and ``auto_count`` except on interval variables.

    The SDK's variable model defaults them to non-None values, so it writes them on every
    variable; they belong to interval variables only and Grafana 11.6's dashboard schema
    (``VariableModel`` of @grafana/schema 11.6.0) does not list them.
    """
    for variable in board.templating.list_val or []:
        if variable.type_val != model.VariableType.INTERVAL:
            variable.auto = variable.auto_min = variable.auto_count = None
    return board


def render_dashboards(config: ClusterConfig) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON (as data).

    The dashboards do not depend on the cluster config (every name comes from label values);
    the config is taken for the same signature as the other renderers.
    """
    del config
    rendered: dict[str, dict[str, Any]] = {}
    for name, build in DASHBOARDS.items():
        board = _without_interval_fields(build().build())
        data = json.loads(json.dumps(board, cls=JSONEncoder))
        for number, panel in enumerate(data["panels"], start=1):
            panel["id"] = number  # stable ids: links to a panel survive a re-render
        rendered[name] = data
    return rendered


def render_provisioning(dashboards_path: str) -> dict[str, Any]:
    """Grafana's file provisioning of the dashboards folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "gardien",
                "folder": "Gardien",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }
