"""One lab for the whole session (``gtlab``: namespaces gtlab-node1...), removed at the end.

Network safety: the lab's addresses (10.99.0.0/16) exist only inside the namespaces it creates;
the root namespace holds an ``unreachable`` route for them while the lab exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gardien_lab import lifecycle
from gardien_lab.demo import wait_scraped
from gardien_lab.scenario import restore
from gardien_lab.topology import Lab
from tests.lab.helpers import lab_possible

pytestmark = pytest.mark.root


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = lab_possible()
    if reason:
        pytest.skip(reason)
    the_lab = Lab(name="gtlab")
    lifecycle.down(the_lab)  # a previous session that crashed
    try:
        lifecycle.up(the_lab)
        assert wait_scraped(the_lab, 90), "Prometheus does not scrape every exporter and hook"
        yield the_lab
    finally:
        if os.environ.get("GARDIEN_LAB_KEEP") != "1":  # keep it to look around after a failure
            removal = lifecycle.down(the_lab)
            assert removal.problems == [] and removal.not_ours == [], removal


@pytest.fixture
def home_at_the_start(lab: Lab) -> None:
    """The test starts from the lab's initial placement: faults undone, every group at home."""
    restore(lab)


@pytest.fixture(scope="module")
def home_at_the_end(lab: Lab) -> Iterator[None]:
    """The module leaves the lab at its initial placement (the next module may not restore)."""
    yield
    restore(lab)
