"""The explanation of a failed lab scenario is best effort: its own failures are told in it, they
never replace the assertion that failed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gardien_lab import scenario
from gardien_lab.topology import Lab


def test_explain_of_a_lab_whose_machines_are_off_tells_why_instead_of_raising(
    tmp_path: Path,
) -> None:
    lab = Lab(name="gtnowhere", root=tmp_path)  # never built: no machine runs, no token
    text = scenario.explain(lab, time.time(), "php4", "mysql1")
    lines = text.splitlines()
    assert lines[0] == "placement: " + str({g: [] for g in scenario.home(lab)})
    assert len(lines) == 3
    assert all(line.startswith("(could not tell: ") for line in lines[1:]), text


def test_the_failed_assertion_keeps_its_own_message(tmp_path: Path) -> None:
    lab = Lab(name="gtnowhere", root=tmp_path)
    moved = False
    with pytest.raises(AssertionError) as failure:
        assert moved, scenario.explain(lab, time.time(), "php4")
    assert "placement: " in str(failure.value)
    assert "could not tell" in str(failure.value)
