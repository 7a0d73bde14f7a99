"""This node's network verdict from its own checks: its link, and which targets answer.

The verdict is :func:`gardien.node.verdict.judge`'s (the one definition, which the rules mirror):
``isolated`` when the link is down or no target answers, ``degraded-external`` /
``degraded-internal`` when one scope answers and the other does not, else ``ok``.  One node alone
cannot tell a local fault from a network-wide outage: the deciding hook compares the verdicts of
every node (isolated everywhere means an outage, moving would not help).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gardien.config.model import NetworkConfig
from gardien.node.reachability import EchoResult, IPAddress, link_up
from gardien.node.verdict import NetworkState, NetworkVerdict, judge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkReport:
    """One round of the check: the verdict and each target's answer (``{address: answered}``)."""

    verdict: NetworkVerdict
    targets: dict[str, bool] = field(default_factory=dict)
    link_up: bool | None = None
    """None when no network is configured (no interface to read)."""


Echoes = Callable[[Sequence[IPAddress], float], Sequence[EchoResult]]
"""One ICMP echo to each address, each answer awaited at most a timeout, in address order (the
daemon passes in :meth:`gardien.node.reachability.Pinger.round`, the exporter's round too)."""


class NetworkCheck:
    """Pings the targets in one round; results are reused for ``max_age`` seconds.

    The daemon keeps the result fresh from a thread of its own (:meth:`watch`), so a status
    call, which peers make while deciding, answers at once: on an isolated node a round of pings
    lasts the whole echo timeout.  Without a watcher (or when it fell behind) a caller runs the
    round itself, and concurrent callers during a burst of webhooks share it.
    """

    def __init__(
        self,
        network: NetworkConfig | None,
        echoes: Echoes,
        max_age: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        link: Callable[[str], bool] | None = None,
    ) -> None:
        """``link(interface)``: whether the interface is up (default: its state in /sys)."""
        self._network = network
        self._echoes = echoes
        self._link = link or link_up
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._result = NetworkReport(judge(False, {}, {}))

    def check(self) -> NetworkReport:
        """The verdict, the link and each target's answer, at most ``max_age`` seconds old."""
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._max_age:
                self._result = self._run()
                self._checked_at = self._clock()
            return self._result

    def refresh(self) -> None:
        """One round of pings now; callers meanwhile still get the previous result."""
        result = self._run()
        with self._lock:
            self._result = result
            self._checked_at = self._clock()

    def watch(self, stop: threading.Event, every: float) -> None:
        """Refresh every ``every`` seconds until ``stop`` is set (the daemon's thread)."""
        while not stop.is_set():
            try:
                self.refresh()
            except Exception:  # a bug must not end the watch: callers would block on pings
                log.exception("network check failed")
            stop.wait(every)

    def _run(self) -> NetworkReport:
        network = self._network
        if network is None or not (network.internal or network.external):
            return NetworkReport(judge(False, {}, {}))  # unknown: nothing to judge by
        targets = [*network.internal, *network.external]
        link = self._link(network.interface)
        results = self._echoes(targets, network.timeout)  # the round ends at the timeout
        answers = {str(a): r.up for a, r in zip(targets, results, strict=True)}
        verdict = judge(
            link,
            {str(a): answers[str(a)] for a in network.internal},
            {str(a): answers[str(a)] for a in network.external},
        )
        if verdict.state is not NetworkState.OK:
            log.warning(
                "network %s (%s): %s",
                verdict.state,
                verdict.reason,
                ", ".join(f"{a} {'up' if up else 'down'}" for a, up in answers.items()),
            )
        return NetworkReport(verdict, answers, link)
