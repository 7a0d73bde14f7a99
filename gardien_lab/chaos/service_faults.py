"""Faults of a group's services and data: a service crashed or hung, every Apache worker stopped,
the checked page wrong, the volume full."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from gardien import polling
from gardien_lab import faults, services
from gardien_lab.chaos.fault import SERVICES, Context, Fault, Inject, nothing
from gardien_lab.freeze import freeze, thaw
from gardien_lab.netns import LabError
from gardien_lab.topology import NODES, Lab

HEAL_BOUND = 60.0
"""Seconds a heal waits for what it repairs to be reachable (a volume mounted again)."""


def service_target(ctx: Context, service: str, node: str | None) -> tuple[str, str] | None:
    among, _ = SERVICES[service]
    if node is None:
        group = ctx.rng.choice(among)
        return group, ctx.placement[group]
    candidates = ctx.groups_on(node, among)
    return (ctx.rng.choice(candidates), node) if candidates else None


def crash(service: str) -> Inject:
    def inject(ctx: Context, node: str | None) -> Fault | None:
        target = service_target(ctx, service, node)
        if target is None:
            return None
        group, where = target
        pid = faults.service_pid(ctx.lab, where, group, SERVICES[service][1])
        if service == "apache":  # the master and its workers: the whole process group
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        return Fault(f"crash-{service}", f"{service} of {group} killed on {where}", where, nothing)

    return inject


def hang(service: str) -> Inject:
    def inject(ctx: Context, node: str | None) -> Fault | None:
        target = service_target(ctx, service, node)
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


def apache_workers(ctx: Context, node: str | None) -> Fault | None:
    """Every worker stopped, the master running: it sees no child die, so it forks none, and
    the connections wait in its listen queue (the process check still counts its children)."""
    target = service_target(ctx, "apache", node)
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


def page_wrong(ctx: Context, node: str | None) -> Fault | None:
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
        # the volume may be between nodes (a move under way, a failed acquire rolled back): the
        # page is fixed once it is mounted again somewhere, the next acquire's attempt at latest
        fixed = polling.wait_for(lambda: _on_volume(ctx.lab, group, _page(group)), HEAL_BOUND)
        if fixed is None:
            raise LabError(f"{group}'s volume mounted nowhere for {HEAL_BOUND:g} s: page not fixed")
        fixed.write_text(services.page_text(group))

    return Fault(
        "page-wrong", f"{group}'s checked page wrong on its volume", ctx.placement[group], heal
    )


def volume_full(ctx: Context, node: str | None) -> Fault | None:
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
