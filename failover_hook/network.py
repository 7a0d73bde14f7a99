"""This node's network verdict from its own checks: can it reach the configured targets?

A node that reaches none of its internal or none of its external targets reports ``failed``.  One
node alone cannot tell a local fault from a network-wide outage: the deciding hook compares the
verdicts of every node (``failed`` everywhere means an outage, moving would not help).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from gardien.config.model import NetworkConfig
from gardien.node.reachability import IPAddress, at_once

log = logging.getLogger(__name__)

Verdict = Literal["ok", "failed", "unknown"]
"""``unknown``: no targets configured, nothing to judge by."""

Echo = Callable[[IPAddress, float], bool]
"""One ICMP echo to an address within a timeout: answered or not (the daemon passes in
:meth:`gardien.node.reachability.Pinger.echo`, the exporter's echo too)."""


class NetworkCheck:
    """Pings the targets concurrently; results are reused for ``max_age`` seconds.

    The daemon keeps the result fresh from a thread of its own (:meth:`watch`), so a status
    call, which peers make while deciding, answers at once: on an isolated node a round of pings
    lasts the whole echo timeout.  Without a watcher (or when it fell behind) a caller runs the
    round itself, and concurrent callers during a burst of webhooks share it.
    """

    def __init__(
        self,
        network: NetworkConfig | None,
        echo: Echo,
        max_age: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._network = network
        self._echo = echo
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._result: tuple[Verdict, dict[str, bool]] = ("unknown", {})

    def check(self) -> tuple[Verdict, dict[str, bool]]:
        """The verdict and each target's answer (``{address: answered}``)."""
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

    def _run(self) -> tuple[Verdict, dict[str, bool]]:
        network = self._network
        if network is None or not (network.internal or network.external):
            return "unknown", {}
        scopes = [s for s in (network.internal, network.external) if s]
        targets = [a for scope in scopes for a in scope]
        up = at_once(self._echo, targets, network.timeout)  # each echo bounded by its timeout
        answers = {str(a): bool(ok) for a, ok in zip(targets, up, strict=True)}
        verdict: Verdict = (
            "ok" if all(any(answers[str(a)] for a in s) for s in scopes) else "failed"
        )
        if verdict == "failed":
            log.warning(
                "network check failed: %s",
                ", ".join(f"{a} {'up' if up else 'down'}" for a, up in answers.items()),
            )
        return verdict, answers
