"""The peers' failover trials: fault on pr-a, time until the client gets the page from pr-b.

Each tool gets a lab of its own (up, its trials, down).  A trial waits until pr-a serves the page
alone, ``SETTLE`` seconds more, injects the fault (:func:`benchmarks.peers.lab.inject`) and
polls from the client with gardien's poller (:func:`benchmarks.failover_rows.answered_at`) until
the VIP is on pr-b alone and the page answers: the same condition as gardien's trial (its
placement, then the client's check).  A trial that waits ``timeout`` in vain ends its row (a
fault the tool does not fail over on is reported, not retried).  The tools show no phases.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from benchmarks.failover_rows import ANSWERING, Row, answered_at
from benchmarks.peers import keepalived, pacemaker, teardown
from benchmarks.peers.lab import NODES, PeersLab, inject

TOOLS: dict[str, ModuleType] = {keepalived.NAME: keepalived, pacemaker.NAME: pacemaker}
"""Each tool's module: ``start(lab, monitors)``, ``restore(lab, node)``, ``pidfile_instance``."""
GROUP = "apache"
KIND = "volume + VIP + Apache"
KINDS = {keepalived.NAME: "VIP, Apache on both", pacemaker.NAME: KIND}
COMPARED_WITH = {GROUP: "php4"}
"""gardien's group built like the peers' (its Apache on a volume behind a VIP; php4 also has a
Samba): the ratios compare with its rows."""
SETTLE = 3.0
"""Seconds between the source serving again and the next fault (the peers' own timers)."""


def trial(lab: PeersLab, tool: ModuleType, failure: str, timeout: float) -> dict[str, float] | None:
    """One trial; None when the page never came from the target within ``timeout``."""
    source, target = NODES
    if not tool.restore(lab, source):
        raise TimeoutError(f"{tool.NAME}: {source} does not serve the page again")
    time.sleep(SETTLE)
    t0 = time.time()
    inject(lab, source, failure, tool.pidfile_instance(source))
    at = answered_at(lambda: lab.served_from(target), timeout)
    return None if at is None else {ANSWERING: at - t0}


def rows(
    tools: Sequence[str],
    failures: Sequence[str],
    runs: int,
    timeout: float,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[Row]:
    found = []
    for name in tools:
        tool = TOOLS[name]
        with teardown.lab() as lab:
            tool.start(lab)
            for failure in failures:
                row = Row(GROUP, KINDS[name], failure, name)
                found.append(row)
                for i in range(runs):
                    measured = trial(lab, tool, failure, timeout)
                    say(f"{name} {failure} #{i + 1}: {json.dumps(measured)}")
                    if measured is None:
                        row.gave_up = timeout
                        break
                    row.trials.append(measured)
    return found
