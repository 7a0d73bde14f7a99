"""Failover scenarios on the lab: real faults, real daemons, the real exporter -> Prometheus ->
Alertmanager -> hook chain.

Each scenario starts from the initial placement (``restore``) and asserts where every group runs
afterwards, that no group was ever active on two nodes at once (a sampler reading each node's
mounts and addresses during the whole scenario) and that no data was lost.  Waits are bounded
polls, never timed assertions.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from failover_hook.outcome import Status
from gardien_lab import clusterconfig, faults, machines, services
from gardien_lab.fence import addresses, links_up
from gardien_lab.scenario import (
    answers,
    explain,
    firing,
    gardien_on,
    moves,
    placement,
    runs_only_on,
    wait_for,
)
from gardien_lab.topology import Lab, on
from tests.lab.helpers import HOME, Sampler

MOVE_TIMEOUT = 120.0
FENCED_MOVE_TIMEOUT = 150.0
"""A frozen node: ``GardienNodeDown``'s ``for``, each status call to the frozen hook waiting its
``request_timeout``, the fence, then the acquire of every group of the node.  Well inside the
test's own timeout, so that a wait that ends empty still prints the timeline of the decisions."""


pytestmark = pytest.mark.usefixtures("home_at_the_end", "home_at_the_start")


def smb(lab: Lab, group: str, command: str) -> None:
    vip = services.lab_groups(lab)[group].vip.ip
    on(
        lab,
        "client",
        ["timeout", "-k", "1", "20", "smbclient", f"//{vip}/{group}", "-N", "-c", command],
    )


def sql(lab: Lab, group: str, statement: str) -> str:
    spec = services.lab_groups(lab)[group]
    port = {"mysql1": "3306", "mysql2": "3307"}[group]
    return on(
        lab,
        "client",
        [
            "mariadb",
            f"--defaults-file={services.client_credentials(lab)}",
            "-h",
            str(spec.vip.ip),
            "-P",
            port,
            "--batch",
            "--skip-column-names",
            "-e",
            statement,
        ],
    ).stdout


def test_apache_killed_moves_php4_with_its_samba_share(lab: Lab, tmp_path: Path) -> None:
    before = tmp_path / "before.txt"
    before.write_text(f"written before the failover {uuid.uuid4()}\n")
    smb(lab, "php4", f"put {before} before.txt")
    t0 = time.time()
    with Sampler(lab) as sampler:
        faults.kill_apache(lab, "node1", "php4")
        moved = wait_for(lambda: runs_only_on(lab, "php4", "node2"), MOVE_TIMEOUT)
    assert moved, explain(lab, t0, "php4")
    assert sampler.double == [], sampler.double
    assert sampler.seen_on["php5"] == {"node2"}
    after = tmp_path / "after.txt"
    smb(lab, "php4", f"get before.txt {after}")
    assert after.read_text() == before.read_text()
    assert placement(lab) == {**{g: [n] for g, n in HOME.items()}, "php4": ["node2"]}


def test_hung_mysql1_moves_without_losing_a_committed_row(lab: Lab) -> None:
    marker = uuid.uuid4().hex
    sql(lab, "mysql1", f"INSERT INTO lab.rows (v) VALUES ('{marker}')")
    t0 = time.time()
    with Sampler(lab) as sampler:
        faults.hang_service(lab, "node1", "mysql1")
        moved = wait_for(lambda: runs_only_on(lab, "mysql1", "node2"), MOVE_TIMEOUT)
    assert moved, explain(lab, t0, "mysql1")
    assert sampler.double == [], sampler.double
    assert sampler.seen_on["mysql2"] == {"node2"}
    assert sql(lab, "mysql1", f"SELECT COUNT(*) FROM lab.rows WHERE v = '{marker}'").strip() == "1"
    assert sql(lab, "mysql1", "SELECT @@hostname").strip() == "node2"


def test_apache_master_alive_without_workers_is_detected_and_moved(lab: Lab) -> None:
    t0 = time.time()
    with Sampler(lab) as sampler:
        killed = faults.kill_apache_workers(lab, "node2", "php5")
        moved = wait_for(lambda: runs_only_on(lab, "php5", "node1"), MOVE_TIMEOUT)
    assert killed, "Apache of php5 had no worker to kill"
    assert moved, explain(lab, t0, "php5")
    assert sampler.double == [], sampler.double
    assert sampler.seen_on["php4"] == {"node1"}


def test_public_link_down_moves_every_group_of_the_node(lab: Lab) -> None:
    on_node1 = sorted(g for g, n in HOME.items() if n == "node1")
    t0 = time.time()
    with Sampler(lab) as sampler:
        faults.public_link(lab, "node1", up=False)
        # node1 is cut from the public network only: the cluster network still reaches it
        assert (
            on(
                lab, "mon", ["ping", "-c1", "-W2", str(lab.cluster_address("node1"))], check=False
            ).returncode
            == 0
        )
        moved = wait_for(lambda: all(runs_only_on(lab, g, "node2") for g in on_node1), MOVE_TIMEOUT)
    assert moved, explain(lab, t0, *on_node1)
    assert sampler.double == [], sampler.double
    assert placement(lab) == {g: ["node2"] for g in HOME}


def test_router_down_is_an_outage_nothing_moves(lab: Lab) -> None:
    with Sampler(lab) as sampler:
        faults.router(lab, up=False)
        outage = wait_for(lambda: firing(lab, "GardienNetworkOutage"), 60)
        # keep watching a while after the alert: a wrong decision would move a group by then
        wait_for(lambda: False, 20)
    faults.router(lab, up=True)
    assert outage, "GardienNetworkOutage did not fire"
    assert sampler.double == [], sampler.double
    assert {g: sorted(nodes) for g, nodes in sampler.seen_on.items()} == {
        g: [n] for g, n in HOME.items()
    }
    assert all(moves(lab, g) == [] for g in HOME)


@pytest.mark.timeout(480)
def test_frozen_node_is_fenced_then_its_groups_start_on_the_peer(lab: Lab) -> None:
    on_node1 = sorted(g for g, n in HOME.items() if n == "node1")
    t0 = time.time()
    with Sampler(lab) as sampler:
        faults.freeze_agents(lab, "node1")
        moved = wait_for(
            lambda: all(runs_only_on(lab, g, "node2") for g in on_node1), FENCED_MOVE_TIMEOUT
        )
    assert moved, explain(lab, t0, *on_node1)
    assert sampler.double == [], sampler.double
    # fenced by the lab's agent: no process left on node1, its links down
    assert lab.holder("node1") is None
    assert machines.machine_processes(lab, "node1", include_holder=True) == []
    assert links_up(lab, "node1") == []
    assert addresses(lab, "node1") == []


def test_flapping_service_moves_at_most_max_moves_then_stays_and_alerts(lab: Lab) -> None:
    config = clusterconfig.write_config(lab)
    limit = config.hook.max_moves
    group = "mysql2"
    t0 = time.time()
    with Sampler(lab) as sampler:
        for _ in range(limit):
            source = placement(lab)[group][0]
            target = next(n for n in services.lab_groups(lab)[group].nodes if n != source)
            faults.kill_service(lab, source, group)
            moved = wait_for(lambda t=target: runs_only_on(lab, group, t), MOVE_TIMEOUT)
            assert moved, explain(lab, t0, group)
        stays_on = placement(lab)[group]
        faults.kill_service(lab, stays_on[0], group)
        alert = wait_for(
            lambda: [a for a in firing(lab, "GardienGroupFlapping") if a.get("group") == group], 60
        )
        # the failure is seen and refused: watch a while for a move that must not come
        wait_for(lambda: False, 20)
    assert alert, "GardienGroupFlapping did not fire"
    assert placement(lab)[group] == stays_on
    assert not answers(lab, group)
    assert len([m for m in moves(lab, group) if m.status == Status.DONE]) == limit
    assert sampler.double == [], sampler.double


def test_migrate_every_group_by_hand_and_back(lab: Lab) -> None:
    with Sampler(lab, limit=600) as sampler:
        for group, home in HOME.items():
            other = next(n for n in ("node1", "node2") if n != home)
            for target in (other, home):
                done = gardien_on(lab, home, "migrate", group, "--to", target, "--force")
                assert done.returncode == 0, done.stdout + done.stderr
                assert wait_for(lambda g=group, t=target: runs_only_on(lab, g, t), 60), (
                    group,
                    target,
                    placement(lab),
                )
    assert sampler.double == [], sampler.double
