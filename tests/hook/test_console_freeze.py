"""A freeze or unfreeze asked from the console or the API lands in the journal of the hook that
performed it, finished, with the operator as its trigger; and it changes nothing a group holds:
no settle, no cooldown, no move (real hooks on loopback).

What was journaled is read from each hook's journal database, independently of the hook.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

import bcrypt
import pytest
import requests

from failover_hook.freeze import CLUSTER_ENTRY
from gardien.polling import wait_until
from tests.hook.test_console import Console, messages
from tests.support.hooks import HookPair, alert, payload

SETTLE = 8


def freezes(pair: HookPair, node: str) -> list[tuple[Any, ...]]:
    """``node``'s freeze entries, from its journal's database: group, kind, trigger's kind and
    operator, status, and whether it was written finished with no step."""
    with sqlite3.connect(pair.tmp / node / "journal.db") as db:
        return db.execute(
            "SELECT group_name, kind, trigger_kind, trigger_by, status,"
            " finished IS NOT NULL AND finished = started,"
            " (SELECT count(*) FROM steps WHERE move_id = moves.id)"
            " FROM moves WHERE kind IN ('freeze', 'unfreeze') ORDER BY id"
        ).fetchall()


def alice_posts(pair: HookPair, node: str, path: str, **form: str) -> requests.Response:
    """``form`` posted to ``node``'s console as the basic-auth user alice, with her CSRF token."""
    alice = requests.Session()
    alice.auth = ("alice", "secret")
    alice.trust_env = False
    page = alice.get(pair.url(node, "/ui/"), timeout=10)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return alice.post(
        pair.url(node, f"/ui{path}"), data={**form, "csrf": found.group(1)}, timeout=60
    )


@pytest.fixture(scope="module")
def pair(make_pair: Callable[..., HookPair]) -> HookPair:
    """g1 held by node1 (settled), g2 and g3 nowhere; a settle period and a long cooldown."""
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    made = make_pair(
        groups={g: {"nodes": ["node1", "node2"]} for g in ("g1", "g2", "g3")},
        hook={"settle": SETTLE, "cooldown": 600},
        web_config={"basic_auth_users": {"alice": hashed}},
    )
    assert made.post("node1", "/api/v1/groups/g1/acquire").json()["status"] == "done"

    def settled() -> bool:
        return not any(
            made.get(n, "/api/v1/status")["groups"]["g1"]["settling"] for n in made.procs
        )

    assert wait_until(settled, 3 * SETTLE)
    return made


def test_console_freezes_are_journaled_with_the_operator_and_no_settle_nor_cooldown(
    pair: HookPair,
) -> None:
    browser = Console(pair, "node1")
    browser.login()
    assert messages(browser.post("/freeze", verb="freeze", group="g1")) == [
        "g1 frozen on node1, node2"
    ]
    assert alice_posts(pair, "node2", "/freeze", verb="unfreeze", group="g1").status_code == 200
    # each on the node that performed it (the peer that learned it journals nothing), finished
    # as written, without steps
    assert freezes(pair, "node1") == [("g1", "freeze", "manual", "token", "done", 1, 0)]
    assert freezes(pair, "node2") == [("g1", "unfreeze", "manual", "alice", "done", 1, 0)]
    [entry] = [
        e for e in pair.get("node2", "/api/v1/history?group=g1")["moves"] if e["kind"] == "unfreeze"
    ]
    assert entry["trigger"] == "manual by alice"
    assert entry["trigger_detail"]["by"] == "alice"
    # neither is a change of g1: it is not settling, and an automatic move runs at once
    statuses = {n: pair.get(n, "/api/v1/status")["groups"]["g1"] for n in ("node1", "node2")}
    assert not any(g["settling"] for g in statuses.values())
    pair.send("node2", payload(alert(group="g1", node="node1"))).raise_for_status()
    [decision] = pair.wait_decisions("node2", "g1")
    assert decision["status"] == "done", decision["message"]
    assert pair.held("node2", "g1")
    assert [m["group"] for m in pair.moves("node2", "g1")] == ["g1"]
    # the move is the one ``history --svg`` draws, and the freezes are lines of their own
    listed = pair.cli("history", "g1")
    assert listed.returncode == 0, listed.stderr
    kinds = [line.split()[3] for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert kinds.count("move") == 1
    assert {"freeze", "unfreeze"} <= set(kinds)
    drawn = pair.cli("history", "g1", "--svg", str(pair.tmp / "g1.svg"))
    assert drawn.returncode == 0, drawn.stderr
    assert "(move node2#" in (pair.tmp / "g1.svg").read_text()


def test_the_cluster_freeze_and_the_api_name_their_operator(pair: HookPair) -> None:
    browser = Console(pair, "node2")
    browser.login()
    assert messages(browser.post("/freeze", verb="freeze")) == ["cluster frozen on node2, node1"]
    assert messages(browser.post("/freeze", verb="unfreeze")) == [
        "cluster unfrozen on node2, node1"
    ]
    asked = pair.post("node1", "/api/v1/groups/g2/freeze", json={"operator": "bob"})
    assert asked.json()["status"] == "done"
    again = pair.post("node1", "/api/v1/groups/g2/freeze")  # no operator named, nothing to do
    assert again.json()["status"] == "nothing_to_do"
    bad = pair.post("node1", "/api/v1/groups/g2/unfreeze", json={"operator": "a\nb"})
    assert bad.status_code == 400
    assert pair.cli("unfreeze", "g2").returncode == 0  # the CLI asks node1, the first node
    assert freezes(pair, "node2")[-2:] == [
        (CLUSTER_ENTRY, "freeze", "manual", "token", "done", 1, 0),
        (CLUSTER_ENTRY, "unfreeze", "manual", "token", "done", 1, 0),
    ]
    assert freezes(pair, "node1")[-3:] == [
        ("g2", "freeze", "manual", "bob", "done", 1, 0),
        ("g2", "freeze", "manual", None, "nothing_to_do", 1, 0),
        ("g2", "unfreeze", "manual", None, "done", 1, 0),
    ]
    # none of them is a change of a group: g2 and g3 never settle
    status = pair.get("node1", "/api/v1/status")["groups"]
    assert not status["g2"]["settling"]
    assert not status["g3"]["settling"]
    assert status["g2"]["last_change_age"] is None
