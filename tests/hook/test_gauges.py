"""The hook's state gauges as ``/metrics`` answers them, over a journal with a long history.

The journal's entries are written through the journal as the hook's parts write them (a move
with its plan and steps and the local acquire inside it, a release for a peer's move, restarts
in place that worked, failed or were declined, freezes); the old ones are then aged in the
database, as months of a cluster's life would have left them.  A scrape reads only a few fields of
the entries that matter (``Journal.recent``); these tests pin the gauges' meaning on it
(docs/metrics.md) and that its cost does not grow with the history.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
import pytest

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from failover_hook.app import create_app
from failover_hook.daemon import build_hook
from failover_hook.hook import Hook
from failover_hook.journal import JOURNAL_FILE, Journal
from failover_hook.outcome import Outcome, Status
from failover_hook.plan import Action, Plan, Step, StepState
from failover_hook.restart import KIND as RESTART
from failover_hook.trigger import Trigger, TriggerKind
from gardien.config import load_config
from tests.support.exporter import labels, samples

GROUPS = ("g1", "g2", "g3")
OLD = 40 * 86400.0
"""How old the history is: far beyond the settle period and the anti-flap window."""
SETTLE = 30.0


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Hook]:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # as the daemon
    service = {"start": ["true"], "stop": ["true"]}
    config = {
        "cluster": "t",
        "nodes": {"node1": {"address": "127.0.0.1"}, "node2": {"address": "127.0.0.2"}},
        "hook": {"settle": f"{SETTLE:g}s"},
        "groups": {
            g: {"nodes": ["node1", "node2"], "services": [{"name": f"svc-{g}", **service}]}
            for g in GROUPS
        },
    }
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(config))
    journal = Journal(tmp_path / "state" / JOURNAL_FILE)
    for group in GROUPS:  # the history: 150 entries of each group, all old
        for n in range(50):
            move(journal, group)
            restart(journal, group, worked=n % 2 == 0)
    journal.record_freeze("g1", True, Trigger(TriggerKind.API), Outcome(Status.DONE, "frozen"))
    journal.close()
    with sqlite3.connect(tmp_path / "state" / JOURNAL_FILE) as db:
        db.execute("UPDATE moves SET started = started - ?, finished = finished - ?", (OLD, OLD))
    built = build_hook(load_config(path), "node1", tmp_path / "state", dry_run=True)
    built.freeze.set("g1", True)  # the freeze journaled above, in force
    try:
        yield built
    finally:
        built.shutdown()


def move(journal: Journal, group: str, finished: bool = True) -> int:
    """A move of ``group`` to node1 as the mover journals it: its plan, each step, the local
    acquire inside the last one; ``finished=False``: still running (its acquire step)."""
    plan = Plan(group, "node2", "node1", (
        Step("node2", Action.RELEASE, group, local=False),
        Step("node1", Action.ACQUIRE, group, local=True),
    ), TriggerKind.ALERT)  # fmt: skip
    entry = journal.begin_move(plan)
    journal.step_started(entry, 0)
    journal.step_finished(entry, 0, StepState.DONE, "released")
    journal.step_started(entry, 1)
    acquire = journal.begin_local(group, "node1", "acquire", ["start"], Trigger.step_of(entry))
    if not finished:
        return entry
    journal.step_finished(acquire, 0, StepState.DONE, "started")
    done = Outcome(Status.DONE, f"moved {group}", group)
    journal.finish(acquire, done)
    journal.step_finished(entry, 1, StepState.DONE, "acquired")
    journal.finish(entry, done)
    return entry


def restart(journal: Journal, group: str, worked: bool) -> None:
    """A restart in place of ``group``'s service as the restarter journals it."""
    steps = ["stop svc", "start svc"]
    entry = journal.begin_local(
        group, "node1", RESTART, steps, Trigger(TriggerKind.ALERT), services=[f"svc-{group}"]
    )
    journal.step_finished(entry, 0, StepState.DONE, "stopped")
    state = StepState.DONE if worked else StepState.FAILED
    journal.step_finished(entry, 1, state, "started" if worked else "did not start")
    status = Status.DONE if worked else Status.FAILED
    journal.finish(entry, Outcome(status, "restart", group))


def declined(journal: Journal, group: str) -> None:
    """A failure of ``group`` the restarter declined to restart (no step run)."""
    entry = journal.begin_local(
        group, "node1", RESTART, [], Trigger(TriggerKind.ALERT), services=[f"svc-{group}"]
    )
    journal.finish(entry, Outcome(Status.REFUSED, "not restarted: used up", group))


def gauges(hook: Hook, name: str) -> dict[str, float]:
    text = create_app(hook).test_client().get("/metrics").get_data(as_text=True)
    found = samples(text, name)
    return {group: found[labels(group=group)] for group in GROUPS}


def started(hook: Hook, entry: int) -> float:
    return hook.journal.get(entry).started


def test_an_old_history_neither_settles_a_group_nor_hides_its_last_move(hook: Hook) -> None:
    newest = {g: hook.journal.history(g, limit=200, freezes=False) for g in GROUPS}
    last_moves = {g: max(r.started for r in newest[g] if r.kind == "move") for g in GROUPS}
    assert gauges(hook, "gardien_hook_group_settling") == dict.fromkeys(GROUPS, 0)
    assert gauges(hook, "gardien_hook_last_move_timestamp_seconds") == last_moves
    assert gauges(hook, "gardien_hook_group_frozen") == {"g1": 1, "g2": 0, "g3": 0}
    assert all(hook.cluster.status(resources=False).groups[g].moves == {} for g in GROUPS)


def test_right_after_a_move_and_while_one_runs_the_group_settles(hook: Hook) -> None:
    moved = move(hook.journal, "g1")
    running = move(hook.journal, "g2", finished=False)
    assert gauges(hook, "gardien_hook_group_settling") == {"g1": 1, "g2": 1, "g3": 0}
    last = gauges(hook, "gardien_hook_last_move_timestamp_seconds")
    assert (last["g1"], last["g2"]) == (started(hook, moved), started(hook, running))
    status = hook.cluster.status(resources=False).groups
    assert list(status["g1"].moves) == [f"node1#{moved}"]
    assert list(status["g2"].moves) == [f"node1#{running}"]


def test_a_release_for_a_peers_move_settles_the_group_and_is_no_move_of_this_hook(
    hook: Hook,
) -> None:
    before = gauges(hook, "gardien_hook_last_move_timestamp_seconds")
    entry = hook.journal.begin_local(
        "g3", "node1", "release", ["stop svc-g3"], Trigger.for_peer_move("node2#41")
    )
    hook.journal.finish(entry, Outcome(Status.DONE, "released g3", "g3"))
    assert gauges(hook, "gardien_hook_group_settling") == {"g1": 0, "g2": 0, "g3": 1}
    assert gauges(hook, "gardien_hook_last_move_timestamp_seconds") == before
    assert list(hook.cluster.status(resources=False).groups["g3"].moves) == ["node2#41"]


def test_a_restart_in_place_settles_the_group_only_when_it_worked(hook: Hook) -> None:
    restart(hook.journal, "g1", worked=True)
    restart(hook.journal, "g2", worked=False)
    declined(hook.journal, "g3")
    assert gauges(hook, "gardien_hook_group_settling") == {"g1": 1, "g2": 0, "g3": 0}


def test_a_failed_restart_after_a_move_leaves_the_move_settling(hook: Hook) -> None:
    move(hook.journal, "g1")
    restart(hook.journal, "g1", worked=False)
    assert gauges(hook, "gardien_hook_group_settling")["g1"] == 1
    age = hook.cluster.status(resources=False).groups["g1"].last_change_age
    assert age is not None and 0 <= age < SETTLE


def test_the_last_move_stays_behind_more_than_a_page_of_history(hook: Hook) -> None:
    """The last move's time is that of the newest move, however many entries came after it
    (``history`` pages by 100: a reading of its newest page would say there was none)."""
    last = move(hook.journal, "g2")
    for _ in range(120):
        declined(hook.journal, "g2")
    with sqlite3.connect(hook.journal.path) as db:  # all of it a while ago
        db.execute("UPDATE moves SET started = started - 600, finished = finished - 600"
                   " WHERE group_name = 'g2' AND id >= ?", (last,))  # fmt: skip
    found = gauges(hook, "gardien_hook_last_move_timestamp_seconds")["g2"]
    assert found == started(hook, last)
    assert gauges(hook, "gardien_hook_group_settling")["g2"] == 0
    age = hook.cluster.status(resources=False).groups["g2"].last_change_age
    assert age is not None and age > 600 - 1


def test_a_scrape_reads_as_much_of_a_long_journal_as_of_a_short_one(hook: Hook) -> None:
    """What the journal executes for the gauges (SQLite's virtual machine instructions) does
    not grow with the entries it holds."""

    def instructions() -> int:
        count = [0]

        def step() -> int:
            count[0] += 1
            return 0

        db = hook.journal._db  # counting what the journal's own queries execute
        db.set_progress_handler(step, 1)
        try:
            hook.cluster.journaled(list(GROUPS))
        finally:
            db.set_progress_handler(None, 1)
        return count[0]

    short = instructions()
    for group in GROUPS:
        for n in range(300):
            restart(hook.journal, group, worked=n % 2 == 0)
            declined(hook.journal, group)
    with sqlite3.connect(hook.journal.path) as db:
        db.execute("UPDATE moves SET started = started - ?, finished = finished - ?"
                   " WHERE started > ?", (OLD, OLD, time.time() - 3600))  # fmt: skip
    assert instructions() == short
