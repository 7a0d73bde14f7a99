"""Network faults that need more than a link down, and webhook payloads delivered by hand.

* A cluster link that silently drops every packet (no link down, no ICMP error: the peer's
  connections time out) is an nftables table in the node's namespace;
* a webhook payload is delivered from ``mon``, as Alertmanager would, to every node's hook with
  the hook's bearer token.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from gardien import alerts
from gardien.render.alertmanager import WEBHOOK_PATH
from gardien_lab import agents, hookapi
from gardien_lab.netns import run
from gardien_lab.topology import NODES, Lab

TABLE = "gardien_chaos"
_DROP = f"""table inet {TABLE} {{
  chain input {{ type filter hook input priority -100; policy accept; iifname "eth1" drop; }}
  chain output {{ type filter hook output priority -100; policy accept; oifname "eth1" drop; }}
}}
"""


def drop_cluster_link(lab: Lab, node: str) -> None:
    run(["ip", "netns", "exec", lab.netns(node), "nft", "-f", "-"], input=_DROP)


def undrop_cluster_link(lab: Lab, node: str) -> None:
    """The table deleted (a node fenced meanwhile keeps its namespace, and the table with it)."""
    run(
        ["ip", "netns", "exec", lab.netns(node), "nft", "delete", "table", "inet", TABLE],
        check=False,
    )


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def failed_alert(lab: Lab, group: str, node: str, age: float) -> dict[str, Any]:
    """An Alertmanager v4 payload: ``GardienGroupFailed`` of ``group`` on ``node``, firing since
    ``age`` seconds."""
    alert = {
        "status": "firing",
        "labels": {
            "alertname": alerts.GROUP_FAILED,
            "cluster": f"gardien-{lab.name}",
            "group": group,
            "node": node,
            "failover": "true",
            "severity": "critical",
        },
        "annotations": {"summary": "delivered by gardien lab chaos"},
        "startsAt": _stamp(time.time() - age),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.invalid/graph",
        "fingerprint": uuid.uuid4().hex[:16],
    }
    return {
        "receiver": "gardien-hooks",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
    }


def deliver(lab: Lab, payload: dict[str, Any], times: int) -> None:
    """POST ``payload`` ``times`` times to every node's hook, as Alertmanager sends it."""
    body = json.dumps(payload)
    header = hookapi.auth_header(lab)
    for _ in range(times):
        for node in NODES:
            url = f"{agents.hook_url(lab, node)}{WEBHOOK_PATH}"
            run(
                [*lab.prefix_argv("mon"), "curl", "-sS", "-m", "5", "-o",
                 "/dev/null", "-H", f"@{header}", "-H", "Content-Type: application/json",
                 "--data-binary", "@-", url],
                input=body,
                check=False,
                timeout=10,
            )  # fmt: skip
