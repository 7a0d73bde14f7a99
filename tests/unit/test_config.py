"""The cluster config: every invalid case names its problem and its place; valid files load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gardien import exitcodes
from gardien.config import load_config, parse_config
from gardien.errors import ConfigError

CONFFILES = Path(__file__).parents[1] / "conffiles"
REPO = Path(__file__).parents[2]

# fixture file -> (line, key path, words of the message) of the problem it must report
INVALID = {
    "duplicate_service": (9, "groups.b.services.0.name", "duplicate service name 'web'"),
    "unknown_probe_kind": (9, "groups.a.services.0.probes.0", "unknown probe kind 'gopher'"),
    "unknown_node": (5, "groups.a.nodes.1", "unknown node 'node3'"),
    "vip_without_prefix": (6, "groups.a.vip.address", "needs a prefix length"),
    "missing_token_file": (3, "hook.token_file", "/nonexistent/gardien/token does not exist"),
    "bad_duration": (3, "hook.cooldown", "invalid duration 'ten minutes'"),
    "duplicate_key": (5, "groups.a", "key given twice"),
    "invalid_yaml": (3, "", "invalid YAML"),
    "unknown_key": (6, "groups.a.volumes", "Extra inputs are not permitted"),
    "fencing_unknown_node": (4, "fencing.node9", "unknown node 'node9'"),
    "duplicate_vip": (5, "groups.b.vip.address", "also group 'a'"),
    "service_unit_and_commands": (7, "groups.a.services.0", "either 'unit' or 'start'/'stop'"),
    "negative_restarts": (9, "groups.a.services.0.restart.attempts", "greater than or equal to 0"),
    "restart_without_settle": (
        10,
        "groups.a.services.0.restart.attempts",
        "a restart in place needs hook.settle above 0",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_config_names_problem_and_place(case: str) -> None:
    line, path, words = INVALID[case]
    with pytest.raises(ConfigError) as raised:
        load_config(CONFFILES / f"{case}.yml")
    problems = raised.value.problems
    matching = [p for p in problems if words in p]
    assert matching, problems
    assert f"line {line}" in matching[0], matching
    assert path in matching[0], matching


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(CONFFILES / "many_problems.yml")
    text = "\n".join(raised.value.problems)
    assert "line 3: nodes.node1.address" in text
    assert "line 4: hook.max_moves" in text
    assert "line 7: groups.a.nodes" in text
    assert "line 8: groups.a.vip.address" in text


def test_field_and_cross_reference_problems_are_reported_together() -> None:
    """A VIP without prefix and an unknown probe kind (field checks) do not hide a group naming
    an unknown node (a cross-reference check): all three come in one run, in the file's order."""
    with pytest.raises(ConfigError) as raised:
        load_config(CONFFILES / "three_problems.yml")
    problems = raised.value.problems
    expected = [
        ("line 5: groups.a.nodes.1", "unknown node 'node3'"),
        ("line 6: groups.a.vip.address", "needs a prefix length"),
        ("line 10: groups.a.services.0.probes.0", "unknown probe kind 'gopher'"),
    ]
    assert len(problems) == len(expected), problems
    for problem, (place, words) in zip(problems, expected, strict=True):
        assert place in problem and words in problem, problems
    result = _check_config(str(CONFFILES / "three_problems.yml"))
    assert result.returncode == exitcodes.CONFIG_INVALID
    assert len(result.stderr.strip().splitlines()) == 3, result.stderr


def test_cross_reference_checks_survive_malformed_sections() -> None:
    """Cross-reference checks read the file as parsed: sections of the wrong shape are reported
    by the field checks, never a crash, and the other sections are still cross-checked."""
    text = (
        "cluster: test\n"
        "nodes: [node1]\n"
        "fencing: {node9: {command: [fence]}}\n"
        "groups:\n"
        "  a: {nodes: node1, vip: 7, services: {name: x}}\n"
        "  b: {nodes: [node1], volume: {device: 3}}\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, check_files=False)
    text_of = "\n".join(raised.value.problems)
    assert "line 2: nodes" in text_of
    assert "line 3: fencing.node9: fencing names unknown node 'node9'" in text_of
    assert "line 6: groups.b.nodes.0: group names unknown node 'node1'" in text_of


def test_valid_config_is_typed_and_immutable() -> None:
    config = load_config(CONFFILES / "valid.yml")
    group = config.groups["web"]
    assert group.nodes == ("node1", "node2")
    assert str(group.vip.address) == "127.0.10.1/8" if group.vip else False
    assert config.hook.cooldown == 300.0 and config.hook.settle == 0.5
    assert config.hook.token_file == CONFFILES / "token.txt"
    service = group.services[0]
    assert [p.name for p in service.all_probes] == ["process", "http", "http_2"]
    assert config.services["apache-web"][0] == "web"
    # no restart in place unless asked (a failure moves the group at once, as before)
    assert service.restart.attempts == 0 and service.restart.window == 600.0
    with pytest.raises(Exception, match="frozen"):
        config.groups["web"].nodes = ("node2",)  # type: ignore[misc]


def _check_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gardien.cli", "check-config", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_check_config_cli_exit_codes() -> None:
    good = _check_config(str(CONFFILES / "valid.yml"))
    assert good.returncode == exitcodes.OK, good.stderr
    assert "valid" in good.stdout
    bad = _check_config(str(CONFFILES / "many_problems.yml"))
    assert bad.returncode == exitcodes.CONFIG_INVALID
    assert len(bad.stderr.strip().splitlines()) >= 4


def test_shipped_example_is_valid() -> None:
    result = _check_config("examples/intranet.yml")
    assert result.returncode == exitcodes.OK, result.stderr
    assert "5 groups (php4, php5, mysql1, mysql2, java)" in result.stdout
