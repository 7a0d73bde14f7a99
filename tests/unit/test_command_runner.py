"""CommandRunner: the hard deadline kills the whole process group, and nothing leaks in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter.probes.command import CommandRunner


def dead(pid: int) -> bool:
    """Gone, or a zombie waiting for a late reaper (LAB.md section 9)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_deadline_kills_the_command_and_what_it_started() -> None:
    result = CommandRunner().run(["sh", "-c", "sleep 60 & echo $!; wait"], timeout=0.5)
    assert result.timed_out
    assert result.returncode is None
    assert not result.ok
    grandchild = int(result.stdout.split()[0])
    assert not Path(f"/proc/{result.pid}").exists()
    assert dead(grandchild)


def test_output_status_and_stdin() -> None:
    result = CommandRunner().run(["sh", "-c", "cat; echo err >&2; exit 3"], 5, stdin="in")
    assert (result.returncode, result.stdout, result.stderr) == (3, "in", "err\n")
    assert not result.timed_out


def test_missing_program_is_a_result_not_an_exception() -> None:
    result = CommandRunner().run(["/nonexistent/gardien-tool"], 5)
    assert not result.ok
    assert result.error.startswith("cannot run /nonexistent/gardien-tool")


def test_prefix_and_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSWD", "leaked")  # smbclient would take it as a password
    result = CommandRunner(prefix=["env"]).run(["sh", "-c", "echo ${PASSWD:-none}"], 5)
    assert result.argv[0] == "env"
    assert result.stdout == "none\n"
    assert os.environ["PASSWD"] == "leaked"
