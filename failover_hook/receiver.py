"""The Alertmanager receiver: deliveries deduplicated, decisions run in the background, logged.

Deliveries are idempotent on (group, fingerprint, startsAt): retries and the duplicate deliveries
of an Alertmanager cluster cause one move.  The webhook answers at once; one executor runs every
decision off the request thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from failover_hook.metrics import HookMetrics
from failover_hook.outcome import Outcome, Status
from failover_hook.webhook import Alert, Payload

log = logging.getLogger(__name__)

_SEEN_LIMIT = 10_000
"""Delivery keys remembered; Alertmanager re-sends an alert for hours, not for 10,000 failures."""
_DECISIONS_KEPT = 500

Handle = Callable[[Alert, bool, float | None], list[Outcome]]
"""Every decision one alert leads to (:meth:`failover_hook.dispatch.Dispatcher.handle`):
the alert, whether to act, when it arrived (monotonic clock)."""


def _action(outcome: Outcome) -> str:
    """The ``action`` label of ``gardien_hook_decisions_total`` for an outcome."""
    if outcome.details.get("duplicate"):
        return "duplicate"
    if outcome.details.get("dry_run"):
        return "dry_run"
    return {Status.DONE: "moved"}.get(outcome.status, str(outcome.status))


class Receiver:
    """Owns the deliveries: the keys of the alerts seen (a duplicate is answered, not decided
    again; one a gate said no to is forgotten, so that a later delivery is decided again), the
    executor that decides in the background, and the log of the last decisions."""

    def __init__(
        self,
        handle: Handle,
        metrics: HookMetrics,
        *,
        dry_run: bool,
        workers: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handle = handle
        self.metrics = metrics
        self.dry_run = dry_run
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        self._decisions: deque[dict[str, Any]] = deque(maxlen=_DECISIONS_KEPT)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decide")

    def decisions(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._decisions)

    def record(self, outcome: Outcome, alert: Alert | None = None) -> Outcome:
        level = logging.DEBUG if outcome.status == Status.IGNORED else logging.INFO
        log.log(level, "%s", outcome.message)
        self.metrics.decisions.labels(_action(outcome)).inc()
        entry = {"time": self._clock(), **outcome.to_json()}
        if alert is not None:
            entry["alert"] = {
                "labels": alert.labels,
                "fingerprint": alert.fingerprint,
                "startsAt": alert.starts_at.isoformat(),
            }
        with self._lock:
            self._decisions.append(entry)
        return outcome

    def decide_now(self, payload: Payload, execute: bool = False) -> list[Outcome]:
        """Synchronous decision of a whole payload (``gardien replay``); nothing is deduplicated."""
        return [
            self.record(o, a)
            for a in payload.alerts
            for o in self._handle(a, execute and not self.dry_run, None)
        ]

    def receive(self, payload: Payload) -> list[Outcome]:
        """Accept a notification: answers at once, decisions and moves run in the executor."""
        answers = []
        received = self._monotonic()
        for alert in payload.alerts:
            if not alert.is_failover:
                answers.append(self.record(self._handle(alert, False, received)[0], alert))
                continue
            with self._lock:
                duplicate = alert.key in self._seen
                if not duplicate:
                    self._seen[alert.key] = False
                    while len(self._seen) > _SEEN_LIMIT:
                        self._seen.popitem(last=False)
            if duplicate:
                answers.append(
                    self.record(
                        Outcome(
                            Status.IGNORED,
                            f"duplicate: {alert.alertname} {alert.fingerprint} already handled",
                            alert.labels.get("group"),
                            {"duplicate": True},
                        ),
                        alert,
                    )
                )
                continue
            future = self._executor.submit(self._handle, alert, not self.dry_run, received)
            future.add_done_callback(lambda f, a=alert: self._handled(a, f))  # type: ignore[misc]
            answers.append(
                Outcome(
                    Status.IN_PROGRESS,
                    f"accepted: {alert.alertname} {alert.fingerprint}",
                    alert.labels.get("group"),
                )
            )
        return answers

    def _handled(self, alert: Alert, future: Future[list[Outcome]]) -> None:
        try:
            outcomes = future.result()
        except Exception as exc:  # a bug must not lose the alert: it is decided again on retry
            log.exception("deciding on %s failed", alert.alertname)
            outcomes = [
                Outcome(
                    Status.FAILED,
                    f"failed: {type(exc).__name__}: {exc}",
                    alert.labels.get("group"),
                    {"error": True},
                )
            ]
        acted = any(
            o.status in (Status.DONE, Status.FAILED) and not o.details.get("error")
            for o in outcomes
        )
        with self._lock:
            if not acted:
                # a gate said no: a later delivery of the same alert is decided again
                self._seen.pop(alert.key, None)
        for outcome in outcomes:
            self.record(outcome, alert)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
