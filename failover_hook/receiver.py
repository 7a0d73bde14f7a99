"""The Alertmanager receiver: deliveries deduplicated, decisions run in the background, logged.

Deliveries are idempotent on (group, fingerprint, startsAt): retries and the duplicate deliveries
of an Alertmanager cluster cause one move.  The webhook answers at once; one executor runs every
decision off the request thread.

A decision that asks to be taken again (``details.recheck``: the target skipped a move because the
holder restarts the group in place, failover_hook/decide.py ``gate_restart``) is decided again by
the receiver itself, after ``recheck`` seconds doubling up to 1 s, for at most
``recheck_within`` seconds from the first skip: the holder's restart ends within that (its stops
and starts are bounded), and when it fails or its attempts are used up the group must move at
once, not when Alertmanager sends the alert again (its ``repeat_interval``, hours).  One chain of
re-decisions per alert; a re-decision that says the same as the one before is logged, not
recorded again.
"""

from __future__ import annotations

import contextlib
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
_RECHECK_LONGEST = 1.0
"""The longest pause between two re-decisions of a skipped alert."""

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
        self._rechecks: dict[tuple[str, str, str], _Recheck] = {}
        self._stopped = False

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
            self._submit(alert, received)
            answers.append(
                Outcome(
                    Status.IN_PROGRESS,
                    f"accepted: {alert.alertname} {alert.fingerprint}",
                    alert.labels.get("group"),
                )
            )
        return answers

    def _submit(self, alert: Alert, received: float) -> None:
        future = self._executor.submit(self._handle, alert, not self.dry_run, received)
        future.add_done_callback(lambda f, a=alert: self._handled(a, f))  # type: ignore[misc]

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
        repeated = self._recheck(alert, outcomes)
        for outcome in outcomes:
            if repeated:
                log.debug("%s", outcome.message)
            else:
                self.record(outcome, alert)

    def _recheck(self, alert: Alert, outcomes: list[Outcome]) -> bool:
        """Schedule the re-decision ``outcomes`` ask for (see the module), or end the alert's
        chain; whether they say what the alert's last re-decision said."""
        asked = [o for o in outcomes if "recheck" in o.details]
        said = [o.message for o in outcomes]
        now = self._monotonic()
        with self._lock:
            chain = self._rechecks.get(alert.key)
            repeated = chain is not None and chain.said == said
            if not asked or self._stopped:
                self._rechecks.pop(alert.key, None)
                return repeated
            if chain is None:
                within = max(float(o.details["recheck_within"]) for o in asked)
                chain = _Recheck(until=now + within, pause=float(asked[0].details["recheck"]))
                self._rechecks[alert.key] = chain
            elif chain.timer is not None and chain.timer.is_alive():
                return repeated  # a delivery of the same alert: its chain already runs
            else:
                chain.pause = min(chain.pause * 2, _RECHECK_LONGEST)
            chain.said = said
            if now + chain.pause > chain.until:
                del self._rechecks[alert.key]
                return repeated
            chain.timer = threading.Timer(chain.pause, self._redecide, (alert,))
            chain.timer.daemon = True
            chain.timer.start()
        return repeated

    def _redecide(self, alert: Alert) -> None:
        with self._lock:
            if self._stopped or alert.key in self._seen:  # stopping, or a delivery is deciding
                return
            self._seen[alert.key] = False
        with contextlib.suppress(RuntimeError):  # the executor shut down since: nothing to decide
            self._submit(alert, self._monotonic())

    def shutdown(self) -> None:
        with self._lock:
            self._stopped = True
            for chain in self._rechecks.values():
                if chain.timer is not None:
                    chain.timer.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)


class _Recheck:
    """The re-decisions of one alert: until when, the pause before the next, the timer, and what
    the last decision said."""

    def __init__(self, until: float, pause: float) -> None:
        self.until = until
        self.pause = pause
        self.timer: threading.Timer | None = None
        self.said: list[str] = []
