"""The contract of node-level collectors.

A collector yields fresh metric families on every scrape and carries no metric state between
scrapes (caches of slow reads, like SMART, are allowed and export their age).  It must finish
within ``timeout`` seconds and never raise into the scrape: the exporter reports
``gardien_exporter_collector_success{collector=name}`` 0 and logs when it does.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import ClassVar

from prometheus_client.metrics_core import Metric

from gardien.config import ClusterConfig


class NodeCollector(abc.ABC):
    name: ClassVar[str]
    """Value of the ``collector`` label of the exporter's self-metrics."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def collect(self, timeout: float) -> Iterable[Metric]:
        """Fresh metric families for this scrape, within ``timeout`` seconds."""
