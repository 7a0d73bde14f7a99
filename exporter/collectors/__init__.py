"""Node-level collectors: what a node holds and how it is (volumes, VIPs, network, disks).

The exporter instantiates every class of :func:`collector_classes` with the cluster config
(``cls(config)``; the ``vip`` collector also takes ``state_dir=``, the node agent's state folder)
and calls ``collect(timeout)`` on each on every scrape.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import NodeCollector
from exporter.collectors.mmp import MmpCollector
from exporter.collectors.network import NetworkCollector
from exporter.collectors.smart import SmartCollector
from exporter.collectors.vip import VipCollector
from exporter.collectors.volume import VolumeCollector


def collector_classes() -> Mapping[str, type[NodeCollector]]:
    """Collector name (the ``collector`` label of the exporter's self-metrics) -> class."""
    classes: list[type[NodeCollector]] = [
        VolumeCollector,
        MmpCollector,
        VipCollector,
        NetworkCollector,
        SmartCollector,
    ]
    return {cls.name: cls for cls in classes}
