"""Faults of a node, the network and the monitoring: links down or dropping, router or external
network down, a node frozen or powered off, gardien's daemons killed, Prometheus and
Alertmanager restarted, webhooks replayed."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

from gardien_lab import agents, faults, monitoring, topology
from gardien_lab.chaos import network
from gardien_lab.chaos.fault import RESTART_SEC, Context, Fault, Inject, nothing
from gardien_lab.chaos.service_faults import service_target
from gardien_lab.fence import fence
from gardien_lab.machines import ensure_network, machine_processes, set_links
from gardien_lab.netns import wait_exit
from gardien_lab.scenario import move_finished, wait_for
from gardien_lab.topology import NODES, Lab


def links(names: tuple[str, ...], what: str, kind: str) -> Inject:
    def inject(ctx: Context, node: str | None) -> Fault:
        where = ctx.pick_node(node)
        set_links(ctx.lab, where, up=False, names=names)

        def heal() -> None:
            if ctx.lab.holder(where) is not None:  # a fenced node comes back by power on
                # links up and the routes through them, which the kernel dropped
                ensure_network(ctx.lab, where)

        return Fault(kind, f"{what} of {where} down", where, heal)

    return inject


def cluster_drop(ctx: Context, node: str | None) -> Fault | None:
    where = ctx.pick_node(node)
    network.drop_cluster_link(ctx.lab, where)
    return Fault(
        "cluster-link-drop",
        f"packets on {where}'s cluster link silently dropped (nftables)",
        where,
        lambda: network.undrop_cluster_link(ctx.lab, where),
    )


def router(ctx: Context, _node: str | None) -> Fault:
    faults.router(ctx.lab, up=False)
    return Fault("router-down", "the router down", None, lambda: faults.router(ctx.lab, up=True))


def external(ctx: Context, _node: str | None) -> Fault:
    faults.network_scope(ctx.lab, "external", up=False)
    return Fault(
        "external-down",
        "the external network down",
        None,
        lambda: faults.network_scope(ctx.lab, "external", up=True),
    )


def node_freeze(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    stopped = machine_processes(ctx.lab, where, include_holder=True)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)

    def heal() -> None:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    return Fault("node-freeze", f"every process of {where} stopped", where, heal)


def node_off(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    fence(ctx.lab, where)
    return Fault("node-poweroff", f"{where} powered off", where, nothing)


def _kill_agent(lab: Lab, node: str, name: str) -> Callable[[], None]:
    """SIGKILL of gardien's ``name`` daemon on ``node``; returns its restart by "systemd"."""
    pid = topology.running(lab, node, name)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 10)

    def restart() -> None:
        time.sleep(RESTART_SEC)
        if lab.holder(node) is not None:
            agents.start(lab, node)

    return restart


def hook_kill(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    return Fault(
        "hook-kill", f"gardien hook of {where} killed", where, _kill_agent(ctx.lab, where, "hook")
    )


def hook_kill_mid_move(ctx: Context, node: str | None) -> Fault | None:
    """A crash that starts a move, then the hook of its source or target killed within it."""
    target = service_target(ctx, "apache", node)
    if target is None:
        return None
    group, source = target
    victim = ctx.rng.choice(NODES)
    delay = ctx.rng.uniform(0.0, 1.0)
    os.killpg(os.getpgid(faults.service_pid(ctx.lab, source, group)), signal.SIGKILL)
    started = wait_for(lambda: not move_finished(ctx.lab, group), 20, interval=0.1)
    time.sleep(delay)
    restart = _kill_agent(ctx.lab, victim, "hook")
    when = f"{delay:.2f} s into its move" if started else "(no move seen within 20 s)"
    return Fault(
        "hook-kill-mid-move",
        f"apache of {group} killed on {source}, then the hook of {victim} killed {when}",
        source,
        restart,
    )


def exporter_kill(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    restart = _kill_agent(ctx.lab, where, "exporter")
    return Fault("exporter-kill", f"exporter of {where} killed", where, restart)


def monitoring_restart(ctx: Context, _node: str | None) -> Fault:
    for name in ("prometheus", "alertmanager"):
        pid = topology.running(ctx.lab, "mon", name)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_exit(pid, 30)
    return Fault(
        "monitoring-restart",
        "Prometheus and Alertmanager restarted",
        None,
        lambda: monitoring.start(ctx.lab),
    )


def webhook_old(ctx: Context, _node: str | None) -> Fault:
    group = ctx.rng.choice(sorted(ctx.placement))
    elsewhere = next(n for n in NODES if n != ctx.placement[group])
    network.deliver(ctx.lab, network.failed_alert(ctx.lab, group, elsewhere, age=3600.0), 1)
    return Fault(
        "webhook-old",
        f"an hour-old GardienGroupFailed of {group} on {elsewhere} (not its node) replayed",
        None,
        nothing,
    )


def webhook_fresh(ctx: Context, _node: str | None) -> Fault:
    group = ctx.rng.choice(sorted(ctx.placement))
    node = ctx.placement[group]
    network.deliver(ctx.lab, network.failed_alert(ctx.lab, group, node, age=0.0), 10)
    return Fault(
        "webhook-repeated",
        f"one fresh GardienGroupFailed of {group} on {node} delivered ten times",
        None,
        nothing,
    )
