"""The webhook receiver and API of real ``gardien hook`` processes, over real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
import yaml

from tests.hook.conftest import SAMPLE
from tests.support.hooks import REPO, HookPair, alert, payload

MARKER = f"gardien-test-{uuid.uuid4().hex}"
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)", MARKER]
DETACHED = f"gardien-test-{uuid.uuid4().hex}"
DETACHING = ["sh", "-c", shlex.join([*SLEEPER[:-1], DETACHED]) + " &"]
"""A start command that leaves its daemon behind as an orphan (sh exits at once)."""


def _sleepers(marker: str = MARKER) -> list[int]:
    """PIDs of this module's own service processes (found by their unique marker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found


def _parent(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return None


@pytest.fixture(scope="module")
def pair(make_pair) -> Iterator[HookPair]:
    groups = {f"g{i}": {"nodes": ["node1", "node2"]} for i in range(1, 5)}
    groups["g5"] = {
        "nodes": ["node1", "node2"],
        "services": [
            {"name": "s5", "start": SLEEPER, "process": {"cmdline": MARKER}, "stop_timeout": 5}
        ],
    }
    groups["g6"] = {
        "nodes": ["node1", "node2"],
        "services": [{"name": "s6", "start": DETACHING, "process": {"cmdline": f"{DETACHED}$"}}],
    }
    try:
        yield make_pair(groups=groups, hook={"settle": 0})
    finally:
        for pid in _sleepers() + _sleepers(DETACHED):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _no_action(pair: HookPair, group: str) -> None:
    for node in ("node1", "node2"):
        assert pair.moves(node, group) == []
        assert not [d for d in pair.decisions(node, group) if d["status"] != "ignored"]


def test_requests_without_the_token_are_refused_and_do_nothing(pair: HookPair) -> None:
    body = json.dumps(payload(alert(group="g1", node="node1")))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        for method, path in (
            ("POST", "/api/v1/alerts"),
            ("POST", "/api/v1/groups/g1/acquire"),
            ("POST", "/api/v1/freeze"),
            ("GET", "/api/v1/status"),
            ("GET", "/metrics"),
        ):
            response = requests.request(
                method, pair.url("node2", path), data=body, headers=headers, timeout=10
            )
            assert response.status_code == 401, (method, path, headers)
    assert requests.get(pair.url("node2", "/-/healthy"), timeout=10).status_code == 200
    assert not pair.held("node2", "g1")
    assert pair.get("node2", "/api/v1/status")["cluster_frozen"] is False
    _no_action(pair, "g1")


def test_invalid_payloads_are_refused_with_4xx_and_no_action(pair: HookPair) -> None:
    good = payload(alert(group="g2", node="node1"))
    cases = {
        b"{not json": 400,
        b"\xff\xfe": 400,
        json.dumps({**good, "version": "3"}).encode(): 400,
        json.dumps({**good, "version": 4}).encode(): 400,
        json.dumps({**good, "alerts": "x"}).encode(): 400,
        json.dumps(payload(alert(group="nope", node="node1"))).encode(): 422,
        json.dumps(payload(alert(group="g2", node="node9"))).encode(): 422,
        json.dumps(payload(alert(node="node1"))).encode(): 422,
        json.dumps(payload(alert("GardienNodeDown", node="elsewhere"))).encode(): 422,
        b"[" * 100_000: 400,
        b" " * (1024 * 1024 + 1): 413,
    }
    for body, code in cases.items():
        response = pair.post("node2", "/api/v1/alerts", data=body)
        assert response.status_code == code, (body[:60], response.text)
    # a good alert and an unknown one in the same notification: nothing acts
    mixed = payload(alert(group="g2", node="node1"), alert(group="g2; reboot", node="node1"))
    assert pair.send("node2", mixed).status_code == 422
    _no_action(pair, "g2")
    metrics = requests.get(
        pair.url("node2", "/metrics"), timeout=10, headers=pair.session.headers
    ).text
    assert 'gardien_hook_webhook_requests_total{code="422"} 5.0' in metrics
    assert 'gardien_hook_webhook_requests_total{code="413"} 1.0' in metrics


def test_the_hooks_metrics_are_answered_as_the_exporter_answers_its_own(pair: HookPair) -> None:
    """The format Prometheus asks for, gzip when accepted, ``name[]`` (gardien.web.exposition)."""
    url = pair.url("node2", "/metrics")
    asked = {
        **pair.session.headers,
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        "Accept-Encoding": "gzip",
    }
    # urllib3 decodes the body it was sent gzipped; the header says it was
    scraped = requests.get(url, timeout=10, headers=asked)
    assert scraped.status_code == 200
    assert scraped.headers["Content-Encoding"] == "gzip"
    assert scraped.headers["Content-Type"].startswith("application/openmetrics-text")
    assert scraped.text.endswith("# EOF\n")
    assert "gardien_hook_webhook_requests_total" in scraped.text
    one = requests.get(
        url,
        params={"name[]": "gardien_hook_decision_duration_seconds_count"},
        timeout=10,
        headers={**pair.session.headers, "Accept-Encoding": "identity"},
    )
    assert "Content-Encoding" not in one.headers
    assert one.headers["Content-Type"].startswith("text/plain")
    samples = [line for line in one.text.splitlines() if not line.startswith("#")]
    assert samples and all(
        line.startswith("gardien_hook_decision_duration_seconds_count") for line in samples
    ), one.text


def test_resolved_and_foreign_alerts_start_no_move(pair: HookPair) -> None:
    pair.post("node1", "/api/v1/groups/g3/acquire").raise_for_status()
    resolved = payload(alert(group="g3", node="node1", status="resolved"))
    for node in ("node1", "node2"):
        assert pair.send(node, resolved).status_code == 200
        # the real Alertmanager sample: an alert gardien does not act on, with unknown labels
        assert pair.post(node, "/api/v1/alerts", data=SAMPLE.read_bytes()).status_code == 200
    for node in ("node1", "node2"):
        found = pair.wait_decisions(node, "g3")
        assert [d["message"] for d in found] == ["ignored: GardienGroupFailed resolved"]
        assert pair.moves(node, "g3") == []
    assert pair.held("node1", "g3")


def test_five_concurrent_deliveries_cause_one_move(pair: HookPair) -> None:
    pair.post("node1", "/api/v1/groups/g4/acquire").raise_for_status()
    body = payload(alert(group="g4", node="node1"))
    answers: list[int] = []

    def deliver(node: str) -> None:
        answers.append(pair.send(node, body).status_code)

    threads = [
        threading.Thread(target=deliver, args=(n,))
        for n in ("node2", "node2", "node2", "node1", "node2", "node2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 6
    found = pair.wait_decisions("node2", "g4", 5, lambda ds: any(d["status"] == "done" for d in ds))
    messages = sorted(d["message"] for d in found)
    assert sum(m.startswith("moved g4 node1 -> node2") for m in messages) == 1, messages
    assert sum(m.startswith("duplicate:") for m in messages) == 4, messages
    assert len(messages) == 5
    # the move says how long its decision took (arrival to the move's start), and so does /metrics
    [moved] = [d for d in found if d["message"].startswith("moved")]
    assert moved["details"]["decision_seconds"] > 0
    metrics = pair.session.get(pair.url("node2", "/metrics"), timeout=10).text
    assert "gardien_hook_decision_duration_seconds_count 1.0" in metrics
    # later retries of the same alert are duplicates too
    pair.send("node2", body)
    assert len(pair.moves("node2", "g4")) == 1
    assert pair.held("node2", "g4") and not pair.held("node1", "g4")
    # node1 decided before, during or after node2's move: whatever it said, it did not move
    assert not pair.wait_decisions("node1", "g4")[0]["message"].startswith("moved")
    assert pair.moves("node1", "g4") == []


def test_label_values_never_reach_a_shell(pair: HookPair, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    nasty = f"$(touch {canary}); `touch {canary}` | touch {canary} && touch {canary}; '\"\n\\"
    # unknown group or node full of metacharacters: refused, nothing runs
    for labels in ({"group": nasty, "node": "node1"}, {"group": "g5", "node": nasty}):
        assert pair.send("node2", payload(alert(**labels))).status_code == 422
    assert pair.send("node2", payload(alert("GardienNodeDown", node=nasty))).status_code == 422
    # a valid alert whose other labels and annotations carry metacharacters moves the group
    pair.post("node1", "/api/v1/groups/g5/acquire").raise_for_status()
    evil = alert(group="g5", node="node1", service=nasty, instance=nasty)
    evil["annotations"] = {"summary": nasty, "description": nasty}
    assert pair.send("node2", payload(evil)).status_code == 200
    found = pair.wait_decisions("node2", "g5", 1, lambda ds: ds[-1]["status"] != "in_progress")
    assert found[-1]["message"].startswith("moved g5 node1 -> node2"), found
    assert not canary.exists()
    [move] = pair.moves("node2", "g5")
    assert [s["state"] for s in move["steps"]] == ["done", "skipped", "done"], move
    assert nasty not in json.dumps(move) and "touch" not in json.dumps(move)
    # what ran: exactly the configured service argv, once, on the target
    [pid] = _sleepers()
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1] == [
        a.encode() for a in SLEEPER
    ]
    for node in ("node1", "node2"):
        assert nasty not in pair.log(node)


def test_metrics_follow_the_contract(pair: HookPair) -> None:
    text = requests.get(
        pair.url("node1", "/metrics"), headers=pair.session.headers, timeout=10
    ).text
    documented = set(re.findall(r"`(gardien_[a-z_]+)`", (REPO / "docs" / "metrics.md").read_text()))
    families = set(re.findall(r"^# TYPE (gardien_\w+) (\w+)", text, re.M))
    for name, kind in families:
        counter = kind == "counter" and not name.endswith("_total")
        assert (f"{name}_total" if counter else name) in documented, name
    for group in ("g1", "g5"):
        assert f'gardien_hook_move_in_progress{{group="{group}"}} 0.0' in text
        assert f'gardien_hook_moves_total{{group="{group}"}}' in text
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "metrics"],
            input=text,
            text=True,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_basic_auth_of_the_web_config(make_pair) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    other = make_pair(web_config={"basic_auth_users": {"ops": hashed}})
    url = other.url("node1", "/api/v1/status")
    assert requests.get(url, auth=("ops", "s3cret"), timeout=10).status_code == 200
    assert requests.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
    assert requests.get(url, timeout=10).status_code == 401
    assert other.session.get(url, timeout=10).status_code == 200  # the token works as well


def test_the_hook_adopts_and_reaps_the_daemons_that_detach(pair: HookPair) -> None:
    """A subreaper: an orphaned daemon becomes the hook's child (not a late-reaping PID 1's), and
    once stopped it is reaped, not left a zombie (whose command line no longer finds it)."""
    hook = pair.procs["node1"].pid
    acquired = pair.post("node1", "/api/v1/groups/g6/acquire").json()
    assert acquired["status"] == "done", acquired
    deadline = time.monotonic() + 20
    daemons = _sleepers(DETACHED)
    while not (daemons and _parent(daemons[0]) == hook) and time.monotonic() < deadline:
        time.sleep(0.05)  # sh may not have exited yet
        daemons = _sleepers(DETACHED)
    assert len(daemons) == 1 and _parent(daemons[0]) == hook, (daemons, pair.log("node1"))

    released = pair.post("node1", "/api/v1/groups/g6/release").json()
    assert released["status"] == "done", released
    deadline = time.monotonic() + 30
    while Path(f"/proc/{daemons[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{daemons[0]}").exists(), "a zombie left by the hook"


def test_a_refused_migration_says_refused_once(make_pair) -> None:
    """The mover's refusal: the API answer says "refused: ..." once, and so do its journal (its
    status kept apart from its message) and ``gardien hook history``."""
    other = make_pair(groups={"m1": {"nodes": ["node1", "node2"]}})
    other.stop("node1")  # unreachable, and no fence agent configured
    answer = other.post("node2", "/api/v1/groups/m1/migrate", json={"target": "node2"}).json()
    reason = "node1 unreachable and no fence agent"
    assert (answer["status"], answer["message"]) == ("refused", f"refused: {reason}"), answer
    [move] = other.moves("node2", "m1")
    assert (move["status"], move["message"]) == ("refused", reason)
    history = other.cli("history", "m1").stdout
    assert f"refused: {reason}\n" in history and "refused: refused" not in history, history


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for the test's CA")
def test_hooks_call_each_other_with_https_verified_by_the_ca(make_pair) -> None:
    """With hook.tls_ca_file the token never crosses the network in clear: moves, the CLI and a
    plain-HTTP client see the https hooks as they should."""
    tls = make_pair(tls=True, hook={"settle": 0})
    tls.post("node1", "/api/v1/groups/g1/acquire").raise_for_status()
    tls.send("node2", payload(alert(group="g1", node="node1"))).raise_for_status()
    # node2 read node1's status and asked it to release: both over https
    moved = tls.wait_decisions("node2", "g1")[-1]["message"]
    assert moved.startswith("moved g1 node1 -> node2"), moved
    assert tls.held("node2", "g1") and not tls.held("node1", "g1")
    status = tls.cli("status", "--output", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    cluster = json.loads(status.stdout)
    assert cluster["groups"]["g1"]["active_node"] == "node2"
    assert all(node["reachable"] for node in cluster["nodes"].values())
    plain = tls.url("node1", "/-/healthy").replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(plain, timeout=10)
    with pytest.raises(requests.exceptions.SSLError):  # a certificate of another CA is refused
        requests.get(tls.url("node1", "/-/healthy"), timeout=10)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for the test's CA")
def test_a_hook_whose_scheme_its_peers_would_not_use_refuses_to_start(tmp_path: Path) -> None:
    """A hook its peers call with the wrong scheme looks unreachable to them, and an unreachable
    node is fenced: such a hook does not start, and says why."""
    (tmp_path / "ca-only").mkdir()
    (tmp_path / "tls-only").mkdir()
    half = HookPair(tmp_path / "ca-only", tls=True)
    half.web_config = None  # the CA is in the config, the web config serves plain HTTP
    with pytest.raises(RuntimeError, match=r"hook\.tls_ca_file is set in .*plain HTTP"):
        half.start("node1")
    other = HookPair(tmp_path / "tls-only", tls=True)
    config = yaml.safe_load(other.config_file.read_text())
    del config["hook"]["tls_ca_file"]  # the web config serves https, the peers would use http
    other.config_file.write_text(yaml.safe_dump(config))
    with pytest.raises(RuntimeError, match=r"hook\.tls_ca_file is not set"):
        other.start("node1")
