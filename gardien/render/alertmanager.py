"""Alertmanager config for a cluster (``gardien render alertmanager``).

Failover alerts (``failover="true"``) go at once to the hook of every node: each hook computes
the same target and only the target acts.  They also reach the people, like every other alert,
through the notification receiver, which is a placeholder for the operator to fill in.

Inhibition, and what is deliberately not inhibited:

* a network-wide outage inhibits every failover alert of the cluster: moving would not help;
* a node that is down inhibits the "exporter down" and "hook down" notifications of that node
  (one page, not three);
* node down / node isolated do NOT inhibit ``GardienGroupFailed`` on the same node.  The hook
  handles a node-level alert group by group and answers "already in progress" to the second
  signal, so the duplicate is harmless; an inhibition would instead hide the group's failure if
  the node-level alert resolves or its move is refused for one group (frozen, anti-flap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gardien import alerts
from gardien.config import ClusterConfig
from gardien.render.common import duration_option, prom_duration
from gardien.render.prometheus import hook_http_config, host_port

HOOKS_RECEIVER = "gardien-hooks"
NOTIFY_RECEIVER = "gardien-notify"
WEBHOOK_PATH = "/api/v1/alerts"


@dataclass(frozen=True)
class AlertmanagerOptions:
    group_wait: float = field(
        default=0.0,
        metadata=duration_option("--group-wait", "wait before the first failover notification"),
    )
    """How long Alertmanager waits to batch a new failover alert group before sending it.
    0 s sends at once: with ``group_by`` down to (alertname, group, node) there is nothing to
    batch, and every second here is a second of outage."""
    group_interval: float = field(
        default=0.2,
        metadata=duration_option("--group-interval", "wait before an update of a failover group"),
    )
    """Delay before sending an update of a group already notified (a resolution, a change).
    Short on purpose: Prometheus re-sends a resolved alert for 15 minutes, which keeps (or brings
    back) the group in Alertmanager, and a new failure of the same group then waits for the next
    group_interval tick instead of group_wait (measured: +5 s with 5 s, up to 1 s with 1 s).
    A tick that finds nothing changed sends nothing, so 5 ticks a second per failover alert group
    cost Alertmanager next to nothing."""
    repeat_interval: float = field(
        default=300.0,
        metadata=duration_option("--repeat-interval", "re-send a firing failover alert this often"),
    )
    """A still-firing failover alert is re-sent this often, so a hook that restarted (or refused
    because of a safety gate that has since cleared) hears of it again."""
    max_alerts: int = 10
    """Alerts per webhook body; a group holds one alert, so this only bounds a storm."""


def _webhooks(config: ClusterConfig, options: AlertmanagerOptions) -> list[dict[str, Any]]:
    hooks = []
    for node in config.nodes.values():
        scheme = "https" if config.hook.tls_ca_file else "http"
        hook: dict[str, Any] = {
            "url": f"{scheme}://{host_port(node.address, config.hook.port)}{WEBHOOK_PATH}",
            "send_resolved": True,
            "max_alerts": options.max_alerts,
        }
        http_config = hook_http_config(config)
        if http_config:
            hook["http_config"] = http_config
        hooks.append(hook)
    return hooks


def render_alertmanager(
    config: ClusterConfig, options: AlertmanagerOptions | None = None
) -> dict[str, Any]:
    """The alertmanager.yml as data."""
    options = options or AlertmanagerOptions()
    group_by = ["alertname", "cluster", "group", "node"]
    return {
        "route": {
            "receiver": NOTIFY_RECEIVER,
            "group_by": group_by,
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "receiver": HOOKS_RECEIVER,
                    "matchers": ['failover="true"'],
                    "group_by": group_by,
                    "group_wait": prom_duration(options.group_wait),
                    "group_interval": prom_duration(options.group_interval),
                    "repeat_interval": prom_duration(options.repeat_interval),
                    "continue": True,
                },
                # Failover alerts continue to here too: people hear of every alert.
                {"receiver": NOTIFY_RECEIVER},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": [f'alertname="{alerts.NETWORK_OUTAGE}"'],
                "target_matchers": ['failover="true"'],
                "equal": ["cluster"],
            },
            {
                "source_matchers": [f'alertname="{alerts.NODE_DOWN}"'],
                "target_matchers": [f'alertname=~"{alerts.EXPORTER_DOWN}|{alerts.HOOK_DOWN}"'],
                "equal": ["cluster", "node"],
            },
        ],
        "receivers": [
            {"name": HOOKS_RECEIVER, "webhook_configs": _webhooks(config, options)},
            # Placeholder: add email_configs, slack_configs... for the people on call.
            {"name": NOTIFY_RECEIVER},
        ],
    }
