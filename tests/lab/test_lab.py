"""The lab itself: topology, placement, isolation of the root namespace, idempotent up, down
after a crash.  The failover scenarios are in test_failover.py."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from gardien_lab import (
    agents,
    directory,
    lifecycle,
    made,
    netns,
    services,
    topology,
    volumes,
)
from gardien_lab.fence import addresses, fence, links_up
from gardien_lab.scenario import placement
from gardien_lab.topology import MACHINES, NODES, Lab, on, prometheus_url
from tests.lab.helpers import HOME, lab_possible


def test_every_group_runs_on_its_home_node_and_answers_from_the_client(lab: Lab) -> None:
    assert placement(lab) == {g: [n] for g, n in HOME.items()}
    for name, group in services.lab_groups(lab).items():
        assert services.answers_from_client(lab, group), f"{name} does not answer on {group.vip.ip}"


def test_volumes_are_mounted_only_in_the_holding_node(lab: Lab) -> None:
    for name, group in services.lab_groups(lab).items():
        assert volumes.holders(lab, name, (*NODES, "client", "mon")) == [HOME[name]]
        # each node sees the image through a loop device of its own, under the same name
        devices = {n: volumes.node_device(lab, n, name) for n in NODES}
        assert None not in devices.values() and len(set(devices.values())) == len(NODES), devices
        root_mounts = Path("/proc/self/mounts").read_text()
        assert group.mountpoint not in root_mounts, "a lab volume is mounted in the root namespace"


def test_root_namespace_has_no_lab_address_and_a_guard_route(lab: Lab) -> None:
    addresses = subprocess.run(
        ["ip", "-o", "addr"], capture_output=True, text=True, check=True
    ).stdout
    for word in addresses.split():
        if "/" in word and "." in word:
            assert ipaddress.ip_interface(word).ip not in lab.supernet, word
    routes = subprocess.run(
        ["ip", "route", "show", str(lab.supernet)], capture_output=True, text=True, check=True
    ).stdout
    assert routes.startswith("unreachable"), routes


def test_two_networks_and_the_router(lab: Lab) -> None:
    # public network: client reaches the router; nodes reach internal and external targets
    for target in (*lab.internal_targets(), *lab.external_targets()):
        assert on(lab, "node1", ["ping", "-c1", "-W2", str(target)], check=False).returncode == 0
    # the cluster network is not the public one: mon reaches nodes' cluster addresses only
    assert (
        on(
            lab, "mon", ["ping", "-c1", "-W2", str(lab.cluster_address("node2"))], check=False
        ).returncode
        == 0
    )
    assert (
        on(
            lab, "mon", ["ping", "-c1", "-W1", str(lab.public_address("node2"))], check=False
        ).returncode
        != 0
    )
    assert (
        on(
            lab, "client", ["ping", "-c1", "-W1", str(lab.cluster_address("node2"))], check=False
        ).returncode
        != 0
    )


def test_per_node_private_run_samba(lab: Lab) -> None:
    name = f"lab-test-{os.getpid()}"
    on(lab, "node1", ["sh", "-c", f"echo {name} > /run/samba/{name}"])
    assert (lab.fs_root("node1") / "run/samba" / name).read_text().strip() == name
    assert not (lab.fs_root("node2") / "run/samba" / name).exists()
    assert not (Path("/run/samba") / name).exists()


def test_status_names_urls_and_agents(lab: Lab) -> None:
    st = lifecycle.status(lab)
    assert all(st.machines[m] for m in MACHINES)
    assert all(pid for node in NODES for pid in st.agents[node].values())
    assert st.monitoring == {"prometheus": True, "alertmanager": True}
    assert st.urls["prometheus"] == prometheus_url(lab)
    text = lifecycle.format_status(lab, st)
    assert "php4     on node1" in text and agents.hook_url(lab, "node2") in text


def test_up_is_idempotent(lab: Lab) -> None:
    before = {n: topology.running(lab, n, a) for n in NODES for a in agents.AGENTS}
    holders = {m: lab.holder(m) for m in MACHINES}
    lifecycle.up(lab)
    assert {n: topology.running(lab, n, a) for n in NODES for a in agents.AGENTS} == before
    assert {m: lab.holder(m) for m in MACHINES} == holders
    assert placement(lab) == {g: [n] for g, n in HOME.items()}


@pytest.fixture
def small_lab() -> Lab:
    reason = lab_possible()
    if reason:
        pytest.skip(reason)
    return Lab(name="gtcrash")


def test_down_cleans_everything_after_a_crash_and_fence_powers_off(small_lab: Lab) -> None:
    lab = small_lab
    try:
        lifecycle.up(lab, full=False)
        # the fence agent: node1 off, its volumes released (mount namespace gone), links down
        assert fence(lab, "node1") == []
        assert lab.holder("node1") is None and links_up(lab, "node1") == []
        assert addresses(lab, "node1") == []
        assert volumes.holders(lab, "php4", NODES) == []
        # "crash": lab up's records of processes are lost (as if it crashed before it wrote them:
        # only its namespaces are recorded); a samba-dcerpcd-like stray runs in node2
        stray = subprocess.Popen(
            [*lab.prefix_argv("node2"), "sleep", "300"], start_new_session=True
        )
        for f in (lab.dir / "run").glob("*"):
            f.unlink()
        record = made.load(lab.dir)
        record.holders.clear()
        made.save(lab.dir, record)
    finally:
        removal = lifecycle.down(lab)
    assert removal.problems == [] and removal.not_ours == [], removal
    assert stray.wait(timeout=10) < 0  # killed by a signal
    for ns in lab.all_netns():
        assert not netns.netns_exists(ns), ns
    assert not lab.dir.exists()
    assert (
        subprocess.run(
            ["losetup", "-j", str(volumes.image(lab, "php4"))],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        == ""
    )


def test_winbind_on_each_node_is_a_member_of_the_lab_domain(lab: Lab) -> None:
    assert directory.has_domain(lab), "no AD DC: the nodes run a standalone winbindd"
    for node in NODES:
        assert on(lab, node, ["wbinfo", "-t"], check=False).returncode == 0, node
        found = on(lab, node, ["wbinfo", "-i", directory.PROBE_USER], check=False)
        assert found.returncode == 0 and "administrator" in found.stdout.lower(), found
