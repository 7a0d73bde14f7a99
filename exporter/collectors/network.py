"""Network collector: ICMP echo to the internal and external targets, and the link of the interface.

A node that cannot reach its targets while its peer can is isolated; when neither can, the outage
is network-wide and moving groups would not help.  Each target gets one echo request
(:class:`gardien.node.reachability.Pinger`, the same the hook's network verdict uses), all targets
at once (one thread each), every ``ping`` under a hard timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector
from gardien.command_runner import CommandRunner
from gardien.config import ClusterConfig
from gardien.node.reachability import KILL_MARGIN, NO_ANSWER, EchoResult, Pinger, link_up

log = logging.getLogger(__name__)


class NetworkCollector(NodeCollector):
    name = "network"

    def __init__(
        self,
        config: ClusterConfig,
        *,
        runner: CommandRunner | None = None,
        sys_root: Path = Path("/sys"),
        ping: str = "ping",
    ) -> None:
        super().__init__(config)
        self.pinger = Pinger(runner, ping)
        self.sys_root = sys_root

    def collect(self, timeout: float) -> Iterable[Metric]:
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
        deadline = time.monotonic() + timeout
        network = self.config.network
        if network is None:
            return [up, rtt, link]
        link.add_metric([network.interface], float(link_up(network.interface, self.sys_root)))
        budget = min(network.timeout + KILL_MARGIN, timeout)
        targets = [(t, "internal") for t in network.internal] + [
            (t, "external") for t in network.external
        ]
        results: dict[int, EchoResult] = {}

        def run(index: int) -> None:
            try:
                results[index] = self.pinger.echo(targets[index][0], budget)
            except Exception:  # a thread must not die silently: the target is reported down
                log.exception("echo to %s failed", targets[index][0])

        threads = [
            threading.Thread(target=run, args=(i,), name=f"ping {t}", daemon=True)
            for i, (t, _) in enumerate(targets)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            # the runner kills ping at ``budget``; a result still missing at the deadline is down
            thread.join(max(deadline - time.monotonic(), 0.0))
        for i, (target, scope) in enumerate(targets):
            result = results.get(i, NO_ANSWER)
            up.add_metric([str(target), scope], float(result.up))
            rtt.add_metric([str(target), scope], result.rtt)
        return [up, rtt, link]
