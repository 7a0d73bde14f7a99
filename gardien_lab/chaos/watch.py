"""The checker's eyes: where each group's volume and VIP are, read from the kernel every 100 ms.

Nothing here asks gardien: a node's mount table is its holder's ``/proc/PID/mountinfo`` (the image
behind each loop device mounted there), its addresses what ``ip`` lists in its network namespace
(a node that is off has no holder, so nothing mounted, and its links were flushed).  Each sample
that differs from the one before is kept with its time; a sample in which a group's volume, or its
VIP, is on two nodes is a violation.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gardien_lab import services, volumes
from gardien_lab.netns import LabError
from gardien_lab.topology import NODES, Lab

SAMPLE_INTERVAL = 0.1


@dataclass(frozen=True)
class NodeFacts:
    """What one node holds in one sample: groups whose image is mounted, groups whose VIP is up."""

    mounted: frozenset[str]
    vips: frozenset[str]

    def holds(self, group: str) -> bool:
        return group in self.mounted or group in self.vips

    def brief(self) -> str:
        return f"mounted {sorted(self.mounted) or '-'}, VIPs {sorted(self.vips) or '-'}"


@dataclass(frozen=True)
class Sample:
    time: float
    nodes: Mapping[str, NodeFacts]

    def double(self) -> list[tuple[str, str]]:
        """``(group, "volume"|"VIP")`` active on two nodes in this sample."""
        found = []
        groups = set().union(*(f.mounted | f.vips for f in self.nodes.values()))
        for group in sorted(groups):
            if sum(group in f.mounted for f in self.nodes.values()) > 1:
                found.append((group, "volume"))
            if sum(group in f.vips for f in self.nodes.values()) > 1:
                found.append((group, "VIP"))
        return found

    def brief(self) -> str:
        return "; ".join(f"{n}: {f.brief()}" for n, f in sorted(self.nodes.items()))


def addresses(lab: Lab, node: str) -> set[str]:
    """The node's IPv4 addresses, every link, as ``ip`` lists them in its namespace."""
    done = subprocess.run(
        ["ip", "-n", lab.netns(node), "-o", "-4", "addr", "show"],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    )
    return {w.split("/")[0] for w in done.stdout.split() if w.count(".") == 3 and "/" in w}


def read_facts(lab: Lab) -> dict[str, NodeFacts]:
    """Each node's mounted volumes and raised VIPs, by group, read from the kernel."""
    groups = services.lab_groups(lab)
    images = {str(volumes.image(lab, g)): g for g in groups}
    vips = {str(g.vip.ip): name for name, g in groups.items()}
    facts = {}
    for node in NODES:
        mounted = volumes.mounted_images(lab, node) if lab.holder(node) is not None else set()
        facts[node] = NodeFacts(
            mounted=frozenset(images[i] for i in mounted if i in images),
            vips=frozenset(vips[a] for a in addresses(lab, node) if a in vips),
        )
    return facts


@dataclass(frozen=True)
class Double:
    """A sample in which ``group``'s ``what`` (volume or VIP) was on two nodes."""

    time: float
    group: str
    what: str
    sample: Sample


class Watch(threading.Thread):
    """Samples every :data:`SAMPLE_INTERVAL` until stopped or ``limit`` seconds have passed."""

    def __init__(self, lab: Lab, limit: float) -> None:
        super().__init__(daemon=True, name="chaos-watch")
        self.lab = lab
        self.limit = limit
        self.changes: list[Sample] = []
        """Every sample that differs from the one before it (the first one included)."""
        self.doubles: list[Double] = []
        self.samples = 0
        self.errors = 0
        """Samples that could not be read (a node changing state under the read): retried."""
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def sample(self) -> None:
        try:
            facts = read_facts(self.lab)
        except (OSError, subprocess.SubprocessError, LabError):
            self.errors += 1
            return
        now = time.time()
        sample = Sample(now, facts)
        with self._lock:
            self.samples += 1
            if not self.changes or self.changes[-1].nodes != facts:
                self.changes.append(sample)
            for group, what in sample.double():
                self.doubles.append(Double(now, group, what, sample))

    def run(self) -> None:
        start = time.monotonic()
        for n in range(1, int(self.limit / SAMPLE_INTERVAL) + 1):
            if self._stop_event.is_set():
                break
            self.sample()
            # on a schedule, not a pause after each sample: 10 a second while a read is fast
            self._stop_event.wait(max(0.0, start + n * SAMPLE_INTERVAL - time.monotonic()))

    def around(self, when: float, span: float = 3.0) -> list[Sample]:
        """The changes within ``span`` s of ``when``, and the one in force at ``when - span``."""
        with self._lock:
            before = [s for s in self.changes if s.time < when - span][-1:]
            return before + [s for s in self.changes if abs(s.time - when) <= span]

    def arrivals(self, group: str) -> list[tuple[float, str]]:
        """Each time ``group`` came up on a node other than the one it was last seen on: the
        group's moves, as the kernel saw them (volume and VIP both on one node)."""
        found: list[tuple[float, str]] = []
        last: str | None = None
        with self._lock:
            changes = list(self.changes)
        for sample in changes:
            on = [n for n, f in sample.nodes.items() if group in f.mounted and group in f.vips]
            if len(on) == 1 and on[0] != last:
                if last is not None:
                    found.append((sample.time, on[0]))
                last = on[0]
        return found

    def __enter__(self) -> Watch:
        self.sample()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=10)
