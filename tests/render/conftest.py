"""Fixtures shared by the render tests: the example config and the repository's paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from gardien.config import ClusterConfig, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "intranet.yml"


@pytest.fixture(scope="session")
def example_config() -> ClusterConfig:
    return load_config(EXAMPLE, check_files=False)
