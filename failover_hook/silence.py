"""Before fencing a node that did not answer: is it gone, or only busy?

A hook that did not answer its status within ``hook.request_timeout`` may be frozen or off, or
only slow to serve (a flood of connections on its port, a stalled request).  Fencing powers a node
off, so the mover fences a *silent* node (one that did not answer, as opposed to one that answered
and failed to release) only once the node is confirmed gone by checks a connection flood can
neither fake nor block:

1. its status asked again, :data:`RETRIES` times, each on a fresh connection with a short budget
   of its own (a flood that filled the server's queue earlier does not hold a new connection, and
   the serving front end keeps room for the peers' calls);
2. where ``hook.prometheus_url`` is set, whether Prometheus scraped the node's exporter or hook
   successfully since it went silent: Prometheus uses its own connections, on two ports.

Any answer means "busy, not gone": the move is refused without fencing (Alertmanager's repeat or
the operator brings the decision back, when the node answers).  Prometheus unreachable is no
evidence either way; the retries decide then.  The result says what was checked, for the
outcome and the journal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from failover_hook.prometheus import PrometheusReader

log = logging.getLogger(__name__)

RETRIES = 3
"""Fresh status calls before a silent node counts as gone."""
RETRY_BUDGET = 2.0
"""Connect and read timeout of each retry (at most ``hook.request_timeout``): a healthy hook
answers its status without the resource checks in milliseconds, a loaded one in well under this."""
RETRY_PAUSE = 0.5
"""Between two retries, so that the three do not land in the same stall."""

AskStatus = Callable[[str, float], bool]
"""``ask(node, timeout)``: True when the node's hook answered its status on a fresh connection."""


@dataclass(frozen=True)
class Silence:
    """The answer of :meth:`SilenceCheck.confirm`: decided on by ``gone``, told by ``checked``."""

    node: str
    gone: bool
    checked: tuple[str, ...]
    """What was checked, for people: "status unanswered 3 times on fresh connections in 6.1 s"."""

    def describe(self) -> str:
        return "; ".join(self.checked)


class SilenceCheck:
    """Confirms that a node which did not answer is gone before the mover fences it."""

    def __init__(
        self,
        cluster: str,
        ask: AskStatus,
        request_timeout: float,
        prometheus: PrometheusReader | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self.ask = ask
        self.budget = min(RETRY_BUDGET, request_timeout)
        self.prometheus = prometheus
        self._clock = clock

    def confirm(self, node: str, silent_since: float) -> Silence:
        """Is ``node``, silent since ``silent_since`` (Unix time), gone?"""
        started = time.monotonic()
        for attempt in range(1, RETRIES + 1):
            if self.ask(node, self.budget):
                took = time.monotonic() - started
                return Silence(
                    node,
                    False,
                    (
                        f"{node} answered its status on a fresh connection "
                        f"(attempt {attempt}, {took:.1f} s): busy, not gone",
                    ),
                )
            if attempt < RETRIES:
                time.sleep(RETRY_PAUSE)
        took = time.monotonic() - started
        checked = [
            f"status unanswered {RETRIES} times on fresh connections "
            f"({self.budget:g} s each, {took:.1f} s)"
        ]
        if self.prometheus is None:
            return Silence(node, True, (*checked, "no Prometheus configured to ask"))
        scrapes = self.prometheus.node_scraped(self.cluster, node, self._clock() - silent_since)
        checked.append(scrapes.message)
        if scrapes.answered:
            return Silence(node, False, (*checked, "busy, not gone"))
        return Silence(node, True, tuple(checked))
