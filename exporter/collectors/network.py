"""Network collector: ICMP echo to the internal and external targets, and the link of the interface.

A node that cannot reach its targets while its peer can is isolated; when neither can, the outage
is network-wide and moving groups would not help.  Each target gets one echo request through the
``ping`` program of iputils, all targets at once (one thread each), every ``ping`` under a hard
timeout that kills its process group (:class:`~gardien.command_runner.CommandRunner`).

Why ``ping`` rather than ICMP sockets in-process: it needs no privilege of the exporter (ping
holds ``cap_net_raw`` itself, or uses the kernel's ping sockets), no new dependency, and a child
process can always be killed at the deadline; one short-lived process per target per scrape is
cheap at the handful of targets a cluster pings.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector
from gardien.command_runner import CommandRunner
from gardien.config import ClusterConfig

log = logging.getLogger(__name__)

_RTT = re.compile(r"time[=<]([\d.]+) ms")
_KILL_MARGIN = 0.5
"""ping is killed this long after its own ``-W`` timeout when it has not exited by itself."""


@dataclass(frozen=True)
class EchoResult:
    up: bool
    rtt: float
    """Round trip in seconds (0 when no answer)."""


def link_up(interface: str, sys_root: Path = Path("/sys")) -> bool:
    """Operational state up (or ``unknown``, for drivers that do not report it) with carrier."""
    base = sys_root / "class" / "net" / interface
    try:
        operstate = (base / "operstate").read_text().strip()
        carrier = (base / "carrier").read_text().strip()
    except OSError:  # no such interface, or carrier unreadable because it is down (EINVAL)
        return False
    return operstate in ("up", "unknown") and carrier == "1"


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
        self.runner = runner or CommandRunner()
        self.sys_root = sys_root
        self.ping = ping

    def echo(
        self, target: ipaddress.IPv4Address | ipaddress.IPv6Address, timeout: float
    ) -> EchoResult:
        """One ICMP echo to ``target``, waiting for the answer at most ``timeout`` seconds."""
        wait = max(timeout - _KILL_MARGIN, 0.1)
        argv = [self.ping, "-n", "-c", "1", "-W", f"{wait:.3f}", str(target)]
        result = self.runner.run(argv, timeout)
        if result.returncode != 0:
            if result.error:
                log.warning("%s", result.error)
            return EchoResult(False, 0.0)
        match = _RTT.search(result.stdout)
        if match is None:
            log.warning("no round trip time in ping output: %r", result.stdout)
            return EchoResult(False, 0.0)
        return EchoResult(True, float(match.group(1)) / 1000)

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
        budget = min(network.timeout + _KILL_MARGIN, timeout)
        targets = [(t, "internal") for t in network.internal] + [
            (t, "external") for t in network.external
        ]
        results: dict[int, EchoResult] = {}

        def run(index: int) -> None:
            try:
                results[index] = self.echo(targets[index][0], budget)
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
            result = results.get(i, EchoResult(False, 0.0))
            up.add_metric([str(target), scope], float(result.up))
            rtt.add_metric([str(target), scope], result.rtt)
        return [up, rtt, link]
