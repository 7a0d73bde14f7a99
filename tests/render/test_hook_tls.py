"""With ``hook.tls_ca_file`` the hooks serve https: Alertmanager's webhooks and Prometheus' hook
scrapes call them with https and that CA, and amtool and promtool accept both files with a real
token and CA in place."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gardien.cli import main
from tests.render.conftest import EXAMPLE, REPO
from tests.support.hooks import make_certificates

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("amtool", "promtool", "openssl")),
    reason="needs amtool, promtool and openssl",
)


def _render(kind: str, out: Path, token: Path, ca: Path) -> dict:
    code = main(
        [
            "render", kind, "--config.file", str(EXAMPLE), "--skip-file-checks",
            "--hook.token-file", str(token), "--hook.ca-file", str(ca), "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    return yaml.safe_load((out / f"{kind}.yml").read_text())


def _check(argv: list[str]) -> str:
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_alertmanager_and_prometheus_call_the_hooks_with_https(tmp_path: Path) -> None:
    ca = make_certificates(tmp_path, "10.0.0.1", "10.0.0.2")
    token = tmp_path / "token"
    token.write_text("secret\n")

    am = _render("alertmanager", tmp_path, token, ca)
    [hooks] = [r for r in am["receivers"] if r["name"] == "gardien-hooks"]
    assert [w["url"] for w in hooks["webhook_configs"]] == [
        "https://10.0.0.1:19481/api/v1/alerts",
        "https://10.0.0.2:19481/api/v1/alerts",
    ]
    for webhook in hooks["webhook_configs"]:
        assert webhook["http_config"] == {
            "authorization": {"type": "Bearer", "credentials_file": str(token)},
            "tls_config": {"ca_file": str(ca)},
        }
    _check(["amtool", "check-config", str(tmp_path / "alertmanager.yml")])

    prom = _render("prometheus", tmp_path, token, ca)
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert jobs["gardien-hook"]["scheme"] == "https"
    assert jobs["gardien-hook"]["tls_config"] == {"ca_file": str(ca)}
    assert jobs["gardien-exporter"]["scheme"] == "http"  # the exporters' TLS is their own flag
    assert "tls_config" not in jobs["gardien-exporter"]
    shutil.copy(REPO / "alerts" / "rules.yml", tmp_path / "rules.yml")
    _check(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
