"""Run every probe and node collector of one scrape, side by side as they need, within its budget.

Prometheus gives up on a scrape after its scrape timeout, and a scrape that times out loses every
sample, so the runner always answers within the budget: what is still running at the deadline is
reported as failed and timed out, and its thread is left to finish on its own (a Python thread
cannot be killed; probes bound themselves with their own timeout).  A probe whose previous run is
still going is not started a second time: it is reported as timed out again, so a blackholed
target never piles up threads.

A probe with ``every`` runs on a schedule of its own, not the scrapes': its run is bounded by the
probe's own ``timeout``, not by the scrape's budget, and a scrape that finds it still running
answers the last finished result until the run is older than that timeout (then failed, timed
out).  At sub-second scrapes the budget is a fraction of a second: a share listing or a login that
takes 0.2 s on a loaded node is slow, not failed (docs/alerting.md "How fast, and what it costs").
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from typing import cast

from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts
from gardien.config import ClusterConfig, ProbeSpec
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import build_probe

log = logging.getLogger(__name__)

Clock = Callable[[], float]
_EARLY = 0.1
"""Seconds before ``every`` that a scrape may still start a probe's new run (:meth:`_Job.due`)."""
SPREAD_AFTER = 0.002
"""Seconds a scrape's jobs may wait for a thread before more threads are woken for them."""
ProbeBuilder = Callable[[str, ProbeParams], Probe[ProbeParams]]


@dataclass(frozen=True)
class ProbeTarget:
    """One configured probe and where it belongs (``group`` is "" for node services)."""

    group: str
    service: str
    spec: ProbeSpec


def probe_targets(config: ClusterConfig) -> tuple[ProbeTarget, ...]:
    """Every configured probe: node services first, then each group's services in order."""
    targets = [
        ProbeTarget("", service.name, spec)
        for service in config.node_services
        for spec in service.all_probes
    ]
    targets += [
        ProbeTarget(group_name, service.name, spec)
        for group_name, group in config.groups.items()
        for service in group.services
        for spec in service.all_probes
    ]
    return tuple(targets)


@dataclass(frozen=True)
class ProbeOutcome:
    target: ProbeTarget
    result: ProbeResult
    timed_out: bool
    age: float = 0.0
    """Seconds since the run whose result this is started (grows between runs of a probe with
    ``every``, and while a run hangs)."""


@dataclass(frozen=True)
class CollectorOutcome:
    name: str
    ok: bool
    duration: float
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class ScrapeReport:
    """Everything one scrape found, in configuration order."""

    probes: tuple[ProbeOutcome, ...]
    probes_duration: float
    collectors: tuple[CollectorOutcome, ...]


class _DaemonThreadPool:
    """A thread pool whose threads are daemons, woken as the work needs them.

    ``ThreadPoolExecutor`` joins its threads when the interpreter exits, so one probe hung on a
    blackholed target would hold a stopping exporter for the probe's whole timeout.  And it wakes
    a thread per job: a scrape's twenty jobs, most of them a fraction of a millisecond of work,
    then fight over the GIL on twenty threads, each system call of one handing it to another (a
    third of a whole scrape's CPU, docs/benchmarks.md "Idle cost on the lab by part").  Here
    :meth:`submit` only queues, and whoever waits on a batch wakes threads as it needs them
    (:meth:`ScrapeRunner._dispatch`: one, then more while queued jobs find none), so a job stuck
    on a hung target delays the others by a few milliseconds at most, and a batch whose every job
    hangs still has each on its own thread within a few ticks.  Threads are started when none is
    idle, up to ``max_workers``, and kept.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._max = max_workers
        self._name = name
        self._queued: collections.deque[tuple[Future[object], Callable[[], object]]] = (
            collections.deque()
        )
        self._lock = threading.Condition()
        self._threads = 0
        self._idle = 0
        self._closing = False

    def submit(self, fn: Callable[[], object]) -> Future[object]:
        """Queue ``fn``; nothing runs it before :meth:`wake` (or a thread still running earlier
        work takes it)."""
        future: Future[object] = Future()
        with self._lock:
            self._queued.append((future, fn))
        return future

    def waiting(self) -> int:
        """Jobs queued that no thread has taken yet."""
        return len(self._queued)

    def wake(self, count: int) -> None:
        """Wake ``count`` idle threads (or start them, up to ``max_workers``)."""
        with self._lock:
            woken = min(count, self._idle)
            self._lock.notify(woken)
            for _ in range(min(count - woken, self._max - self._threads)):
                thread = threading.Thread(
                    target=self._worker, name=f"{self._name}-{self._threads}", daemon=True
                )
                thread.start()
                self._threads += 1

    def _take(self) -> tuple[Future[object], Callable[[], object]] | None:
        with self._lock:
            while not self._queued:
                if self._closing:
                    return None
                self._idle += 1
                self._lock.wait()
                self._idle -= 1
            return self._queued.popleft()

    def _worker(self) -> None:
        while (item := self._take()) is not None:
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)
            del item, future, fn

    def shutdown(self) -> None:
        """Let every thread end once the work queued is done."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()


class _Job:
    """One probe or collector with its in-flight run (at most one at a time).

    ``every``: a finished run is reused until it is that old (0: a new run on every scrape).
    """

    def __init__(self, name: str, every: float = 0.0) -> None:
        self.name = name
        self.every = every
        self.future: Future[object] | None = None
        self.started = 0.0
        self.finished: tuple[Future[object], float] | None = None
        """The last finished run and when it started, kept while a newer one runs."""

    def due(self, now: float) -> bool:
        """Whether the last finished run is old enough for a new one.  A scrape may come a few
        milliseconds before the one that makes the run exactly ``every`` old (Prometheus'
        spacing jitters): up to a tenth of ``every`` (at most 0.1 s) early still counts, or an
        ``every: 2s`` probe scraped each second would often run every 3 s."""
        return now - self.started >= self.every - min(_EARLY, self.every / 10)


class ScrapeRunner:
    """Owns the probes and collectors of one config and the thread pool that runs them.

    The pool has up to one thread per probe and collector, woken as a scrape needs them
    (:meth:`_dispatch`), and is reused across scrapes.  A job never
    has two runs in flight: a scrape that finds a job still running (a hung target, or a
    concurrent scrape from a second Prometheus) waits for that run instead of starting another,
    so a hung job holds at most one thread.  Build a new runner for a new config and
    :meth:`close` the old one; a scrape that took the old one before the swap holds it
    (:meth:`hold`), so its pool stays up until that scrape is done.
    """

    def __init__(
        self,
        targets: Sequence[ProbeTarget],
        collectors: Sequence[NodeCollector],
        build: ProbeBuilder = build_probe,
        clock: Clock = time.monotonic,
    ) -> None:
        self._probes = [(t, build(t.spec.kind, t.spec.params)) for t in targets]
        self._collectors = list(collectors)
        self._clock = clock
        self._probe_jobs = [
            _Job(f"{t.group}/{t.service}/{t.spec.name}", t.spec.params.every or 0.0)
            for t in targets
        ]
        self._collector_jobs = [_Job(c.name) for c in collectors]
        self._lock = threading.Lock()
        self._pool = _DaemonThreadPool(max(1, len(self._probes) + len(self._collectors)), "scrape")
        self._users = 0
        self._closing = False

    def hold(self) -> None:
        """Keep the pool alive for one more user (a scrape about to run); see :meth:`close`."""
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._closing and self._users == 0:
                self._pool.shutdown()

    def close(self) -> None:
        """Release the pool once its holders are done; running probes finish on their own."""
        with self._lock:
            self._closing = True
            if self._users == 0:
                self._pool.shutdown()

    def _run(self, job: _Job, fn: Callable[[], object], now: float) -> Future[object]:
        """The run of ``job`` in flight, its last one while younger than ``job.every``, or a
        new one of ``fn``."""
        with self._lock:
            if job.future is None or (job.future.done() and job.due(now)):
                if job.future is not None:
                    job.finished = (job.future, job.started)
                job.started = now
                job.future = self._pool.submit(fn)
            return job.future

    def scrape(self, budget: float) -> ScrapeReport:
        """Run everything at once; return within ``budget`` seconds whatever happens."""
        started = self._clock()
        deadline = started + budget
        probe_runs = [
            self._run(job, partial(probe.run, None if job.every else budget), started)
            for job, (_target, probe) in zip(self._probe_jobs, self._probes, strict=True)
        ]
        facts = ScrapeFacts()  # what several collectors read, read once for this scrape
        collector_runs = [
            self._run(job, partial(self._collect, collector, budget, facts), started)
            for job, collector in zip(self._collector_jobs, self._collectors, strict=True)
        ]
        self._dispatch([*probe_runs, *collector_runs], deadline, budget)
        not_done = wait(probe_runs, timeout=max(0.0, deadline - self._clock())).not_done
        probes_duration = self._clock() - started
        wait(collector_runs, timeout=max(0.0, deadline - self._clock()))
        if not_done:
            log.warning("%d probe(s) still running at the scrape deadline", len(not_done))
        probes = tuple(
            self._probe_outcome(target, probe, job, run, budget)
            for job, run, (target, probe) in zip(
                self._probe_jobs, probe_runs, self._probes, strict=True
            )
        )
        collectors = tuple(
            self._collector_outcome(job, run, budget)
            for job, run in zip(self._collector_jobs, collector_runs, strict=True)
        )
        return ScrapeReport(probes, probes_duration, collectors)

    def _dispatch(self, runs: list[Future[object]], deadline: float, budget: float) -> None:
        """Wake the pool's threads as this scrape's jobs need them (:class:`_DaemonThreadPool`):
        one, then twice as many at each :data:`SPREAD_AFTER` in which no queued job found a
        thread (those awake are all waiting on their targets), and every one still queued once
        a quarter of the budget is gone, so that no job starts late enough to miss the deadline
        on a node too loaded to run them one after the other."""
        pool = self._pool
        pool.wake(1)
        awake, waiting = 1, pool.waiting()
        hurry = self._clock() + budget / 4
        while waiting:
            left = deadline - self._clock()
            if left <= 0 or not wait(runs, timeout=min(SPREAD_AFTER, left)).not_done:
                return
            still = pool.waiting()
            if still and self._clock() >= hurry:
                pool.wake(still)
                return
            if still and still >= waiting:
                pool.wake(min(still, awake))
                awake *= 2
            waiting = still

    def _probe_outcome(
        self,
        target: ProbeTarget,
        probe: Probe[ProbeParams],
        job: _Job,
        run: Future[object],
        budget: float,
    ) -> ProbeOutcome:
        now = self._clock()
        age = now - job.started
        timeout = probe.params.timeout
        own_budget = timeout if job.every else min(budget, timeout)
        if not run.done():
            finished = job.finished
            if not job.every:
                reason = f"no answer within the scrape budget of {budget:.2f}s"
                reason += f" (running for {age:.1f}s)"
            elif age >= timeout:
                reason = f"no answer within its timeout of {timeout:g}s (running for {age:.1f}s)"
            elif finished is None:
                reason = f"no answer yet: its first run has been running for {age:.1f}s"
            else:  # on a schedule of its own: slow is not failed before its timeout
                last, last_started = finished
                return self._finished_outcome(target, job, last, own_budget, now - last_started)
            return ProbeOutcome(
                target, ProbeResult(False, reason, duration=age), timed_out=True, age=age
            )
        return self._finished_outcome(target, job, run, own_budget, age)

    @staticmethod
    def _finished_outcome(
        target: ProbeTarget, job: _Job, run: Future[object], own_budget: float, age: float
    ) -> ProbeOutcome:
        """The outcome of a finished run: a probe bounded by its own budget (``own_budget``)
        fails after spending all of it, and that failure is a time-out."""
        result = cast(ProbeResult, run.result())
        timed_out = not result.ok and result.duration >= own_budget * 0.99
        if not result.ok:
            log.debug("probe %s failed: %s", job.name, result.reason)
        return ProbeOutcome(target, result, timed_out, age)

    def _collect(
        self, collector: NodeCollector, budget: float, facts: ScrapeFacts
    ) -> tuple[tuple[Metric, ...], float]:
        started = self._clock()
        metrics = tuple(collector.collect(budget, facts))
        return metrics, self._clock() - started

    def _collector_outcome(self, job: _Job, run: Future[object], budget: float) -> CollectorOutcome:
        duration = self._clock() - job.started
        if not run.done():
            log.warning(
                "collector %s did not finish within %.2fs (running for %.1fs)",
                job.name,
                budget,
                duration,
            )
            return CollectorOutcome(job.name, False, duration, ())
        error = run.exception()
        if error is not None:
            log.error("collector %s failed: %s: %s", job.name, type(error).__name__, error)
            return CollectorOutcome(job.name, False, duration, ())
        metrics, duration = cast(tuple[tuple[Metric, ...], float], run.result())
        return CollectorOutcome(job.name, True, duration, metrics)
