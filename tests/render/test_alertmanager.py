"""The Alertmanager config: amtool's checks, its routing tree, and inhibition as a real
Alertmanager applies it to alerts posted through its API v2."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gardien.config import ClusterConfig, load_config
from gardien.render.alertmanager import render_alertmanager
from gardien.render.common import dump_yaml
from tests.render.conftest import REPO
from tests.render.daemons import Alertmanager, WebhookRecorder, wait_for
from tests.support.exporter import free_port

pytestmark = pytest.mark.skipif(
    shutil.which("amtool") is None or shutil.which("prometheus-alertmanager") is None,
    reason="amtool / prometheus-alertmanager not installed",
)
RENDERED = REPO / "alerts" / "alertmanager.yml"
FAILOVER = ["GardienGroupFailed", "GardienNodeIsolated", "GardienNodeDown"]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], check=False, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_amtool_accepts_the_config() -> None:
    result = amtool("check-config", str(RENDERED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("alertname", FAILOVER)
def test_failover_alerts_reach_the_hooks_and_the_people(alertname: str) -> None:
    labels = [f"alertname={alertname}", "failover=true", "severity=critical", "cluster=intranet",
              "group=php4", "node=node1"]  # fmt: skip
    result = amtool("config", "routes", "test", f"--config.file={RENDERED}",
                    "--verify.receivers=gardien-hooks,gardien-notify", *labels)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alertname", ["GardienNetworkOutage", "GardienSplitBrain"])
def test_other_alerts_reach_only_the_people(alertname: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={RENDERED}",
                    "--verify.receivers=gardien-notify", f"alertname={alertname}",
                    "severity=critical", "cluster=intranet")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_hooks_receiver_calls_every_node(example_config: ClusterConfig) -> None:
    config = yaml.safe_load(RENDERED.read_text())
    hooks = next(r for r in config["receivers"] if r["name"] == "gardien-hooks")
    urls = [w["url"] for w in hooks["webhook_configs"]]
    assert urls == [
        f"http://{n.address}:19481/api/v1/alerts" for n in example_config.nodes.values()
    ]
    for webhook in hooks["webhook_configs"]:
        assert webhook["send_resolved"] is True
        assert webhook["http_config"]["authorization"]["credentials_file"] == "/etc/gardien/token"


# --- a real Alertmanager, webhooks delivered to recorders on loopback ----------------------------

TOKEN = "am-test-token"


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Alertmanager, list[WebhookRecorder]]]:
    """Alertmanager with the config rendered for a cluster whose two "nodes" are 127.0.0.1 and
    127.0.0.2, each with a webhook recorder standing for its hook on the same port."""
    folder = tmp_path_factory.mktemp("am")
    (folder / "token").write_text(TOKEN + "\n")
    port = free_port()
    cluster = folder / "cluster.yml"
    cluster.write_text(yaml.safe_dump({
        "cluster": "amtest",
        "nodes": {"n1": {"address": "127.0.0.1"}, "n2": {"address": "127.0.0.2"}},
        "hook": {"port": port, "token_file": "token"},
    }))  # fmt: skip
    am_config = folder / "alertmanager.yml"
    am_config.write_text(dump_yaml(render_alertmanager(load_config(cluster))))
    recorders = [WebhookRecorder("127.0.0.1", port), WebhookRecorder("127.0.0.2", port)]
    am = Alertmanager(am_config, folder)
    try:
        am.wait_ready()
        yield am, recorders
    finally:
        am.stop()
        for recorder in recorders:
            recorder.close()


def wait_state(am: Alertmanager, states: set[str], **labels: str) -> dict[str, Any]:
    """Wait until Alertmanager reports the alert with ``labels`` in one of ``states``."""

    def check() -> dict[str, Any] | None:
        alert = am.alert(**labels)
        return alert if alert and alert["status"]["state"] in states else None

    found: dict[str, Any] = wait_for(check, f"{labels} {states}")
    return found


def failed(group: str, node: str = "n1", cluster: str = "amtest") -> dict[str, str]:
    return {"alertname": "GardienGroupFailed", "cluster": cluster, "group": group, "node": node,
            "failover": "true", "severity": "critical"}  # fmt: skip


def test_a_failover_alert_reaches_every_hook_with_the_token(
    live: tuple[Alertmanager, list[WebhookRecorder]],
) -> None:
    am, recorders = live
    am.post(failed("g1"))
    for recorder in recorders:
        _, headers, body = wait_for(lambda r=recorder: r.find(group="g1"), "g1 at a hook")
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert body["status"] == "firing"
        assert body["alerts"][0]["labels"]["node"] == "n1"


def test_network_outage_inhibits_failover_alerts(
    live: tuple[Alertmanager, list[WebhookRecorder]],
) -> None:
    am, recorders = live
    outage = {"alertname": "GardienNetworkOutage", "cluster": "amtest", "severity": "critical"}
    am.post(outage)
    wait_state(am, {"active"}, alertname="GardienNetworkOutage")
    isolated = {"alertname": "GardienNodeIsolated", "cluster": "amtest", "node": "n2",
                "failover": "true", "severity": "critical"}  # fmt: skip
    am.post(failed("g2"), isolated)
    for labels in ({"group": "g2"}, {"alertname": "GardienNodeIsolated"}):
        alert = wait_state(am, {"suppressed"}, **labels)
        assert alert["status"]["inhibitedBy"], alert
    # The same alert of another cluster is not inhibited: it is delivered, the inhibited are not.
    am.post(failed("g2", cluster="elsewhere"))
    for recorder in recorders:
        wait_for(lambda r=recorder: r.find(group="g2", cluster="elsewhere"), "control at a hook")
        assert recorder.find(group="g2", cluster="amtest") is None
        assert recorder.find(alertname="GardienNodeIsolated") is None
    assert am.alert(alertname="GardienNetworkOutage")["status"]["state"] == "active"


def test_node_down_inhibits_its_own_daemon_alerts_only(
    live: tuple[Alertmanager, list[WebhookRecorder]],
) -> None:
    am, _ = live
    am.post({"alertname": "GardienNodeDown", "cluster": "other", "node": "n1",
             "failover": "true", "severity": "critical"})  # fmt: skip
    wait_for(lambda: am.alert(alertname="GardienNodeDown"), "node down received")
    am.post(*({"alertname": "GardienHookDown", "cluster": "other", "node": n,
               "severity": "critical"} for n in ("n1", "n2")))  # fmt: skip
    wait_state(am, {"suppressed"}, alertname="GardienHookDown", node="n1")
    other = wait_state(am, {"active", "suppressed"}, alertname="GardienHookDown", node="n2")
    assert other["status"]["state"] == "active"
    assert not other["status"]["inhibitedBy"]
