"""Network collector: ICMP echo to the internal and external targets, and the link of the interface.

A node that cannot reach its targets while its peer can is isolated; when neither can, the outage
is network-wide and moving groups would not help.  Each target gets one echo request per scrape,
all in one round (:meth:`gardien.node.reachability.Pinger.round`, as the hook's network verdict
pings) on the thread that runs this collector; each answer is awaited at most the network's
``timeout``, and a target that has not answered by the scrape's deadline is down.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts
from gardien.config import ClusterConfig
from gardien.node.reachability import Pinger, link_up
from gardien.polling import Deadline


class NetworkCollector(NodeCollector):
    name = "network"

    def __init__(self, config: ClusterConfig, *, sys_root: Path = Path("/sys")) -> None:
        super().__init__(config)
        self.pinger = Pinger()
        self.sys_root = sys_root

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "gardien_network_target_up",
            "1 when the target answered an ICMP echo.",
            labels=["target", "scope"],
        )
        rtt = GaugeMetricFamily(
            "gardien_network_target_rtt_seconds",
            "Round trip of the last answered ICMP echo (0 when none).",
            labels=["target", "scope"],
        )
        link = GaugeMetricFamily(
            "gardien_network_link_up",
            "1 when the interface is operationally up and has carrier.",
            labels=["interface"],
        )
        deadline = Deadline(timeout)
        network = self.config.network
        if network is None:
            return [up, rtt, link]
        link.add_metric([network.interface], float(link_up(network.interface, self.sys_root)))
        budget = min(network.timeout, timeout)
        targets = [(t, "internal") for t in network.internal] + [
            (t, "external") for t in network.external
        ]
        results = self.pinger.round([t for t, _ in targets], budget, deadline)
        for (target, scope), result in zip(targets, results, strict=True):
            up.add_metric([str(target), scope], float(result.up))
            rtt.add_metric([str(target), scope], result.rtt)
        return [up, rtt, link]
