"""Faults the demo, the lab tests and the benchmark inject (each acts on one machine of the lab)."""

from __future__ import annotations

import contextlib
import os
import signal

from gardien.node import liveness
from gardien_lab import services
from gardien_lab.freeze import freeze, thaw
from gardien_lab.machines import ensure_network, set_links
from gardien_lab.netns import run
from gardien_lab.topology import Lab, running


def _pid_on(lab: Lab, node: str, pidfile: str) -> int:
    return int((lab.fs_root(node) / pidfile.lstrip("/")).read_text().split()[0])


def service_pid(lab: Lab, node: str, group: str, index: int = 0) -> int:
    """PID (from its pid file) of the group's ``index``-th service on ``node``."""
    service = services.lab_groups(lab)[group].services[index]
    return _pid_on(lab, node, str(service.process["pidfile"]))


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` now."""
    return [p.pid for p in liveness.descendants(pid) if p.ppid == pid]


def kill_apache(lab: Lab, node: str, group: str) -> None:
    """Crash: SIGKILL of the whole process group of the group's Apache (master and workers)."""
    os.killpg(os.getpgid(service_pid(lab, node, group)), signal.SIGKILL)


def hang_apache(lab: Lab, node: str, group: str) -> None:
    """Hang: SIGSTOP of Apache's whole process group (the master alone keeps serving:
    docs/lab.md section 5)."""
    freeze(os.getpgid(service_pid(lab, node, group)), group=True)


def kill_apache_workers(lab: Lab, node: str, group: str) -> list[int]:
    """Master alive but no worker: the master is stopped (else it forks new workers at once) and
    every worker killed.  Returns the killed workers."""
    master = service_pid(lab, node, group)
    freeze(master)
    workers = children(master)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return workers


def kill_service(lab: Lab, node: str, group: str, index: int = 0) -> None:
    os.kill(service_pid(lab, node, group, index), signal.SIGKILL)


def hang_service(lab: Lab, node: str, group: str, index: int = 0) -> None:
    """SIGSTOP of the service's main process (a hung MariaDB keeps accepting TCP:
    docs/lab.md section 9.6)."""
    freeze(service_pid(lab, node, group, index))


def public_link(lab: Lab, node: str, up: bool) -> None:
    """The node's public link (eth0) down or up; its cluster link stays up.  Up, its routes come
    back too: the kernel drops the routes through a link it takes down (the router's subnets)."""
    set_links(lab, node, up=up, names=("eth0",))
    if up:
        ensure_network(lab, node)


def router(lab: Lab, up: bool) -> None:
    """The router's link down or up: every internal and external target unreachable from both."""
    set_links(lab, "router", up=up, names=("eth0",))


def freeze_agents(lab: Lab, node: str, frozen: bool = True) -> None:
    """Hard freeze of gardien on ``node``: its exporter and hook stopped (SIGSTOP), services left
    running.  ``frozen=False`` thaws them."""
    for name in ("exporter", "hook"):
        pid = running(lab, node, name)
        if pid is not None:
            if frozen:
                freeze(pid)
            else:
                thaw(pid)


def network_scope(lab: Lab, scope: str, up: bool) -> None:
    """Only one scope of the network lost, or back: the router's ``internal`` or ``external``
    target addresses removed (a link set down would keep them answering as the router's own
    local addresses) or put back; the other scope still answers both nodes."""
    subnet = {"internal": lab.internal, "external": lab.external}[scope]
    targets = lab.internal_targets() if scope == "internal" else lab.external_targets()
    verb = "replace" if up else "del"
    for target in targets:
        run(
            ["ip", "-n", lab.netns("router"), "addr", verb, f"{target}/{subnet.prefixlen}",
             "dev", scope],
            check=up,
        )  # fmt: skip
