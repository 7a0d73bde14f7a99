"""The render flags are generated from the options dataclasses: each flag's ``--help`` shows the
field's declared default, parsing with no flag yields that default, and a flag given is used."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from gardien import options
from gardien.cli import build_parser, main
from gardien.render.command import OPTIONS
from tests.render.conftest import EXAMPLE

KINDS = sorted(OPTIONS)


def _help(kind: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", kind, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("kind", KINDS)
def test_each_flag_help_shows_the_dataclass_default(
    kind: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    options_type = OPTIONS[kind]
    declared = {f.name: f.default for f in dataclasses.fields(options_type)}

    shown = _help(kind, capsys)

    flags = options.field_options(options_type)
    assert flags, f"render {kind} has no flag"
    for option in flags:
        assert option.dest is not None and option.show_default is not None, option.flags
        default = option.show_default(declared[option.dest])
        assert f"{option.flags[0]} " in shown
        assert f"{option.help} (default {default})" in shown, option.flags


def test_the_defaults_are_shown_as_operators_write_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")

    assert "before failover (default 3s)" in _help("rules", capsys)
    assert "a failover group (default 200ms)" in _help("alertmanager", capsys)
    assert "repeatable (default rules.yml)" in _help("prometheus", capsys)


@pytest.mark.parametrize("kind", KINDS)
def test_parsing_no_flag_yields_the_dataclass_defaults(kind: str) -> None:
    options_type = OPTIONS[kind]

    args = build_parser().parse_args(["render", kind])

    assert options.from_args(options_type, args) == options_type()


def test_given_flags_replace_the_defaults() -> None:
    args = build_parser().parse_args(
        ["render", "prometheus", "--scrape-interval", "2s", "--rule-file", "a.yml",
         "--rule-file", "b.yml", "--scheme", "https"]
    )  # fmt: skip

    parsed = options.from_args(OPTIONS["prometheus"], args)

    assert parsed.scrape_interval == 2.0
    assert parsed.rule_files == ("a.yml", "b.yml")  # not added to the default rules.yml
    assert parsed.scheme == "https"
    assert parsed.alertmanagers == OPTIONS["prometheus"]().alertmanagers


def test_config_file_defaults_to_gardien_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARDIEN_CONFIG", str(EXAMPLE))

    assert main(["render", "prometheus", "--skip-file-checks"]) == 0

    scrape = yaml.safe_load(capsys.readouterr().out)
    assert scrape["scrape_configs"][0]["static_configs"][0]["labels"]["cluster"] == "intranet"
