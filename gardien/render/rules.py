"""Prometheus recording and alerting rules for a cluster (``gardien render rules``).

Conventions of the monitoring mixins: alerts are CamelCase ``Gardien*`` with ``severity``,
``summary``, ``description`` and ``runbook_url``; recording rules are named
``level:metric:operations``.  Every series carries ``cluster`` and ``node`` from the scrape config
(:mod:`gardien.render.prometheus`), so every aggregation keeps ``cluster``.

The failover hook acts on the alerts labelled ``failover="true"`` (those of
:data:`gardien.alerts.FAILOVER_ALERTS`: group failed, node isolated, node down) and treats
``GardienNetworkOutage`` as "no action"; Alertmanager also uses the outage to inhibit the failover
alerts (:mod:`gardien.render.alertmanager`).  Alert names are the constants of
:mod:`gardien.alerts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gardien import alerts
from gardien.config import ClusterConfig
from gardien.node.verdict import DEGRADED_BY_SCOPE, NetworkState
from gardien.options import Option, command_line
from gardien.render.common import duration_option, prom_duration

EXPORTER_JOB = "gardien-exporter"
HOOK_JOB = "gardien-hook"
DISK_TEMPERATURE_MAX_CELSIUS = 55
"""Above this a disk is too hot (HDD specifications usually stop at 55-60 degrees)."""
DEFAULT_RUNBOOK = "docs/runbook.md"


@dataclass(frozen=True)
class RuleOptions:
    """What an operator may tune without editing the rendered file (``gardien render`` flags)."""

    group_failed_for: float = field(
        default=3.0,
        metadata=duration_option(
            "--for.group-failed", "how long a probe of the active node fails before failover"
        ),
    )
    """A probe of the active node must fail this long before the group is declared failed: one
    failed scrape (a slow answer under load) must not move a group."""
    node_isolated_for: float = field(
        default=5.0,
        metadata=duration_option(
            "--for.node-isolated", "how long a node reaches no network target before failover"
        ),
    )
    """Longer than the skew between two nodes noticing a network-wide outage, so the outage alert
    exists (and inhibits) before an isolation alert could fire for the node that noticed first."""
    node_down_for: float = field(
        default=10.0,
        metadata=duration_option(
            "--for.node-down", "how long both daemons of a node are unreachable before fencing"
        ),
    )
    """Both daemons of a node unreachable this long: fencing follows, so be sure."""
    runbook: str = field(
        default=DEFAULT_RUNBOOK,
        metadata=command_line(
            Option(
                ("--runbook-url",),
                metavar="URL",
                help="where docs/runbook.md is published",
                show_default=str,
            )
        ),
    )
    """Where docs/runbook.md is published; each alert links to its section."""


@dataclass(frozen=True)
class _Alert:
    name: str
    expr: str
    for_: float
    severity: str
    summary: str
    description: str

    def rule(self, runbook: str) -> dict[str, Any]:
        labels = {"severity": self.severity}
        if self.name in alerts.FAILOVER_ALERTS:  # the hooks act on exactly these
            labels["failover"] = "true"
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": prom_duration(self.for_),
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook}#{self.name.lower()}",
            },
        }


_REACHABLE = "node:gardien_network_reachable:bool"
_SCOPE_UP = "node_scope:gardien_network_target_up:max"


def _verdict_expr() -> str:
    """``node:gardien_network_verdict:info``: 1 per node, its verdict in label ``verdict``.

    :func:`gardien.node.verdict.judge` in PromQL, over the exporter's series: isolated when the
    link is down or no target answers (``node:gardien_network_reachable:bool`` is 0), degraded
    when it is 1 and every target of one scope is down, ok otherwise; no series (``unknown``)
    for a node without targets.  tests/render/test_network_verdict_rules.py runs judge's table
    through it.
    """
    cases = {
        NetworkState.ISOLATED: f"{_REACHABLE} == 0",
        **{
            state: f'{_REACHABLE} == 1 and on (cluster, node) {_SCOPE_UP}{{scope="{scope}"}} == 0'
            for scope, state in DEGRADED_BY_SCOPE.items()
        },
        NetworkState.OK: f"{_REACHABLE} == 1 unless on (cluster, node) ({_SCOPE_UP} == 0)",
    }
    return "\nor ".join(
        f'label_replace(group by (cluster, node) ({expr}), "verdict", "{state}", "", "")'
        for state, expr in cases.items()
    )


# Recording rules: name -> expression.
_UP = f'up{{job=~"{EXPORTER_JOB}|{HOOK_JOB}"}}'
RECORDING_RULES: dict[str, str] = {
    # 0 when any probe of a group's service fails on that node.
    "group_node:gardien_probe_success:min": (
        'min by (cluster, group, node) (gardien_probe_success{group!=""})'
    ),
    # How many nodes hold each group (1 is right, 0 is down, 2 is split brain).
    "group:gardien_group_active:sum": "sum by (cluster, group) (gardien_group_active)",
    # 1 while any hook moves the group or lets it settle after a move ("starting").
    "group:gardien_hook_move_in_progress:max": (
        "max by (cluster, group) (gardien_hook_move_in_progress)"
    ),
    "group:gardien_hook_group_settling:max": (
        "max by (cluster, group) (gardien_hook_group_settling)"
    ),
    "group:gardien_hook_group_frozen:max": "max by (cluster, group) (gardien_hook_group_frozen)",
    # A node's network verdict (gardien.node.verdict): reachable (not isolated) is 1 when its
    # link is up and it reaches at least one target; the verdict says which scope it lacks.
    "node:gardien_network_target_up:max": "max by (cluster, node) (gardien_network_target_up)",
    _SCOPE_UP: "max by (cluster, node, scope) (gardien_network_target_up)",
    "node:gardien_network_link_up:min": "min by (cluster, node) (gardien_network_link_up)",
    _REACHABLE: (
        "node:gardien_network_target_up:max * on (cluster, node) node:gardien_network_link_up:min"
    ),
    "node:gardien_network_verdict:info": _verdict_expr(),
    # 1 while Prometheus reaches at least one of the node's two daemons.
    "node:up:max": f"max by (cluster, node) ({_UP})",
}

_STARTING = (
    "(group:gardien_hook_move_in_progress:max == 1 or group:gardien_hook_group_settling:max == 1)"
)


def _alerts(config: ClusterConfig, options: RuleOptions) -> dict[str, list[_Alert]]:
    """The alerts by what they watch."""
    hook = config.hook
    failover = [
        _Alert(
            alerts.GROUP_FAILED,
            'count by (cluster, group, node) (gardien_probe_success{group!=""} == 0)\n'
            "  and on (cluster, group, node) (gardien_group_active == 1)\n"
            f"unless on (cluster, group) {_STARTING}",
            options.group_failed_for,
            "critical",
            "Group {{ $labels.group }} failed on its active node {{ $labels.node }}",
            "{{ $value }} probe(s) of group {{ $labels.group }} fail on {{ $labels.node }}, the "
            "node that holds it; the hooks move the group to the next healthy node of its list.",
        ),
        _Alert(
            alerts.NODE_ISOLATED,
            "node:gardien_network_reachable:bool == 0\n"
            "  and on (cluster) (max by (cluster) (node:gardien_network_reachable:bool) == 1)",
            options.node_isolated_for,
            "critical",
            "Node {{ $labels.node }} is cut off from the network its peer still reaches",
            "{{ $labels.node }} reaches none of its network targets (or its link is down) while a "
            "peer reaches them: a local fault. The hooks move every group away from it.",
        ),
        _Alert(
            alerts.NODE_DOWN,
            "node:up:max == 0\n  and on (cluster) (max by (cluster) (node:up:max) == 1)",
            options.node_down_for,
            "critical",
            "Node {{ $labels.node }} is down (exporter and hook unreachable)",
            "Prometheus reaches neither the exporter nor the hook of {{ $labels.node }} while it "
            "reaches a peer. The hooks fence the node and take over its groups.",
        ),
    ]
    network = [
        _Alert(
            alerts.NETWORK_OUTAGE,
            "max by (cluster) (node:gardien_network_reachable:bool) == 0",
            0.0,
            "critical",
            "Network-wide outage in cluster {{ $labels.cluster }}",
            "No node reaches its network targets: the fault is in the network, not in a node. "
            "No group is moved (moving would not help), and failover alerts are inhibited.",
        ),
    ]
    groups = [
        _Alert(
            alerts.SPLIT_BRAIN,
            "group:gardien_group_active:sum > 1",
            0.0,
            "critical",
            "Group {{ $labels.group }} is active on {{ $value }} nodes",
            "More than one node holds the volume and VIP of group {{ $labels.group }}: data on a "
            "shared volume mounted twice gets corrupted. Stop it on all but one node now.",
        ),
        _Alert(
            alerts.GROUP_DOWN,
            "group:gardien_group_active:sum == 0\n"
            f"unless on (cluster, group) {_STARTING}\n"
            "unless on (cluster, group) (group:gardien_hook_group_frozen:max == 1)",
            60.0,
            "critical",
            "Group {{ $labels.group }} is active on no node",
            "No node holds group {{ $labels.group }} and it is neither moving nor frozen.",
        ),
        _Alert(
            alerts.VOLUME_NOT_WRITABLE,
            "gardien_group_volume_writable == 0\n"
            "  and on (cluster, group, node) (gardien_group_active == 1)",
            30.0,
            "critical",
            "Volume of group {{ $labels.group }} is not writable on {{ $labels.node }}",
            "The group's volume is mounted read-only or the write test fails on the node that "
            "holds the group (file system errors remount ext4 read-only).",
        ),
        _Alert(
            alerts.VIP_MISSING,
            "(\n  max by (cluster, group, node) (gardien_group_volume_mounted) == 1\n"
            "  or max by (cluster, group, node) (gardien_hook_group_held) == 1\n)\n"
            "  and on (cluster, group, node)"
            " (max by (cluster, group, node) (gardien_group_vip_present) == 0)\n"
            f"unless on (cluster, group) {_STARTING}",
            15.0,
            "critical",
            "VIP of group {{ $labels.group }} is missing on {{ $labels.node }}",
            "{{ $labels.node }} holds group {{ $labels.group }} (volume mounted or agent record) "
            "but its virtual IP is not on the interface: clients cannot reach the services.",
        ),
        _Alert(
            alerts.NODE_SERVICE_FAILING,
            'gardien_probe_success{group=""} == 0',
            30.0,
            "warning",
            "Node service {{ $labels.service }} fails on {{ $labels.node }}",
            "Probe {{ $labels.probe }} of node service {{ $labels.service }} fails. Node services "
            "run on every node and are never moved: repair it on the node.",
        ),
    ]
    hooks = [
        _Alert(
            alerts.HOOK_DOWN,
            f'up{{job="{HOOK_JOB}"}} == 0',
            60.0,
            "critical",
            "Failover hook of {{ $labels.node }} is down",
            "Prometheus cannot scrape the hook of {{ $labels.node }}: that node can neither take "
            "over a group nor release one on request.",
        ),
        _Alert(
            alerts.EXPORTER_DOWN,
            f'up{{job="{EXPORTER_JOB}"}} == 0',
            60.0,
            "critical",
            "Exporter of {{ $labels.node }} is down",
            "Prometheus cannot scrape the exporter of {{ $labels.node }}: its groups are not "
            "watched, so a failure there moves nothing.",
        ),
        _Alert(
            alerts.MOVE_FAILED,
            "increase(gardien_hook_moves_failed_total[10m]) > 0",
            0.0,
            "critical",
            "A move of group {{ $labels.group }} failed",
            "The hook of {{ $labels.node }} failed to move group {{ $labels.group }}; see "
            "`gardien history {{ $labels.group }}` for the step that failed.",
        ),
        _Alert(
            alerts.GROUP_FLAPPING,
            f"round(sum by (cluster, group) (increase(gardien_hook_moves_total"
            f"[{prom_duration(hook.window)}]))) >= {hook.max_moves}",
            0.0,
            "warning",
            "Group {{ $labels.group }} moved {{ $value }} times in "
            f"{prom_duration(hook.window)}",
            f"Group {{{{ $labels.group }}}} reached the anti-flap limit ({hook.max_moves} moves in "
            f"{prom_duration(hook.window)}): the hooks refuse to move it again automatically.",
        ),
        _Alert(
            alerts.GROUP_FROZEN_TOO_LONG,
            "group:gardien_hook_group_frozen:max == 1",
            4 * 3600.0,
            "warning",
            "Group {{ $labels.group }} has been frozen for hours",
            "Maintenance mode of group {{ $labels.group }} disables its failover; unfreeze it "
            "(`gardien unfreeze {{ $labels.group }}`) when the work is done.",
        ),
        _Alert(
            alerts.CLUSTER_FROZEN_TOO_LONG,
            "max by (cluster) (gardien_hook_cluster_frozen) == 1",
            4 * 3600.0,
            "warning",
            "Cluster {{ $labels.cluster }} has been frozen for hours",
            "Maintenance mode of the whole cluster disables every failover; "
            "`gardien unfreeze --all` when the work is done.",
        ),
        _Alert(
            alerts.CONFIG_RELOAD_FAILED,
            "gardien_config_last_reload_successful == 0",
            0.0,
            "warning",
            "Config reload failed on {{ $labels.node }} ({{ $labels.job }})",
            "The last reload of the cluster config was rejected; the old config stays in force. "
            "Run `gardien check-config` on the file.",
        ),
        _Alert(
            alerts.COLLECTOR_FAILING,
            "gardien_exporter_collector_success == 0",
            300.0,
            "warning",
            "Collector {{ $labels.collector }} fails on {{ $labels.node }}",
            "The exporter's {{ $labels.collector }} collector ends in error; its metrics read 0.",
        ),
    ]
    disks = [
        _Alert(
            alerts.DISK_FAILING,
            "gardien_smart_healthy == 0\n"
            'or on (cluster, node, device) gardien_smart_exit_status_bit{bit="3"} == 1',
            0.0,
            "critical",
            "Disk {{ $labels.device }} of {{ $labels.node }} is failing",
            "smartctl reports the disk as failing (overall health check failed, exit status bit "
            "3). Replace it.",
        ),
        _Alert(
            alerts.DISK_PREFAIL,
            "gardien_smart_reallocated_sectors + gardien_smart_pending_sectors"
            " + gardien_smart_offline_uncorrectable_sectors > 0",
            0.0,
            "warning",
            "Disk {{ $labels.device }} of {{ $labels.node }} has {{ $value }} bad sectors",
            "Reallocated, pending or offline uncorrectable sectors are above zero: the disk is "
            "wearing out.",
        ),
        _Alert(
            alerts.DISK_TEMPERATURE_HIGH,
            f"gardien_smart_temperature_celsius > {DISK_TEMPERATURE_MAX_CELSIUS}",
            600.0,
            "warning",
            "Disk {{ $labels.device }} of {{ $labels.node }} is at {{ $value }} degrees",
            f"The disk has been above {DISK_TEMPERATURE_MAX_CELSIUS} degrees Celsius for 10 "
            "minutes.",
        ),
    ]
    return {
        "failover": failover,
        "network": network,
        "groups": groups,
        "hooks": hooks,
        "disks": disks,
    }


def alert_names(config: ClusterConfig) -> list[str]:
    """Every alert the rules define (used by tests and the runbook check)."""
    return [a.name for kind in _alerts(config, RuleOptions()).values() for a in kind]


def render_rules(config: ClusterConfig, options: RuleOptions | None = None) -> dict[str, Any]:
    """The rule file as data."""
    options = options or RuleOptions()
    by_kind = _alerts(config, options)
    # Rules of one group run in order at the same timestamp: recording rules first, so the
    # failover alerts never read a verdict one evaluation old (that would be latency), and the
    # outage before the isolation it inhibits.
    first = [{"record": name, "expr": expr} for name, expr in RECORDING_RULES.items()]
    first += [a.rule(options.runbook) for a in by_kind.pop("network") + by_kind.pop("failover")]
    groups = [{"name": "gardien.failover", "rules": first}]
    groups += [
        {"name": f"gardien.{name}", "rules": [a.rule(options.runbook) for a in group]}
        for name, group in by_kind.items()
    ]
    return {"groups": groups}
