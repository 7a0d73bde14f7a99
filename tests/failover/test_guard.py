"""The guard of the acquire in the engine (issue 9): the agent and mover on two real test nodes.

The engine's test hosts (tests/support/agent_host.py) give their agent the other node's host as
its peer, as the daemon gives it the other hooks.  What a node ran is read from its command
runner's record, what it mounted from its own mount table.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from failover_hook.outcome import Status
from failover_hook.plan import Action, Plan, Step, StepState
from tests.support.failover_cluster import FENCE_SCRIPT, GROUP, PAGE, Cluster, cluster
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.root,
    pytest.mark.timeout(180),
]


@pytest.fixture
def on_node1() -> Iterator[Cluster]:
    with cluster() as c:
        outcome = c.outcome("node1", "acquire")
        assert outcome.status is Status.DONE, outcome.message
        yield c


def acting(c: Cluster, name: str) -> list[list[str]]:
    """The commands ``name`` ran that change something (mount, ip, arping), not the reads."""
    ran: list[list[str]] = c.call(name, "ran")
    return [a for a in ran if a[0] in ("mount", "arping") or a[:3] == ["ip", "addr", "add"]]


def test_acquire_where_the_peer_holds_is_refused_before_anything_runs(on_node1: Cluster) -> None:
    c = on_node1

    outcome = c.outcome("node2", "acquire")

    assert outcome.status is Status.REFUSED
    assert outcome.message == f"refused: {GROUP} is held by node1"
    assert outcome.details["holders"] == ["node1"]
    assert acting(c, "node2") == []  # no mount, not even the duplicate-address check
    assert not c.mounted("node2") and c.mounted("node1") and c.page() == PAGE + "\n"
    [entry] = [e for e in c.journal("node2").history(GROUP) if e.kind == "acquire"]
    assert entry.status == "refused" and not entry.forced
    assert entry.steps[0].state is StepState.FAILED
    assert entry.steps[0].message == "held by node1"


def test_a_forced_move_vouches_for_a_silent_source_and_is_journaled_forced() -> None:
    with cluster() as c:  # no fence agent
        assert c.outcome("node1", "acquire").status is Status.DONE
        assert c.outcome("node1", "release").status is Status.DONE
        c.kill_host("node1")  # silent; nothing of the group runs there

        refused = c.outcome("node2", "move", source="node1", target="node2")
        assert refused.status is Status.REFUSED, refused.message
        forced = c.outcome("node2", "move", source="node1", target="node2", force=True)

        assert forced.status is Status.DONE, forced.message
        assert c.mounted("node2") and c.page() == PAGE + "\n"
        [acquire] = [e for e in c.journal("node2").history(GROUP) if e.kind == "acquire"]
        assert acquire.forced and acquire.status == "done"
        assert acquire.steps[0].state is StepState.DONE
        assert acquire.steps[0].message == (  # not asked
            "node1 vouched for by the operator's forced move (no fence agent)"
        )


def test_recovery_after_the_fence_excuses_the_fenced_node() -> None:
    """A crash after the fence step, before the acquire: recovery runs the move again from its
    failed release (the source is still silent), its fence clears node1 for the acquire, which
    takes the group without waiting for an answer from the fenced node."""
    with cluster(fencing=True) as c:
        assert c.outcome("node1", "acquire").status is Status.DONE
        node1 = c.nodes["node1"]
        c.kill_host("node1")
        subprocess.run(
            [sys.executable, str(FENCE_SCRIPT), str(node1.pid), node1.netns],
            check=True,
            timeout=30,
        )  # node1 is off: its mounts went with its namespace
        journal = c.journal("node2")
        plan = Plan(
            GROUP,
            "node1",
            "node2",
            (
                Step("node1", Action.RELEASE, GROUP, local=False),
                Step("node1", Action.FENCE, GROUP, local=False, only_if_failed=0),
                Step("node2", Action.ACQUIRE, GROUP, local=True),
            ),
        )
        move = journal.begin_move(plan)  # what a mover killed right after the fence left
        journal.step_finished(move, 0, StepState.FAILED, "node1 unreachable")
        journal.step_finished(move, 1, StepState.DONE, "fenced node1 in 0.1 s")

        [recovered] = c.call("node2", "recover")

        assert recovered["status"] == "done", recovered
        assert "finished: moved web node1 -> node2" in recovered["message"]
        assert c.mounted("node2") and c.page() == PAGE + "\n"
        [acquire] = [e for e in journal.history(GROUP) if e.kind == "acquire"]
        assert acquire.steps[0].state is StepState.DONE and not acquire.forced
        # not asked: fenced for the move, with the fence's result
        fenced = str(acquire.steps[0].message)
        assert fenced.startswith("node1 fenced for this move (fenced node1 in "), fenced
        journal.close()
