"""The campaign's fault kinds, one registry: each kind draws its target from the campaign's random
generator and the placement of the moment, injects the fault, and returns how to heal it.

A kind that acts on one node accepts that node (``two-at-once`` puts two of them on different
nodes) and answers None when it has nothing to act on there (no group with that service).  A
node left off by a fault (fenced by the peer, or powered off) is powered on by the campaign after
the heal, as an operator would; a killed gardien daemon is restarted after its systemd unit's
``RestartSec`` (contrib/systemd).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gardien_lab import agents, faults, monitoring, services, topology
from gardien_lab.chaos import network
from gardien_lab.fence import fence
from gardien_lab.freeze import freeze, thaw
from gardien_lab.machines import ensure_network, machine_processes, set_links
from gardien_lab.netns import wait_exit
from gardien_lab.scenario import move_finished, wait_for
from gardien_lab.topology import NODES, Lab

HOLD = (2.0, 12.0)
"""How long most faults are held (seconds): longer than a failed probe takes to move a group."""
LONG_HOLD = (2.0, 50.0)
"""A silent node is fenced only once Prometheus and the peer's retries agree (about 30-40 s in
the lab): a node frozen, off or cut off is held from a blip to well past that."""

RESTART_SEC = 2.0
"""``RestartSec`` of contrib/systemd's gardien-hook and gardien-exporter units."""

SERVICES = {
    "apache": (("php4", "php5"), 0),
    "samba": (("php4", "php5"), 1),
    "mariadb": (("mysql1", "mysql2"), 0),
    "tomcat": (("java",), 0),
}
"""Service kind: the groups that run one, and its index among the group's services."""


@dataclass(frozen=True)
class Fault:
    """An injected fault: what it is (for people) and how to heal it."""

    kind: str
    description: str
    node: str | None
    heal: Callable[[], None]


@dataclass
class Context:
    lab: Lab
    rng: random.Random
    placement: dict[str, str]
    """Each group's node at the draw (the campaign starts a trial only when each runs on one)."""

    def groups_on(self, node: str, among: tuple[str, ...]) -> list[str]:
        return [g for g in among if self.placement.get(g) == node]

    def pick_node(self, node: str | None) -> str:
        return node if node is not None else self.rng.choice(NODES)


Inject = Callable[[Context, "str | None"], "Fault | None"]


@dataclass(frozen=True)
class Kind:
    name: str
    inject: Inject
    moves_at_most: int | None = None
    """Moves the fault may cause at most (0: nothing may move); None: as many as it needs."""
    on_one_node: bool = True
    """It acts on one node (it can be one of ``two-at-once``'s pair)."""
    held: bool = True
    """The fault lasts until healed (a link down, a stopped process); False: it is over once
    injected (a kill: what comes next is gardien's, or the supervisor's, to do)."""
    hold: tuple[float, float] = HOLD
    """How long the fault is held, drawn uniformly (seconds)."""


def _nothing() -> None:
    """The heal of a fault that gardien itself must repair (a crashed service: the move)."""


def _service_target(ctx: Context, service: str, node: str | None) -> tuple[str, str] | None:
    among, _ = SERVICES[service]
    if node is None:
        group = ctx.rng.choice(among)
        return group, ctx.placement[group]
    candidates = ctx.groups_on(node, among)
    return (ctx.rng.choice(candidates), node) if candidates else None


def _crash(service: str) -> Inject:
    def inject(ctx: Context, node: str | None) -> Fault | None:
        target = _service_target(ctx, service, node)
        if target is None:
            return None
        group, where = target
        pid = faults.service_pid(ctx.lab, where, group, SERVICES[service][1])
        if service == "apache":  # the master and its workers: the whole process group
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        return Fault(f"crash-{service}", f"{service} of {group} killed on {where}", where, _nothing)

    return inject


def _hang(service: str) -> Inject:
    def inject(ctx: Context, node: str | None) -> Fault | None:
        target = _service_target(ctx, service, node)
        if target is None:
            return None
        group, where = target
        pid = faults.service_pid(ctx.lab, where, group, SERVICES[service][1])
        whole = service == "apache"  # a stopped master alone keeps serving (docs/lab.md 5)
        stopped = os.getpgid(pid) if whole else pid
        freeze(stopped, group=whole)
        return Fault(
            f"hang-{service}",
            f"{service} of {group} stopped (SIGSTOP) on {where}",
            where,
            lambda: thaw(stopped, group=whole),
        )

    return inject


def _apache_workers(ctx: Context, node: str | None) -> Fault | None:
    """Every worker stopped, the master running: it sees no child die, so it forks none, and
    the connections wait in its listen queue (the process check still counts its children)."""
    target = _service_target(ctx, "apache", node)
    if target is None:
        return None
    group, where = target
    workers = faults.children(faults.service_pid(ctx.lab, where, group))
    for pid in workers:
        with contextlib.suppress(TimeoutError):  # a worker that exits meanwhile never stops
            freeze(pid, timeout=2)

    def heal() -> None:
        for pid in workers:
            thaw(pid)

    return Fault(
        "apache-workers",
        f"every Apache worker of {group} ({len(workers)}) stopped on {where}, its master running",
        where,
        heal,
    )


def _on_volume(lab: Lab, group: str, relative: str) -> Path | None:
    """``relative`` on the group's volume, through the one node that holds it now."""
    held = services.where(lab, services.lab_groups(lab)[group], NODES)
    if len(held) != 1 or lab.holder(held[0]) is None:
        return None
    return lab.fs_root(held[0]) / services.lab_groups(lab)[group].mountpoint.lstrip("/") / relative


def _page(group: str) -> str:
    return (
        f"tomcat/webapps/ROOT/{services.PAGE}"
        if group == "java"
        else f"apache/htdocs/{services.PAGE}"
    )


def _page_wrong(ctx: Context, node: str | None) -> Fault | None:
    among = ("php4", "php5", "java")
    candidates = ctx.groups_on(node, among) if node else list(among)
    if not candidates:
        return None
    group = ctx.rng.choice(candidates)
    page = _on_volume(ctx.lab, group, _page(group))
    if page is None or not page.exists():
        return None
    page.write_text("an error page: the application lost its data\n")

    def heal() -> None:
        fixed = _on_volume(ctx.lab, group, _page(group))
        if fixed is not None:
            fixed.write_text(services.page_text(group))

    return Fault(
        "page-wrong", f"{group}'s checked page wrong on its volume", ctx.placement[group], heal
    )


def _volume_full(ctx: Context, node: str | None) -> Fault | None:
    candidates = [g for g, n in ctx.placement.items() if node is None or n == node]
    if not candidates:
        return None
    group = ctx.rng.choice(sorted(candidates))
    filler = _on_volume(ctx.lab, group, "chaos-fill")
    if filler is None:
        return None
    stats = os.statvfs(filler.parent)
    size = stats.f_bfree * stats.f_frsize
    with filler.open("wb") as stream:  # every block, the ones reserved for root included
        for _ in range(20):
            try:
                os.posix_fallocate(stream.fileno(), 0, size)
                break
            except OSError:
                size //= 2

    def heal() -> None:
        left = _on_volume(ctx.lab, group, "chaos-fill")
        if left is not None:
            left.unlink(missing_ok=True)

    return Fault("volume-full", f"{group}'s volume filled up", ctx.placement[group], heal)


def _links(names: tuple[str, ...], what: str, kind: str) -> Inject:
    def inject(ctx: Context, node: str | None) -> Fault:
        where = ctx.pick_node(node)
        set_links(ctx.lab, where, up=False, names=names)

        def heal() -> None:
            if ctx.lab.holder(where) is not None:  # a fenced node comes back by power on
                # links up and the routes through them, which the kernel dropped
                ensure_network(ctx.lab, where)

        return Fault(kind, f"{what} of {where} down", where, heal)

    return inject


def _cluster_drop(ctx: Context, node: str | None) -> Fault | None:
    where = ctx.pick_node(node)
    network.drop_cluster_link(ctx.lab, where)
    return Fault(
        "cluster-link-drop",
        f"packets on {where}'s cluster link silently dropped (nftables)",
        where,
        lambda: network.undrop_cluster_link(ctx.lab, where),
    )


def _router(ctx: Context, _node: str | None) -> Fault:
    faults.router(ctx.lab, up=False)
    return Fault("router-down", "the router down", None, lambda: faults.router(ctx.lab, up=True))


def _external(ctx: Context, _node: str | None) -> Fault:
    faults.network_scope(ctx.lab, "external", up=False)
    return Fault(
        "external-down",
        "the external network down",
        None,
        lambda: faults.network_scope(ctx.lab, "external", up=True),
    )


def _node_freeze(ctx: Context, node: str | None) -> Fault:
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


def _node_off(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    fence(ctx.lab, where)
    return Fault("node-poweroff", f"{where} powered off", where, _nothing)


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


def _hook_kill(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    return Fault(
        "hook-kill", f"gardien hook of {where} killed", where, _kill_agent(ctx.lab, where, "hook")
    )


def _hook_kill_mid_move(ctx: Context, node: str | None) -> Fault | None:
    """A crash that starts a move, then the hook of its source or target killed within it."""
    target = _service_target(ctx, "apache", node)
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


def _exporter_kill(ctx: Context, node: str | None) -> Fault:
    where = ctx.pick_node(node)
    restart = _kill_agent(ctx.lab, where, "exporter")
    return Fault("exporter-kill", f"exporter of {where} killed", where, restart)


def _monitoring_restart(ctx: Context, _node: str | None) -> Fault:
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


def _webhook_old(ctx: Context, _node: str | None) -> Fault:
    group = ctx.rng.choice(sorted(ctx.placement))
    elsewhere = next(n for n in NODES if n != ctx.placement[group])
    network.deliver(ctx.lab, network.failed_alert(ctx.lab, group, elsewhere, age=3600.0), 1)
    return Fault(
        "webhook-old",
        f"an hour-old GardienGroupFailed of {group} on {elsewhere} (not its node) replayed",
        None,
        _nothing,
    )


def _webhook_fresh(ctx: Context, _node: str | None) -> Fault:
    group = ctx.rng.choice(sorted(ctx.placement))
    node = ctx.placement[group]
    network.deliver(ctx.lab, network.failed_alert(ctx.lab, group, node, age=0.0), 10)
    return Fault(
        "webhook-repeated",
        f"one fresh GardienGroupFailed of {group} on {node} delivered ten times",
        None,
        _nothing,
    )


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        *(Kind(f"crash-{s}", _crash(s), held=False) for s in SERVICES),
        *(Kind(f"hang-{s}", _hang(s)) for s in SERVICES),
        Kind("apache-workers", _apache_workers),
        Kind("page-wrong", _page_wrong),
        Kind("public-link-down", _links(("eth0",), "the public link", "public-link-down")),
        Kind(
            "cluster-link-down",
            _links(("eth1",), "the cluster link", "cluster-link-down"),
            hold=LONG_HOLD,
        ),
        Kind("cluster-link-drop", _cluster_drop, hold=LONG_HOLD),
        Kind("router-down", _router, moves_at_most=0, on_one_node=False),
        Kind("external-down", _external, moves_at_most=0, on_one_node=False),
        Kind("node-freeze", _node_freeze, hold=LONG_HOLD),
        Kind("node-poweroff", _node_off, hold=LONG_HOLD),
        Kind("hook-kill", _hook_kill, held=False),
        Kind("hook-kill-mid-move", _hook_kill_mid_move, held=False),
        Kind("exporter-kill", _exporter_kill, moves_at_most=0, held=False),
        Kind("monitoring-restart", _monitoring_restart, moves_at_most=0, on_one_node=False),
        Kind("webhook-old", _webhook_old, moves_at_most=0, on_one_node=False, held=False),
        Kind("webhook-repeated", _webhook_fresh, moves_at_most=1, on_one_node=False, held=False),
        Kind("volume-full", _volume_full),
    )
}
TWO_AT_ONCE = "two-at-once"
ALL_KINDS = (*KINDS, TWO_AT_ONCE)
