"""An outage of one scope of the network (only the external targets, or only the internal ones,
unreachable from both nodes) is no network-wide outage: a local crash still moves its group
(issue 9, the one network verdict; the table in docs/alerting.md).  The whole network down moves
nothing: tests/lab/test_failover.py::test_router_down_is_an_outage_nothing_moves."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gardien import alerts
from gardien.node.verdict import NetworkState
from gardien_lab import faults, hookapi
from gardien_lab.scenario import answers, explain, firing, runs_only_on, wait_for
from gardien_lab.topology import NODES, Lab
from tests.lab.helpers import Sampler

MOVE_TIMEOUT = 120.0


pytestmark = pytest.mark.usefixtures("home_at_the_end", "home_at_the_start")


def _verdicts(lab: Lab, group: str) -> dict[str, NetworkState | None]:
    found = {n: hookapi.status(lab, n, group) for n in NODES}
    return {n: s.network_verdict if s else None for n, s in found.items()}


@pytest.mark.parametrize(
    ("scope", "verdict", "group", "kill"),
    [
        ("external", NetworkState.DEGRADED_EXTERNAL, "php4", faults.kill_apache),
        ("internal", NetworkState.DEGRADED_INTERNAL, "mysql1", faults.kill_service),
    ],
)
def test_local_crash_during_an_outage_of_one_scope_moves_the_group(
    lab: Lab, scope: str, verdict: NetworkState, group: str, kill: Callable[[Lab, str, str], None]
) -> None:
    source, target = "node1", "node2"
    t0 = time.time()
    with Sampler(lab) as sampler:
        faults.network_scope(lab, scope, up=False)
        try:
            seen = wait_for(lambda: set(_verdicts(lab, group).values()) == {verdict}, 60)
            assert seen, _verdicts(lab, group)
            kill(lab, source, group)
            moved = wait_for(
                lambda: runs_only_on(lab, group, target) and answers(lab, group), MOVE_TIMEOUT
            )
            outage = firing(lab, alerts.NETWORK_OUTAGE)
        finally:
            faults.network_scope(lab, scope, up=True)
    assert moved, explain(lab, t0, group)
    assert outage == [], f"a {scope}-only outage fired {alerts.NETWORK_OUTAGE}: {outage}"
    assert sampler.double == [], sampler.double
