"""``alerts/`` and ``grafana/`` hold the rendered output for examples/intranet.yml: they must be
exactly what ``gardien render`` writes today (docs/alerting.md lists the commands), and every
runbook link must land on a section of docs/runbook.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gardien.cli import main
from gardien.config import ClusterConfig
from gardien.render.rules import RECORDING_RULES, alert_names
from tests.render.conftest import EXAMPLE, REPO

RENDERS = [
    (["rules"], "alerts"),
    (["alertmanager", "--hook.token-file", "/etc/gardien/token"], "alerts"),
    (["prometheus", "--hook.token-file", "/etc/gardien/token"], "alerts"),
    (["dashboards"], "grafana"),
]


def render_all(root: Path) -> None:
    for args, folder in RENDERS:
        code = main(
            [
                "render",
                *args,
                "--config.file",
                str(EXAMPLE),
                "--skip-file-checks",
                "--out",
                str(root / folder),
            ]
        )
        assert code == 0


def files_under(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for folder in ("alerts", "grafana")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def test_committed_files_are_what_render_writes(tmp_path: Path) -> None:
    render_all(tmp_path)
    fresh, committed = files_under(tmp_path), files_under(REPO)
    assert sorted(fresh) == sorted(committed), "files added or missing: see docs/alerting.md"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale rendered files {stale}: re-run the commands in docs/alerting.md"


def test_render_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "render",
                "rules",
                "--config.file",
                str(EXAMPLE),
                "--skip-file-checks",
                "--for.group-failed",
                "7s",
            ]
        )
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    failed = [
        r for g in printed["groups"] for r in g["rules"] if r.get("alert") == "GardienGroupFailed"
    ]
    assert failed[0]["for"] == "7s"


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_runbook_url_has_its_section(example_config: ClusterConfig) -> None:
    anchors = _anchors((REPO / "docs" / "runbook.md").read_text())
    rules = yaml.safe_load((REPO / "alerts" / "rules.yml").read_text())
    urls = [
        r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"] if "alert" in r
    ]
    assert len(urls) == len(alert_names(example_config))
    for url in urls:
        page, anchor = url.split("#")
        assert page == "docs/runbook.md"
        assert anchor in anchors, f"{url}: no such section in docs/runbook.md"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_scrape_config(tmp_path: Path, example_config: ClusterConfig) -> None:
    """Fully checked (rule file loaded, token file read) with the token path moved to tmp."""
    token = tmp_path / "token"
    token.write_text("secret\n")
    text = (REPO / "alerts" / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(text.replace("/etc/gardien/token", str(token)))
    shutil.copy(REPO / "alerts" / "rules.yml", tmp_path / "rules.yml")
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rules = len(RECORDING_RULES) + len(alert_names(example_config))
    assert f"SUCCESS: {rules} rules found" in result.stdout


def test_scrape_config_labels_every_target_with_node_and_cluster(
    example_config: ClusterConfig,
) -> None:
    config = yaml.safe_load((REPO / "alerts" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"gardien-exporter", "gardien-hook"}
    for job, port in (("gardien-exporter", 19480), ("gardien-hook", 19481)):
        targets = {tuple(sc["targets"]): sc["labels"] for sc in jobs[job]["static_configs"]}
        assert targets == {
            (f"{node.address}:{port}",): {"node": name, "cluster": "intranet"}
            for name, node in example_config.nodes.items()
        }
