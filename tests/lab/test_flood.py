"""No flood of connections gets a healthy node fenced (issue 13): both ports of node1 (exporter and
hook) flooded for 60 s from an address of their own on the cluster network, with slow connections
that never finish their request and a stream of unauthenticated requests.  Nothing moves, nothing
is fenced, and Prometheus never saw node1 down.  The frozen-node test (tests/lab/test_failover.py)
shows a node that is really gone is still fenced."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from gardien import alerts
from gardien_lab import agents, monitoring
from gardien_lab.fence import links_up
from gardien_lab.scenario import moves, placement
from gardien_lab.topology import Lab, on
from tests.lab.helpers import HOME, Sampler

FLOOD_SECONDS = 60


pytestmark = pytest.mark.usefixtures("home_at_the_start")


def _attacker(lab: Lab) -> str:
    """A second address of ``mon`` on the cluster network: the attacker is not Prometheus."""
    return str(lab.cluster.network_address + 66)


@pytest.mark.timeout(420)
def test_flooded_node_is_neither_moved_nor_fenced(lab: Lab) -> None:
    attacker = _attacker(lab)
    on(lab, "mon", ["ip", "addr", "replace", f"{attacker}/{lab.cluster.prefixlen}", "dev", "eth0"])
    targets = [agents.exporter_url(lab, "node1"), agents.hook_url(lab, "node1")]
    argv = [
        sys.executable, "-m", "gardien_lab.flood", "--supernet", str(lab.supernet),
        "--source", attacker, "--slow", "1000", "--threads", "8",
        "--seconds", str(FLOOD_SECONDS),
    ]  # fmt: skip
    for url in targets:
        argv += ["--target", url.removeprefix("http://")]
    started = time.time()
    try:
        with Sampler(lab) as sampler:
            flood = subprocess.run(
                [*lab.prefix_argv("mon"), *argv],
                capture_output=True,
                text=True,
                timeout=FLOOD_SECONDS + 60,
                check=True,
            )
            # a wrong decision would start during the flood or soon after it
            time.sleep(10)
    finally:
        on(lab, "mon", ["ip", "addr", "del", f"{attacker}/{lab.cluster.prefixlen}", "dev", "eth0"],
           check=False)  # fmt: skip
    result = json.loads(flood.stdout)
    assert result["slow_opened"] > 0 and result["requests"] > 0, result  # the flood happened
    window = f"{int(time.time() - started) + 5}s"
    for name in (alerts.NODE_DOWN, alerts.GROUP_FAILED, alerts.HOOK_DOWN, alerts.EXPORTER_DOWN):
        fired = monitoring.query(
            lab, f'max_over_time(ALERTS{{alertname="{name}",alertstate="firing"}}[{window}])'
        )
        assert fired == [], f"{name} fired during the flood: {fired}"
    assert lab.holder("node1") is not None, "node1 was fenced"
    assert links_up(lab, "node1") != []
    assert placement(lab) == {g: [n] for g, n in HOME.items()}
    assert all(moves(lab, g) == [] for g in HOME)
    assert sampler.double == [], sampler.double
