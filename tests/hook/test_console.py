"""The web console at ``/ui/`` of real hooks on loopback: its login and session cookie, CSRF,
that no action runs without authentication, and each page and action (HTTP, without a browser:
tests/hook/test_console_browser.py drives Chromium).

What an action did is read independently of the console: the journal's database and the freeze
file in each hook's state folder.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests

from failover_hook.console.sessions import LIFETIME, MAX_SESSIONS, Sessions
from gardien.polling import wait_until
from tests.support.exporter import free_port
from tests.support.hooks import HookPair, alert, payload
from tests.support.prometheus import prometheus

GROUPS = {
    "g1": {"nodes": ["node1", "node2"]},
    "g2": {"nodes": ["node2", "node1"]},
    "g3": {"nodes": ["node1", "node2"]},
}


class Console:
    """A browser's view of one hook's console: a session of its own, the page's CSRF token."""

    def __init__(self, pair: HookPair, node: str = "node1") -> None:
        self.pair = pair
        self.base = pair.url(node, "/ui")
        self.http = requests.Session()
        self.http.verify = pair.verify
        self.http.trust_env = False
        self.csrf = ""

    def login(self, token: str | None = None) -> requests.Response:
        answer = self.http.post(
            f"{self.base}/login",
            data={"token": token or self.pair.token},
            allow_redirects=False,
            timeout=10,
        )
        if answer.status_code == 303:
            self.get("/")
        return answer

    def get(self, path: str, **params: str) -> requests.Response:
        answer = self.http.get(self.base + path, params=params, timeout=30)
        found = re.search(r'name="csrf" value="([^"]+)"', answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, csrf: bool = True, **form: str) -> requests.Response:
        data = {**form, **({"csrf": self.csrf} if csrf else {})}
        return self.http.post(self.base + path, data=data, timeout=60)


def journal(pair: HookPair, node: str) -> list[tuple[Any, ...]]:
    """Every entry of ``node``'s journal, read from its database file."""
    with sqlite3.connect(pair.tmp / node / "journal.db") as db:
        return db.execute(
            "SELECT id, group_name, kind, target, trigger_kind, trigger_by FROM moves"
        ).fetchall()


def frozen_file(pair: HookPair, node: str) -> dict[str, Any]:
    path = pair.tmp / node / "frozen.json"
    return json.loads(path.read_text()) if path.exists() else {}


def messages(page: requests.Response) -> list[str]:
    return re.findall(r'class="message">([^<]*)<', page.text)


@pytest.fixture(scope="module")
def pair(make_pair: Callable[..., HookPair]) -> HookPair:
    """node1 holds g1, node2 holds g2, g3 runs nowhere; basic auth user alice besides the token."""
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    made = make_pair(
        groups=GROUPS, hook={"settle": 0}, web_config={"basic_auth_users": {"alice": hashed}}
    )
    for node, group in (("node1", "g1"), ("node2", "g2")):
        assert made.post(node, f"/api/v1/groups/{group}/acquire").json()["status"] == "done"
    return made


def test_login_sets_a_strict_expiring_cookie_valid_for_the_console_only(pair: HookPair) -> None:
    browser = Console(pair)
    refused = browser.get("/")
    assert refused.status_code == 401
    assert 'href="/ui/login"' in refused.text  # a browser without a password prompt shows this
    assert browser.get("/login").status_code == 200  # the form needs no authentication
    wrong = browser.login("not-the-token")
    assert wrong.status_code == 401
    assert "gardien_console" not in wrong.headers.get("Set-Cookie", "")
    right = browser.login()
    assert right.status_code == 303
    cookie = right.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/ui/", "Max-Age=28800"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert browser.get("/").status_code == 200
    # the cookie opens the console, never the API
    api = browser.http.get(pair.url("node1", "/api/v1/status"), timeout=10)
    assert api.status_code == 401
    assert browser.post("/logout").status_code == 200  # redirected to the login form
    assert browser.get("/").status_code == 401


def test_no_action_runs_without_a_session_or_without_its_csrf_token(pair: HookPair) -> None:
    journals = {n: journal(pair, n) for n in ("node1", "node2")}
    freezes = {n: frozen_file(pair, n) for n in ("node1", "node2")}
    body = json.dumps(payload(alert(group="g1", node="node1")))
    actions = [
        ("/groups/g1/migrate", {"target": "node2"}),
        ("/groups/g3/migrate", {"target": "node1"}),
        ("/freeze", {"verb": "freeze"}),
        ("/freeze", {"verb": "freeze", "group": "g1"}),
        ("/freeze", {"verb": "unfreeze"}),
        ("/replay", {"payload": body}),
        ("/logout", {}),
    ]
    stranger = Console(pair)
    for path, form in actions:
        assert stranger.post(path, csrf=False, **form).status_code == 401, path
    assert stranger.get("/groups/g1/migrate", target="node2").status_code == 401
    forged = Console(pair)
    forged.login()
    for path, form in actions:
        assert forged.post(path, csrf=False, **form).status_code == 403, path
        assert forged.post(path, csrf=False, csrf_token="x", **form).status_code == 403, path
    # another session's token is no token of this one
    other = Console(pair)
    other.login()
    forged.csrf = other.csrf
    assert forged.post("/freeze", verb="freeze").status_code == 403
    assert {n: journal(pair, n) for n in journals} == journals
    assert {n: frozen_file(pair, n) for n in freezes} == freezes


def test_overview_shows_each_group_where_it_runs_and_a_silent_node_as_such(
    pair: HookPair,
) -> None:
    browser = Console(pair, "node2")  # any node shows the whole cluster
    browser.login()
    page = browser.get("/fragments/overview").text
    for group, active in (("g1", "node1"), ("g2", "node2"), ("g3", "")):
        assert f'id="group-{group}" data-active="{active}"' in page
    assert "did not answer" not in page
    with pair.frozen("node1"):
        page = browser.get("/fragments/overview").text
    assert "node1 did not answer" in page
    assert 'id="group-g1" data-active=""' in page  # unknown, not shown from before
    row = page[page.index('id="group-g1"') :].split("</tr>")[0]
    assert '<span class="unknown">unknown</span>' in row
    assert "stopped" not in row


def test_migrate_shows_the_dry_run_first_then_moves_and_journals_the_operator(
    pair: HookPair,
) -> None:
    browser = Console(pair)
    browser.login()
    before = journal(pair, "node2")
    preview = browser.get("/groups/g3/migrate", target="node2")
    assert preview.status_code == 200
    assert "dry run: would move" in preview.text
    assert "acquire" in re.search(r'<pre id="plan">(.*?)</pre>', preview.text, re.S).group(1)
    assert 'id="confirm"' in preview.text
    assert journal(pair, "node2") == before  # the preview moved nothing
    assert not pair.held("node2", "g3")
    done = browser.post("/groups/g3/migrate", target="node2")
    assert done.status_code == 200
    assert pair.held("node2", "g3")
    move = [e for e in journal(pair, "node2") if e not in before and e[2] == "move"]
    assert [(m[1], m[4], m[5]) for m in move] == [("g3", "manual", "token")]
    # the basic-auth user is the operator of what they ask
    alice = requests.Session()
    alice.auth = ("alice", "secret")
    page = alice.get(pair.url("node2", "/ui/"), timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = alice.post(
        pair.url("node2", "/ui/groups/g3/migrate"),
        data={"target": "node1", "csrf": csrf},
        timeout=60,
    )
    assert answer.status_code == 200
    assert pair.held("node1", "g3")
    moves = [e for e in journal(pair, "node1") if e[2] == "move"]
    assert moves[-1][1:] == ("g3", "move", "node1", "manual", "alice")


def test_a_refused_move_shows_the_gate_and_nothing_to_confirm(pair: HookPair) -> None:
    browser = Console(pair)
    browser.login()
    frozen = browser.post("/freeze", verb="freeze", group="g1")
    assert messages(frozen) == ["g1 frozen on node1, node2"]
    assert all(frozen_file(pair, n)["groups"]["g1"]["frozen"] for n in ("node1", "node2"))
    try:
        preview = browser.get("/groups/g1/migrate", target="node2")
        assert "refused: g1 frozen" in preview.text
        assert 'id="confirm"' not in preview.text
        # an automatic move is skipped, with its reason, on the decisions page
        pair.send("node2", payload(alert(group="g1", node="node1"))).raise_for_status()
        pair.wait_decisions("node2", "g1", settle=lambda d: d[-1]["status"] == "skipped")
        page = browser.get("/decisions", group="g1", status="skipped")
        rows = re.findall(r'<tr class="decision" data-group="(\w+)" data-status="(\w+)"', page.text)
        assert rows
        assert set(rows) == {("g1", "skipped")}
        assert "skipped: g1 frozen" in page.text
    finally:
        assert messages(browser.post("/freeze", verb="unfreeze", group="g1")) == [
            "g1 unfrozen on node1, node2"
        ]
    assert pair.held("node1", "g1")


def test_the_cluster_frozen_and_unfrozen_from_the_header(pair: HookPair) -> None:
    browser = Console(pair, "node2")
    browser.login()
    assert messages(browser.post("/freeze", verb="freeze")) == ["cluster frozen on node2, node1"]
    try:
        assert all(frozen_file(pair, n)["cluster"]["frozen"] for n in ("node1", "node2"))
        nodes = browser.get("/fragments/overview").text
        assert nodes.count("<td>FROZEN</td>") == 2
    finally:
        unfrozen = browser.post("/freeze", verb="unfreeze")
    assert messages(unfrozen) == ["cluster unfrozen on node2, node1"]
    assert not any(frozen_file(pair, n)["cluster"]["frozen"] for n in ("node1", "node2"))


def test_replay_is_a_dry_run_on_every_node(pair: HookPair) -> None:
    browser = Console(pair)
    browser.login()
    before = {n: journal(pair, n) for n in ("node1", "node2")}
    body = json.dumps(payload(alert(group="g1", node="node1")))
    page = browser.post("/replay", payload=body)
    assert page.status_code == 200
    assert "dry run: would move g1 node1 -&gt; node2" in page.text
    assert {n: journal(pair, n) for n in before} == before
    bad = browser.post("/replay", payload='{"not": "a payload"}')
    assert bad.status_code == 422


def test_group_page_draws_each_move_with_a_bar_per_journaled_step(pair: HookPair) -> None:
    browser = Console(pair)
    browser.login()
    unknown = browser.get("/groups/nope")
    assert unknown.status_code == 404
    assert '<p class="error" id="error">unknown group</p>' in unknown.text  # a page, not JSON
    page = browser.get("/groups/g3").text
    assert 'id="budget"' in page
    figures = re.findall(
        r'<figure class="timeline" id="timeline-(\w+)-(\d+)"(.*?)</figure>', page, re.S
    )
    assert figures
    for node, move_id, svg in figures:
        entry = next(m for m in pair.moves(node, "g3") if m["id"] == int(move_id))
        steps = [s for s in entry["steps"] if s["started"] is not None]
        bars = re.findall(r'<rect class="bar (\w+)" data-state="\w+" data-depth="0"', svg)
        assert len(bars) == len(steps)


def test_the_cookie_is_sent_over_tls_only_when_the_hook_serves_tls(
    make_pair: Callable[..., HookPair],
) -> None:
    browser = Console(make_pair(groups={"g1": GROUPS["g1"]}, tls=True))
    answer = browser.login()
    assert answer.status_code == 303
    assert "; Secure" in answer.headers["Set-Cookie"]
    assert browser.get("/").status_code == 200


def test_overview_shows_the_alerts_prometheus_has_active(
    make_pair: Callable[..., HookPair], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    watched = make_pair(groups={"g1": GROUPS["g1"]}, hook={"prometheus_url": url})
    browser = Console(watched)
    browser.login()
    assert f"Prometheus at {url} did not answer" in browser.get("/fragments/overview").text
    hooks = {f"{a}:{watched.port}": n for n, a in watched.addresses.items()}
    rules = [
        {
            "alert": "ConsoleTestHookUp",
            "expr": 'up{job="gardien-hook"} == 1',
            "labels": {"severity": "info"},
            "annotations": {"summary": "the hook of {{ $labels.node }} is scraped"},
        }
    ]
    with prometheus(tmp_path, port, {"gardien-hook": hooks}, watched.token, rules):
        shown: list[str] = []

        def listed() -> bool:
            shown[:] = [browser.get("/fragments/overview").text]
            return shown[0].count("<td>ConsoleTestHookUp</td>") == 2

        assert wait_until(listed, 30), shown
    assert "the hook of node1 is scraped" in shown[0]
    assert "node=node2" in shown[0]


def test_a_session_ends_when_it_expires_or_too_many_are_open() -> None:
    now = [1000.0]
    sessions = Sessions("the-token", clock=lambda: now[0])
    assert sessions.login("another-token") is None
    first = sessions.login("the-token")
    assert first is not None and sessions.valid(first)
    now[0] += LIFETIME - 1
    assert sessions.valid(first)
    now[0] += 2
    assert not sessions.valid(first)
    opened = [sessions.login("the-token") for _ in range(MAX_SESSIONS + 1)]
    assert not sessions.valid(opened[0])  # the oldest made room for the newest
    assert all(sessions.valid(s) for s in opened[1:])
