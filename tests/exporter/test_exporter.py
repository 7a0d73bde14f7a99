"""``gardien exporter`` as a process, probing real loopback targets (one of them hangs)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.exporter import ExporterProcess, labels, samples

SCRAPE_TIMEOUT = 2.0


def write_config(path: Path, node_services: str = "", groups: str = "") -> Path:
    path.write_text(
        "cluster: t\n"
        "nodes: {node1: {address: 127.0.0.1}}\n"
        "exporter: {default_scrape_timeout: 3s, scrape_timeout_margin: 250ms}\n"
        f"node_services:\n{node_services or '  []'}\n"
        f"groups:\n{groups or '  {}'}\n"
    )
    return path


@pytest.fixture(scope="module")
def exporter(
    tmp_path_factory: pytest.TempPathFactory, http_target: str, blackhole: int
) -> Iterator[ExporterProcess]:
    """One exporter for the read-only checks: good targets, a hung one, a service without probes."""
    port = http_target.rsplit(":", 1)[1]
    config = write_config(
        tmp_path_factory.mktemp("exporter") / "cluster.yml",
        node_services=f"""\
  - name: web-node
    probes: [{{http: {{url: '{http_target}/health', expect_regex: 'HEALTH OK'}}}}]
""",
        groups=f"""\
  g1:
    nodes: [node1]
    services:
      - name: web
        probes:
          - http: {{url: '{http_target}/health', expect_regex: 'HEALTH OK'}}
          - tcp: {{name: port, host: 127.0.0.1, port: {port}}}
      - name: hung
        probes:
          - http: {{url: 'http://127.0.0.1:{blackhole}/', timeout: 60s}}
      - name: no-probes
""",
    )
    process = ExporterProcess(config)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def test_every_configured_object_is_exported(exporter: ExporterProcess) -> None:
    response = exporter.scrape(SCRAPE_TIMEOUT)
    assert response.status_code == 200, exporter.output()
    text = response.text
    success = samples(text, "gardien_probe_success")
    assert success == {
        labels(group="", service="web-node", probe="http", kind="http"): 1,
        labels(group="g1", service="web", probe="http", kind="http"): 1,
        labels(group="g1", service="web", probe="port", kind="tcp"): 1,
        labels(group="g1", service="hung", probe="http", kind="http"): 0,
    }
    assert set(samples(text, "gardien_probe_duration_seconds")) == set(success)
    assert samples(text, "gardien_service_up") == {
        labels(group="", service="web-node"): 1,
        labels(group="g1", service="web"): 1,
        labels(group="g1", service="hung"): 0,
        labels(group="g1", service="no-probes"): 1,
    }
    status = samples(text, "gardien_probe_http_status_code")
    assert status[labels(group="g1", service="web", probe="http")] == 200
    assert status[labels(group="g1", service="hung", probe="http")] == 0  # present, not absent
    (build,) = samples(text, "gardien_build_info").items()
    assert build[1] == 1 and dict(build[0])["version"]
    assert samples(text, "gardien_config_last_reload_successful") == {labels(): 1}
    assert samples(text, "gardien_exporter_collector_success")[labels(collector="probes")] == 1


def test_a_hung_target_is_reported_timed_out_within_the_scrape_timeout(
    exporter: ExporterProcess,
) -> None:
    for _ in range(2):  # and again: nothing piles up
        started = time.monotonic()
        response = exporter.scrape(SCRAPE_TIMEOUT)
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert elapsed < SCRAPE_TIMEOUT + 2  # generous: Prometheus would have dropped the scrape
        timed_out = samples(response.text, "gardien_probe_timed_out")
        assert timed_out[labels(group="g1", service="hung", probe="http", kind="http")] == 1
        assert timed_out[labels(group="g1", service="web", probe="http", kind="http")] == 0


def test_promtool_finds_the_exposition_clean(exporter: ExporterProcess) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    text = exporter.scrape(SCRAPE_TIMEOUT).text
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        check=False,
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0 and not checked.stdout + checked.stderr, checked


def test_openmetrics_is_served_when_asked_for(exporter: ExporterProcess) -> None:
    response = exporter.scrape(
        SCRAPE_TIMEOUT, extra_headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_landing_page_health_and_unknown_paths(exporter: ExporterProcess) -> None:
    landing = requests.get(exporter.url, timeout=5)
    assert landing.status_code == 200
    assert landing.headers["Content-Type"].startswith("text/html")
    assert 'href="metrics"' in landing.text and "<b>t</b>" in landing.text
    assert requests.get(f"{exporter.url}/-/healthy", timeout=5).status_code == 200
    assert requests.get(f"{exporter.url}/nothing", timeout=5).status_code == 404
    assert requests.get(f"{exporter.url}/-/reload", timeout=5).status_code == 405


def _services(process: ExporterProcess) -> set[str]:
    text = process.scrape(SCRAPE_TIMEOUT).text
    return {dict(key)["service"] for key in samples(text, "gardien_service_up")}


def _reload_successful(process: ExporterProcess) -> float:
    text = process.scrape(SCRAPE_TIMEOUT).text
    return samples(text, "gardien_config_last_reload_successful")[labels()]


@pytest.fixture
def reloadable(tmp_path: Path, http_target: str) -> Iterator[tuple[ExporterProcess, Path]]:
    config = write_config(
        tmp_path / "cluster.yml",
        node_services=f"  - name: first\n    probes: [{{http: {{url: '{http_target}/health'}}}}]",
    )
    process = ExporterProcess(config)
    try:
        process.wait_ready()
        yield process, config
    finally:
        process.stop()


def test_reload_endpoint_applies_a_good_config_and_keeps_the_old_on_a_bad_one(
    reloadable: tuple[ExporterProcess, Path], http_target: str
) -> None:
    process, config = reloadable
    assert _services(process) == {"first"}
    write_config(
        config, node_services=f"  - name: second\n    probes: [{{http: {{url: '{http_target}/'}}}}]"
    )
    response = requests.post(f"{process.url}/-/reload", timeout=10)
    assert response.status_code == 200, response.text
    assert _services(process) == {"second"}
    assert _reload_successful(process) == 1

    config.write_text(config.read_text() + "unknown_key: 1\n")
    response = requests.post(f"{process.url}/-/reload", timeout=10)
    assert response.status_code == 500
    assert "unknown_key" in response.text
    assert _services(process) == {"second"}
    assert _reload_successful(process) == 0
    assert "config reload failed" in process.output()


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not within 15 s: {what}")


def test_sighup_applies_a_good_config_and_keeps_the_old_on_a_bad_one(
    reloadable: tuple[ExporterProcess, Path], http_target: str
) -> None:
    process, config = reloadable
    config.write_text(config.read_text().replace("exporter:", "exporter_typo:"))
    process.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: _reload_successful(process) == 0, "bad config reported")
    assert _services(process) == {"first"}

    write_config(
        config, node_services=f"  - name: third\n    probes: [{{http: {{url: '{http_target}/'}}}}]"
    )
    process.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: _services(process) == {"third"}, "good config applied")
    assert _reload_successful(process) == 1
    assert process.stop() == 0  # SIGTERM: a clean exit
    assert "stopping" in process.output()


def test_an_invalid_config_at_start_is_refused_with_its_place(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yml"
    config.write_text("cluster: t\nnodes: {node1: {address: not-an-ip}}\n")
    run = subprocess.run(
        [sys.executable, "-m", "gardien.cli", "exporter", "--config.file", str(config),
         "--web.listen-address", "127.0.0.1:0"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "line 2: nodes.node1.address" in run.stderr
