"""Each shared flag is declared once (:mod:`gardien.options`): every command that takes it parses
it the same way, and the help of the daemons' listen address comes from the config model."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gardien import options
from gardien.cli import build_parser
from gardien.config import HookConfig
from gardien.config.model import ExporterConfig

REPO = Path(__file__).resolve().parents[2]

SHARED = [
    options.CONFIG_FILE,
    options.LISTEN_ADDRESS,
    options.WEB_CONFIG_FILE,
    options.STATE_DIR,
    options.NODE,
    options.OUTPUT,
    options.FORCE,
    options.DRY_RUN,
    options.SKIP_FILE_CHECKS,
]


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub-)command's parser, by its words after ``gardien``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def _flag(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


@pytest.mark.parametrize("option", SHARED, ids=lambda o: o.flags[0])
def test_every_command_parses_a_shared_flag_as_declared(option: options.Option) -> None:
    users = []
    for words, parser in _commands(build_parser()):
        action = _flag(parser, option.flags[0])
        if action is None:
            continue
        users.append(words)
        assert action.dest == option.dest, words
        assert action.type == option.type, words
        assert action.default == option.default, words
        assert action.choices == option.choices, words
        assert action.nargs == (0 if option.action == "store_true" else None), words

    assert users, f"no command takes {option.flags[0]}"


@pytest.mark.parametrize(
    ("command", "setting", "port"),
    [
        ("exporter", "exporter.port", ExporterConfig().port),
        ("hook", "hook.port", HookConfig().port),
    ],
)
def test_the_listen_address_help_names_the_daemon_port(
    command: str, setting: str, port: int
) -> None:
    """``gardien exporter --help`` as an operator reads it (a fresh interpreter, run from the
    checkout, so that ``exporter`` is the package and not ``tests/exporter``)."""
    done = subprocess.run(
        [sys.executable, "-m", "gardien.cli", command, "--help"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        env={**os.environ, "COLUMNS": "1000"},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert f"(default this node's address in the config, on {setting}: {port} unless set)" in (
        done.stdout
    )
