"""Property-based fuzzing of the webhook receiver: never a 5xx, never an action for bad input.

Flask's test client drives a real in-process hook (real agent, journal and mover; its peer's
address has no listener, so the peer is unreachable and no alert can ever lead to a move).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover_hook.app import create_app
from failover_hook.daemon import build_hook
from failover_hook.hook import Hook
from gardien.config import parse_config
from tests.support.hooks import alert, payload

CONFIG = """
cluster: fuzz
nodes:
  node1: {address: 127.213.0.1}
  node2: {address: 127.213.0.2}
hook: {port: 9, settle: 0, cooldown: 0, request_timeout: 1}
groups:
  php4: {nodes: [node1, node2]}
  mysql1: {nodes: [node2, node1]}
"""
GROUPS = ["php4", "mysql1"]
NODES = ["node1", "node2"]
ALERTNAMES = ["GardienGroupFailed", "GardienNodeIsolated", "GardienNodeDown", "HAServiceDown"]

text = st.text(max_size=20)
label_value = st.one_of(st.sampled_from(GROUPS + NODES), text)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
json_any = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=10,
)


@st.composite
def alerts(draw: st.DrawFn) -> dict[str, Any]:
    labels = draw(
        st.dictionaries(
            st.sampled_from(["group", "node", "service", "instance"]), label_value, max_size=4
        )
    )
    made = alert(
        draw(st.sampled_from(ALERTNAMES)), draw(st.sampled_from(["firing", "resolved"])), **labels
    )
    # now and then break one field of the alert
    if draw(st.booleans()):
        made[draw(st.sampled_from(sorted(made)))] = draw(json_any)
    return made


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    made = payload(*draw(st.lists(alerts(), min_size=1, max_size=4)))
    made["version"] = draw(st.sampled_from(["4", "4", "4", "3", 4, None]))
    if draw(st.integers(0, 4)) == 0:
        made[draw(st.sampled_from(sorted(made)))] = draw(json_any)
    return made


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hook]:
    config = parse_config(CONFIG)
    made = build_hook(config, "node2", tmp_path_factory.mktemp("state"), dry_run=False)
    yield made
    made.shutdown()


@pytest.fixture(scope="module")
def client(hook: Hook) -> FlaskClient:
    return create_app(hook).test_client()


def _check(client: FlaskClient, hook: Hook, body: bytes) -> int:
    code = client.post("/api/v1/alerts", data=body).status_code
    assert code in (200, 400, 413, 422), (code, body[:200])
    assert hook.journal.history() == []
    assert hook.agent.held() == set()
    return code


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes(client: FlaskClient, hook: Hook, body: bytes) -> None:
    _check(client, hook, body)


@FUZZ
@given(body=json_any)
def test_arbitrary_json(client: FlaskClient, hook: Hook, body: Any) -> None:
    assert _check(client, hook, json.dumps(body).encode()) != 200 or isinstance(body, dict)


@FUZZ
@given(body=payloads())
def test_payload_like_json(client: FlaskClient, hook: Hook, body: dict[str, Any]) -> None:
    code = _check(client, hook, json.dumps(body).encode())
    if body.get("version") != "4":
        assert code == 400
    elif code == 200:
        for item in body["alerts"]:
            labels = item["labels"]
            if (
                item["status"] == "firing"
                and isinstance(labels, dict)
                and labels.get("alertname") == "GardienGroupFailed"
            ):
                assert labels.get("group") in GROUPS and labels.get("node") in NODES


def test_the_sample_is_accepted(client: FlaskClient, hook: Hook) -> None:
    sample = (Path(__file__).parent / "data" / "alertmanager-webhook-sample.json").read_bytes()
    assert _check(client, hook, sample) == 200
