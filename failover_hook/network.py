"""This node's network verdict from its own checks: can it reach the configured targets?

A node that reaches none of its internal or none of its external targets reports ``failed``.  One
node alone cannot tell a local fault from a network-wide outage: the deciding hook compares the
verdicts of every node (``failed`` everywhere means an outage, moving would not help).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from gardien.config.model import NetworkConfig

log = logging.getLogger(__name__)

Verdict = Literal["ok", "failed", "unknown"]
"""``unknown``: no targets configured, nothing to judge by."""

Pinger = Callable[[str, float], bool]


def ping(address: str, timeout: float) -> bool:
    """One ICMP echo with iputils ping (argv, never a shell); True when it was answered."""
    try:
        done = subprocess.run(
            ["ping", "-n", "-q", "-c", "1", "-W", f"{timeout:g}", address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout + 2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class NetworkCheck:
    """Pings the targets concurrently; results are reused for ``max_age`` seconds.

    Concurrent callers during a burst of webhooks share one round of pings instead of each
    starting their own.
    """

    def __init__(
        self,
        network: NetworkConfig | None,
        pinger: Pinger = ping,
        max_age: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._network = network
        self._pinger = pinger
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

    def verdict(self) -> Verdict:
        return self.check()[0]

    def _run(self) -> tuple[Verdict, dict[str, bool]]:
        network = self._network
        if network is None or not (network.internal or network.external):
            return "unknown", {}
        scopes = [tuple(str(a) for a in s) for s in (network.internal, network.external) if s]
        targets = [a for scope in scopes for a in scope]
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            answers = dict(
                zip(
                    targets,
                    pool.map(lambda a: self._pinger(a, network.timeout), targets),
                    strict=True,
                )
            )
        verdict: Verdict = "ok" if all(any(answers[a] for a in s) for s in scopes) else "failed"
        if verdict == "failed":
            log.warning(
                "network check failed: %s",
                ", ".join(f"{a} {'up' if up else 'down'}" for a, up in answers.items()),
            )
        return verdict, answers
