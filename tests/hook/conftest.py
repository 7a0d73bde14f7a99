"""Fixtures of the hook tests: hook pairs started per module, stopped even when a test fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hooks import HookPair

SAMPLE = Path(__file__).parent / "data" / "alertmanager-webhook-sample.json"


@pytest.fixture(scope="module")
def make_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., HookPair]]:
    """Start hook pairs for the module; every one is stopped at the end, even on failure."""
    pairs: list[HookPair] = []

    def make(**kwargs: Any) -> HookPair:
        pair = HookPair(tmp_path_factory.mktemp("hooks"), **kwargs)
        pairs.append(pair)
        pair.start()
        return pair

    try:
        yield make
    finally:
        for pair in pairs:  # every hook shuts down at the same time
            pair.terminate()
        for pair in pairs:
            pair.stop()
