"""``lab up`` (idempotent, also powers fenced nodes back on), ``lab down`` (even after a crash)
and ``lab status``."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field

from gardien_lab import (
    agents,
    clusterconfig,
    directory,
    machines,
    monitoring,
    placement,
    relay,
    services,
    topology,
    volumes,
)
from gardien_lab.machines import Removal
from gardien_lab.netns import LabError
from gardien_lab.topology import MACHINES, NODES, Lab, alertmanager_url, prometheus_url

log = logging.getLogger(__name__)


def up(lab: Lab, full: bool = True) -> dict[str, str]:
    """Build what is missing and start what is not running; returns the groups' placement.

    ``full=False`` starts the groups only: no AD DC nor winbind, no exporter, hook, Prometheus,
    Alertmanager nor console relay."""
    if not lab.dir.is_dir() and lab.root.is_dir() and any(lab.root.iterdir()):
        log.info("other lab instances exist in %s", lab.root)
    machines.build(lab)
    if full:
        directory.start(lab)
    todo = placement.plan(lab, NODES)
    clusterconfig.write_config(lab)
    if full:
        for node in NODES:
            agents.start(lab, node)
    placement.start(lab, todo.to_start)
    if full:
        monitoring.start(lab)
        try:  # the console from the host is an extra: the lab works without it
            relay.start(lab)
        except LabError as exc:
            log.warning("no console relay: %s", exc)
    return todo.placement


def power_on(lab: Lab) -> None:
    """Every machine that is off powered on, as after a fence: its network, its SAN devices, its
    winbindd, its exporter and hook, and nothing else.  Unlike :func:`up`, no group is started
    and the config is not written again: what runs where is left to the hooks."""
    machines.build(lab)
    for group in services.lab_groups(lab):
        volumes.ensure_volume(lab, group, NODES)
    directory.start(lab)
    for node in NODES:
        agents.start(lab, node)


def down(lab: Lab) -> Removal:
    """Remove every process, mount, loop device and namespace the lab made, then its folder and
    the root namespace's route guard; returns what could not be removed and what was left
    because the lab did not make it."""
    relay.stop(lab)  # the only lab process of the root namespace, outside every machine
    removal = machines.teardown(lab)
    removal.problems += volumes.detach_all(lab)
    if not removal.problems:
        shutil.rmtree(lab.dir, ignore_errors=True)
        machines.unguard_supernet(lab)
    return removal


@dataclass
class Status:
    machines: dict[str, bool] = field(default_factory=dict)
    placement: dict[str, list[str]] = field(default_factory=dict)
    answering: dict[str, bool] = field(default_factory=dict)
    agents: dict[str, dict[str, int | None]] = field(default_factory=dict)
    monitoring: dict[str, bool] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    console: dict[str, str] = field(default_factory=dict)
    """The console's URL on this host (node1's hook through :mod:`gardien_lab.relay`), its token."""
    winbind: dict[str, bool] = field(default_factory=dict)
    domain: str = ""


def status(lab: Lab) -> Status:
    if not lab.dir.is_dir():
        raise LabError(f"lab {lab.name!r} does not exist (try 'gardien lab up')")
    st = Status(machines={m: lab.holder(m) is not None for m in MACHINES})
    up_nodes = [n for n in NODES if st.machines[n]]
    for name, group in services.lab_groups(lab).items():
        st.placement[name] = services.where(lab, group, up_nodes)
        st.answering[name] = st.machines["client"] and services.answers_from_client(lab, group)
    st.agents = {n: agents.state(lab, n) for n in NODES}
    st.monitoring = monitoring.is_running(lab)
    st.winbind = {n: topology.running(lab, n, "winbindd") is not None for n in NODES}
    st.domain = (
        f"{directory.REALM} (Samba AD DC on dc, {lab.public_address('dc')})"
        if directory.has_domain(lab)
        else "none (standalone winbindd)"
    )
    st.urls = {
        "prometheus": prometheus_url(lab),
        "alertmanager": alertmanager_url(lab),
        **{f"exporter {n}": f"{agents.exporter_url(lab, n)}/metrics" for n in NODES},
        **{f"hook {n}": agents.hook_url(lab, n) for n in NODES},
        "config": str(clusterconfig.config_path(lab)),
    }
    st.console = relay.status(lab)
    return st


def format_status(lab: Lab, st: Status) -> str:
    lines = [f"lab {lab.name!r} in {lab.dir}"]
    lines.append(
        "machines: " + ", ".join(f"{m} {'up' if ok else 'OFF'}" for m, ok in st.machines.items())
    )
    lines.append("groups:")
    for group, nodes in st.placement.items():
        where = ", ".join(nodes) if nodes else "nowhere"
        if len(nodes) > 1:
            where += "  (!! ACTIVE ON SEVERAL NODES)"
        answer = "answers" if st.answering.get(group) else "NOT ANSWERING"
        lines.append(f"  {group:8} on {where:14} {answer} on its VIP from the client")
    lines.append(
        "agents: "
        + "; ".join(
            f"{n}: "
            + ", ".join(f"{a} {'running' if pid else 'STOPPED'}" for a, pid in agents_.items())
            for n, agents_ in st.agents.items()
        )
    )
    lines.append(
        f"winbind (domain {st.domain}): "
        + ", ".join(f"{n} {'running' if ok else 'STOPPED'}" for n, ok in st.winbind.items())
    )
    lines.append(
        "monitoring: "
        + ", ".join(f"{m} {'running' if ok else 'STOPPED'}" for m, ok in st.monitoring.items())
    )
    lines.append("URLs (reach them with 'gardien lab exec mon -- curl -s URL'):")
    lines += [f"  {name:16} {url}" for name, url in st.urls.items()]
    lines.append("from this host (a browser; log in with the token of the file):")
    lines += [f"  {name:16} {value}" for name, value in st.console.items()]
    return "\n".join(lines)
