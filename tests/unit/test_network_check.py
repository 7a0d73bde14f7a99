"""The hook's network verdict: fresh from its watcher, so a status call never waits for pings.

The round of echoes is injected (the daemon passes gardien.node.reachability's, tested in
namespaces in tests/collectors); here it is a table of which target answers, and a record of the
pings asked.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence

from failover_hook.network import NetworkCheck, NetworkReport
from gardien.config.model import NetworkConfig
from gardien.node.reachability import NO_ANSWER, EchoResult, IPAddress
from gardien.node.verdict import NetworkState

INTERNAL, EXTERNAL = ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.3")


class Echo:
    def __init__(self) -> None:
        self.answering = {INTERNAL: True, EXTERNAL: True}
        self.asked: list[IPAddress] = []

    def __call__(self, addresses: Sequence[IPAddress], _timeout: float) -> list[EchoResult]:
        self.asked.extend(addresses)
        return [EchoResult(True, 0.001) if self.answering[a] else NO_ANSWER for a in addresses]


def _check(echo: Echo, now: list[float], link: dict[str, bool] | None = None) -> NetworkCheck:
    network = NetworkConfig(interface="eth0", internal=(INTERNAL,), external=(EXTERNAL,))
    links = {"eth0": True} if link is None else link
    return NetworkCheck(network, echo, max_age=2.5, clock=lambda: now[0], link=links.__getitem__)


def _seen(report: NetworkReport) -> tuple[NetworkState, dict[str, bool]]:
    return report.verdict.state, report.targets


def test_a_caller_pings_only_when_the_result_is_too_old() -> None:
    echo, now = Echo(), [100.0]
    check = _check(echo, now)
    assert _seen(check.check()) == ("ok", {"127.0.0.2": True, "127.0.0.3": True})
    now[0] += 2.0
    echo.answering[INTERNAL] = echo.answering[EXTERNAL] = False
    assert check.check().verdict.state == "ok"  # still the result of 2 s ago, no new round
    assert len(echo.asked) == 2
    now[0] += 1.0
    assert _seen(check.check()) == ("isolated", {"127.0.0.2": False, "127.0.0.3": False})
    assert len(echo.asked) == 4


def test_the_watcher_keeps_the_verdict_fresh_for_callers() -> None:
    echo, now = Echo(), [100.0]
    check = _check(echo, now)
    stop = threading.Event()
    rounds = 0

    def tick(_every: float) -> bool:  # stands in for stop.wait: one refresh per call, then stop
        nonlocal rounds
        rounds += 1
        echo.answering[INTERNAL] = False
        now[0] += 1.0
        if rounds == 2:
            stop.set()
        return stop.is_set()

    stop.wait = tick  # type: ignore[method-assign]
    check.watch(stop, every=1.0)
    assert rounds == 2
    asked = len(echo.asked)
    assert asked == 4  # two rounds of two targets, by the watcher
    assert _seen(check.check()) == ("degraded-internal", {"127.0.0.2": False, "127.0.0.3": True})
    assert len(echo.asked) == asked  # the caller read the watcher's result


def test_no_targets_is_unknown_and_pings_nothing() -> None:
    echo = Echo()
    check = NetworkCheck(None, echo)
    check.refresh()
    assert _seen(check.check()) == ("unknown", {})
    assert echo.asked == []


def test_one_scope_lost_is_degraded_not_failed() -> None:
    """The hook used to call a node that lost its external targets "failed" (issue 9)."""
    echo, now = Echo(), [100.0]
    echo.answering[EXTERNAL] = False
    report = _check(echo, now).check()
    assert report.verdict.state == "degraded-external" and report.link_up is True
    assert "127.0.0.3" in report.verdict.reason


def test_a_link_down_isolates_whatever_answers() -> None:
    echo, now = Echo(), [100.0]
    report = _check(echo, now, link={"eth0": False}).check()
    assert report.verdict.state == "isolated" and report.link_up is False
    assert report.targets == {"127.0.0.2": True, "127.0.0.3": True}
