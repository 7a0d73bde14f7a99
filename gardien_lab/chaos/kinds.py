"""The campaign's fault kinds, one registry: each kind draws its target from the campaign's random
generator and the placement of the moment, injects the fault, and returns how to heal it.

A kind that acts on one node accepts that node (``two-at-once`` puts two of them on different
nodes) and answers None when it has nothing to act on there (no group with that service).  A
node left off by a fault (fenced by the peer, or powered off) is powered on by the campaign after
the heal, as an operator would; a killed gardien daemon is restarted after its systemd unit's
``RestartSec`` (contrib/systemd).
"""

from __future__ import annotations

from gardien_lab.chaos.fault import LONG_HOLD, SERVICES, Kind
from gardien_lab.chaos.node_faults import (
    cluster_drop,
    exporter_kill,
    external,
    hook_kill,
    hook_kill_mid_move,
    links,
    monitoring_restart,
    node_freeze,
    node_off,
    router,
    webhook_fresh,
    webhook_old,
)
from gardien_lab.chaos.service_faults import apache_workers, crash, hang, page_wrong, volume_full

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        *(Kind(f"crash-{s}", crash(s), held=False) for s in SERVICES),
        *(Kind(f"hang-{s}", hang(s)) for s in SERVICES),
        Kind("apache-workers", apache_workers),
        Kind("page-wrong", page_wrong),
        Kind("public-link-down", links(("eth0",), "the public link", "public-link-down")),
        Kind(
            "cluster-link-down",
            links(("eth1",), "the cluster link", "cluster-link-down"),
            hold=LONG_HOLD,
        ),
        Kind("cluster-link-drop", cluster_drop, hold=LONG_HOLD),
        Kind("router-down", router, moves_at_most=0, on_one_node=False),
        Kind("external-down", external, moves_at_most=0, on_one_node=False),
        Kind("node-freeze", node_freeze, hold=LONG_HOLD),
        Kind("node-poweroff", node_off, hold=LONG_HOLD),
        Kind("hook-kill", hook_kill, held=False),
        Kind("hook-kill-mid-move", hook_kill_mid_move, held=False),
        Kind("exporter-kill", exporter_kill, moves_at_most=0, held=False),
        Kind("monitoring-restart", monitoring_restart, moves_at_most=0, on_one_node=False),
        Kind("webhook-old", webhook_old, moves_at_most=0, on_one_node=False, held=False),
        # the group did not fail: its node's check says so, and the confirmation moves nothing
        Kind("webhook-repeated", webhook_fresh, moves_at_most=0, on_one_node=False, held=False),
        Kind("volume-full", volume_full),
    )
}
TWO_AT_ONCE = "two-at-once"
ALL_KINDS = (*KINDS, TWO_AT_ONCE)
