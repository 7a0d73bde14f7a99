"""The contract of node-level collectors.

A collector yields fresh metric families on every scrape and carries no metric state between
scrapes (caches of slow reads, like SMART, are allowed and export their age).  It must finish
within ``timeout`` seconds and never raise into the scrape: the exporter reports
``gardien_exporter_collector_success{collector=name}`` 0 and logs when it does.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Hashable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar, TypeVar, cast

from prometheus_client.metrics_core import Metric

from gardien.config import ClusterConfig
from gardien.node.mounts import MountTable, read_mount_table

T = TypeVar("T")


class ScrapeFacts:
    """What more than one collector reads from the node, read at most once per scrape.

    The runner makes one per scrape and hands it to every collector, so the mount table the
    volume and vip collectors both judge from is read once (issue 14: nothing computed twice per
    scrape).  A reading is keyed by what it depends on (the /proc and /sys roots); one that raised
    is not kept, so the next caller tries again and sees the error itself.  A collector called
    without one gets a fresh one: its reads are then its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[Hashable, object] = {}
        self._reading: dict[Hashable, threading.Lock] = {}

    def once(self, key: Hashable, read: Callable[[], T]) -> T:
        """``read()``'s answer for ``key``, read by the first caller of this scrape; concurrent
        callers wait for that reading rather than making another."""
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            if key not in self._facts:
                self._facts[key] = read()
            return cast(T, self._facts[key])


def shared_mount_table(facts: ScrapeFacts) -> Callable[[Path, Path], MountTable]:
    """:func:`~gardien.node.mounts.read_mount_table`, read once per scrape (per pair of roots)."""

    def read(proc_root: Path, sys_root: Path) -> MountTable:
        key = ("mount table", proc_root, sys_root)
        return facts.once(key, partial(read_mount_table, proc_root, sys_root))

    return read


class NodeCollector(abc.ABC):
    name: ClassVar[str]
    """Value of the ``collector`` label of the exporter's self-metrics."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        """Fresh metric families for this scrape, within ``timeout`` seconds; ``facts``: the
        readings this scrape's collectors share."""
