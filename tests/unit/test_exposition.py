"""gardien's ``/metrics`` writer sends exactly what prometheus_client's ``make_wsgi_app`` sends.

Both apps serve the same families under the same request; the answers (status, headers, body)
must be equal byte for byte, in every format Prometheus may ask for, for families gardien writes
itself and for those it hands to prometheus_client (histograms, counters with ``_created``,
timestamps, names outside the legacy character set).
"""

from __future__ import annotations

import gzip
import wsgiref.util
from collections.abc import Iterable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    UnknownMetricFamily,
)

from gardien.web.exposition import metrics_app

ACCEPTS = [
    None,
    "text/plain",
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    # Prometheus 2.x's default scrape_protocols
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text;version=1.0.0;escaping=dots",
    "text/plain;version=1.0.0;escaping=dots",
    "text/plain;version=1.0.0;escaping=values",
]


def families() -> list[Metric]:
    probe = GaugeMetricFamily(
        "gardien_probe_success", "1 when the probe passed.", labels=("group", "service", "probe")
    )
    probe.add_metric(("php4", "apache-php4", "http"), 1)
    probe.add_metric(("", "winbind", 'odd "quoted" \\ name\nnext line'), 0)
    probe.add_metric(("java", "tomcat", "ünïcode"), 0.000123)
    duration = GaugeMetricFamily("gardien_probe_duration_seconds", 'Time "taken"\\ here\nsecond')
    duration.add_metric((), 1234567890.5)
    special = GaugeMetricFamily("gardien_values", "Special values.", labels=("which",))
    for which, value in [("inf", float("inf")), ("-inf", float("-inf")), ("nan", float("nan"))]:
        special.add_metric((which,), value)
    special.add_metric(("big",), 12345678.0)
    special.add_metric(("negative",), -0.5)
    moves = CounterMetricFamily("gardien_moves", "Moves.", labels=("group",))
    moves.add_metric(("php4",), 3)
    refused = CounterMetricFamily("gardien_refused_connections", "Refused.")
    refused.add_metric((), 0)
    created = CounterMetricFamily("gardien_with_created", "Has a _created.", created=1.5)
    created.add_metric((), 7, created=1700000000.25)
    stamped = GaugeMetricFamily("gardien_stamped", "With a timestamp.", labels=("a",))
    stamped.add_metric(("x",), 1, timestamp=1700000000.5)
    histogram = HistogramMetricFamily(
        "gardien_latency_seconds", "A histogram.", buckets=[("0.1", 2), ("+Inf", 3)], sum_value=1.5
    )
    info = InfoMetricFamily("gardien_build", "Build.", value={"version": "1.0"})
    unknown = UnknownMetricFamily("gardien_unknown", "Unknown.", value=4)
    return [probe, duration, special, moves, refused, created, stamped, histogram, info, unknown]


def legacy_families() -> list[Metric]:
    """Families whose names prometheus_client accepts in every escaping."""
    unit = GaugeMetricFamily("gardien_size_bytes", "Bytes.", unit="bytes")
    unit.add_metric((), 5)
    empty = GaugeMetricFamily("gardien_nothing", "No sample.", labels=("a",))
    return [*families(), unit, empty]


class _Collector:
    def __init__(self, found: list[Metric]) -> None:
        self.found = found

    def collect(self) -> Iterable[Metric]:
        return self.found


def call(app: Any, **environ: str) -> tuple[str, list[tuple[str, str]], bytes]:
    env: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", **environ}
    wsgiref.util.setup_testing_defaults(env)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, headers

    body = b"".join(app(env, start_response))
    return answer["status"], answer["headers"], body


def both(found: list[Metric], **environ: str) -> tuple[Any, Any]:
    # described: prometheus_client's name[] filter finds only collectors whose names it knows
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Collector(found))
    theirs = call(make_wsgi_app(registry), **environ)
    ours = call(metrics_app(lambda: found), **environ)
    return ours, theirs


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_answer_is_prometheus_clients_in_every_format(accept: str | None) -> None:
    environ = {"HTTP_ACCEPT": accept} if accept else {}
    ours, theirs = both(legacy_families(), **environ)
    assert ours == theirs
    assert ours[2].count(b"\n") > 40


def test_a_name_outside_the_legacy_set_is_written_as_prometheus_client_writes_it() -> None:
    utf8 = GaugeMetricFamily("gardien.dotted", "Dotted.", labels=("a",))
    utf8.add_metric(("b",), 1)
    for accept in ACCEPTS[:2] + ACCEPTS[3:4]:
        environ = {"HTTP_ACCEPT": accept} if accept else {}
        ours, theirs = both([*families(), utf8], **environ)
        assert ours == theirs


@pytest.mark.parametrize(
    "query", ["name[]=gardien_moves_total", "name[]=gardien_probe_success&name[]=gardien_unknown"]
)
def test_name_filtering_keeps_the_same_samples(query: str) -> None:
    ours, theirs = both(legacy_families(), QUERY_STRING=query)
    assert ours == theirs
    assert b"gardien_values" not in ours[2]


def test_gzip_when_accepted() -> None:
    ours, theirs = both(legacy_families(), HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert ("Content-Encoding", "gzip") in ours[1]
    assert ours[:2] == theirs[:2]
    assert gzip.decompress(ours[2]) == gzip.decompress(theirs[2])


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "HEAD"])
def test_other_methods_answer_as_prometheus_client(method: str) -> None:
    ours, theirs = both(legacy_families(), REQUEST_METHOD=method)
    assert ours == theirs
