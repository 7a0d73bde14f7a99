"""The scrape runner: concurrency, the scrape budget, no pile-up, isolated collectors."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts
from exporter.runner import ProbeTarget, ScrapeRunner
from gardien.config import ClusterConfig, ProbeSpec, parse_config
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.http import HttpParams

PROBES = 5


@pytest.fixture
def rendezvous_target() -> Iterator[str]:
    """Answers 200 once PROBES requests are in flight at the same time (else 500 after 10 s)."""
    barrier = threading.Barrier(PROBES, timeout=10)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                barrier.wait()
                status = 200
            except threading.BrokenBarrierError:
                status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_probes_of_one_scrape_run_at_the_same_time(rendezvous_target: str) -> None:
    targets = [
        ProbeTarget("g", f"s{i}", ProbeSpec("http", "http", HttpParams(url=rendezvous_target)))
        for i in range(PROBES)
    ]
    runner = ScrapeRunner(targets, [])
    try:
        report = runner.scrape(budget=30)
    finally:
        runner.close()
    assert [o.result.ok for o in report.probes] == [True] * PROBES, report
    assert [o.result.values["status_code"] for o in report.probes] == [200] * PROBES


class StuckProbe(Probe[ProbeParams]):
    """A probe that ignores its timeout (the case the runner must survive) until released."""

    kind = "stuck"
    params_model = ProbeParams

    def __init__(self) -> None:
        super().__init__(ProbeParams())
        self.release = threading.Event()
        self.runs = 0

    def check(self, timeout: float) -> ProbeResult:
        self.runs += 1
        self.release.wait(30)
        return ProbeResult.success()


def test_a_probe_still_running_is_reported_timed_out_and_not_started_again() -> None:
    probe = StuckProbe()
    target = ProbeTarget("", "svc", ProbeSpec("stuck", "stuck", ProbeParams()))
    runner = ScrapeRunner([target], [], build=lambda _kind, _params: probe)
    try:
        first = runner.scrape(budget=0.2).probes[0]
        second = runner.scrape(budget=0.2).probes[0]
        assert first.timed_out and second.timed_out
        assert not first.result.ok and "no answer within the scrape budget" in first.result.reason
        assert probe.runs == 1
        probe.release.set()
        third = runner.scrape(budget=10).probes[0]
    finally:
        probe.release.set()
        runner.close()
    # the third scrape either joined the released run or started a new one; both pass
    assert third.result.ok and not third.timed_out
    assert probe.runs <= 2


class QuickProbe(Probe[ProbeParams]):
    kind = "quick"
    params_model = ProbeParams

    def __init__(self) -> None:
        super().__init__(ProbeParams())

    def check(self, timeout: float) -> ProbeResult:
        return ProbeResult.success()


def test_quick_probes_queued_behind_hung_ones_answer_in_the_same_scrape() -> None:
    """A scrape's jobs start on one thread and more are woken only when those are stuck
    (exporter/runner.py ``_dispatch``): four hung probes first in the queue must not keep the
    twelve quick ones after them from answering, in this scrape and the next."""
    stuck = [StuckProbe() for _ in range(4)]
    probes: list[Probe[ProbeParams]] = [*stuck, *(QuickProbe() for _ in range(12))]
    targets = [
        ProbeTarget("g", f"s{i}", ProbeSpec(p.kind, p.kind, ProbeParams()))
        for i, p in enumerate(probes)
    ]
    built = iter(probes)
    runner = ScrapeRunner(targets, [], build=lambda _kind, _params: next(built))
    try:
        first = runner.scrape(budget=1.0)
        second = runner.scrape(budget=1.0)
    finally:
        for probe in stuck:
            probe.release.set()
        runner.close()
    for report in (first, second):
        assert [o.timed_out for o in report.probes] == [True] * 4 + [False] * 12, report
        assert [o.result.ok for o in report.probes] == [False] * 4 + [True] * 12, report
    assert [probe.runs for probe in stuck] == [1] * 4


class SecondRunFails(Probe[ProbeParams]):
    kind = "second"
    params_model = ProbeParams

    def __init__(self, params: ProbeParams) -> None:
        super().__init__(params)
        self.runs = 0

    def check(self, timeout: float) -> ProbeResult:
        self.runs += 1
        return ProbeResult.success() if self.runs == 1 else ProbeResult.failure("second run")


def _on_a_clock(probe: Probe[ProbeParams], now: list[float]) -> ScrapeRunner:
    """A runner of ``probe`` alone whose clock reads ``now[0]``."""
    target = ProbeTarget("", "svc", ProbeSpec(probe.kind, probe.kind, probe.params))
    return ScrapeRunner([target], [], build=lambda _kind, _params: probe, clock=lambda: now[0])


def test_a_probe_with_every_reports_its_last_result_until_it_is_that_old() -> None:
    now = [1000.0]
    params = ProbeParams(every="30s")
    probe = SecondRunFails(params)
    runner = _on_a_clock(probe, now)
    try:
        first = runner.scrape(budget=5).probes[0]
        now[0] += 29.5
        cached = runner.scrape(budget=5).probes[0]
        now[0] += 0.5
        second = runner.scrape(budget=5).probes[0]
    finally:
        runner.close()
    assert (first.result.ok, first.age) == (True, 0.0)
    assert (cached.result.ok, cached.age) == (True, 29.5)  # the first run's result, 29.5 s old
    assert (second.result.ok, second.result.reason, second.age) == (False, "second run", 0.0)
    assert probe.runs == 2


def test_a_scrape_a_moment_early_still_runs_a_probe_with_every() -> None:
    """``every: 2s`` scraped each second: the scrape 1.995 s after the run's start (Prometheus'
    spacing jitters) runs it again, it does not wait for the next one (every 3 s)."""
    now = [1000.0]
    params = ProbeParams(every="2s")
    probe = SecondRunFails(params)
    runner = _on_a_clock(probe, now)
    ages = []
    try:
        for step in (0.0, 1.0, 0.995, 1.0):
            now[0] += step
            ages.append(runner.scrape(budget=5).probes[0].age)
    finally:
        runner.close()
    assert ages == [0.0, 1.0, 0.0, 1.0]
    assert probe.runs == 2


class SlowSecondRun(Probe[ProbeParams]):
    """Passes at once, then each later run waits for ``release`` and fails; records the timeout
    each run was given."""

    kind = "slow"
    params_model = ProbeParams

    def __init__(self, params: ProbeParams) -> None:
        super().__init__(params)
        self.release = threading.Event()
        self.timeouts: list[float] = []

    def check(self, timeout: float) -> ProbeResult:
        self.timeouts.append(timeout)
        if len(self.timeouts) == 1:
            return ProbeResult.success()
        self.release.wait(30)
        return ProbeResult.failure("slow second run")


def test_a_probe_with_every_is_bounded_by_its_timeout_and_slow_is_not_failed_before_it() -> None:
    """On a schedule of its own, a run slower than the scrape's budget is reported with the last
    finished result (and its age) until it is older than the probe's timeout; a probe without
    ``every`` is failed at the scrape's deadline (the test above)."""
    now = [1000.0]
    params = ProbeParams(every="1s", timeout="3s")
    probe = SlowSecondRun(params)
    runner = _on_a_clock(probe, now)
    try:
        first = runner.scrape(budget=0.2).probes[0]
        now[0] += 1.0
        slow = runner.scrape(budget=0.2).probes[0]  # the second run starts, and is slow
        now[0] += 1.5
        still = runner.scrape(budget=0.2).probes[0]
        now[0] += 1.5
        late = runner.scrape(budget=0.2).probes[0]  # 3 s: older than its timeout
        probe.release.set()
        now[0] += 0.25
        done = runner.scrape(budget=5).probes[0]
    finally:
        probe.release.set()
        runner.close()
    assert probe.timeouts == [3.0, 3.0]  # its own timeout, not the scrape's 0.2 s
    assert (first.result.ok, first.timed_out) == (True, False)
    assert (slow.result.ok, slow.timed_out, slow.age) == (True, False, 1.0)
    assert (still.result.ok, still.timed_out, still.age) == (True, False, 2.5)
    assert (late.result.ok, late.timed_out) == (False, True)
    assert "no answer within its timeout of 3s" in late.result.reason
    assert (done.result.ok, done.result.reason) == (False, "slow second run")


def test_the_first_run_of_a_probe_with_every_still_running_is_not_a_pass() -> None:
    """Nothing finished yet: no result to answer, so the scrape says it failed, timed out."""
    probe = StuckProbe()
    params = ProbeParams(every="1s")
    target = ProbeTarget("", "svc", ProbeSpec("stuck", "stuck", params))
    runner = ScrapeRunner([target], [], build=lambda _kind, _params: probe)
    try:
        first = runner.scrape(budget=0.2).probes[0]
    finally:
        probe.release.set()
        runner.close()
    assert (first.result.ok, first.timed_out) == (False, True)
    assert "no answer yet" in first.result.reason


class Failing(NodeCollector):
    name = "failing"

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        raise OSError("cannot read /proc/nothing")


class Hanging(NodeCollector):
    name = "hanging"
    release = threading.Event()

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        self.release.wait(30)
        return []


class Working(NodeCollector):
    name = "working"

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        yield GaugeMetricFamily("gardien_test_value", "A value.", value=7)


def _config() -> ClusterConfig:
    return parse_config("cluster: t\nnodes: {n1: {address: 127.0.0.1}}\n")


def test_a_failing_or_hanging_collector_does_not_spoil_the_others() -> None:
    config = _config()
    runner = ScrapeRunner([], [Failing(config), Hanging(config), Working(config)])
    try:
        report = runner.scrape(budget=0.3)
    finally:
        Hanging.release.set()
        runner.close()
    assert [(c.name, c.ok) for c in report.collectors] == [
        ("failing", False),
        ("hanging", False),
        ("working", True),
    ]
    (metric,) = report.collectors[2].metrics
    assert metric.name == "gardien_test_value"
