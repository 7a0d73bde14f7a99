"""``/metrics`` answers in Prometheus' text format 0.0.4 or OpenMetrics 1.0, written directly.

prometheus_client's encoders check every metric and label name against the UTF-8 naming rules and
escape every label value character by character: for the 270 samples of an exporter scrape that is
3 ms of CPU in the text format and 5 ms in OpenMetrics (what Prometheus asks for), at every scrape
(issue 14: more than the probes of a sub-second scrape).  This module writes the same bytes for the
families gardien serves (gauges, counters, histograms and untyped families with legacy names,
without timestamps, exemplars or ``_created`` samples) and hands any other family to
prometheus_client's encoder, so the answer is always what prometheus_client would send
(``tests/unit/test_exposition.py`` compares the two byte for byte).  :func:`metrics_app` answers
as prometheus_client's ``make_wsgi_app`` does (content negotiation, gzip, ``name[]``, OPTIONS).
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Encoder = Callable[[CollectorRegistry], bytes]

_go_float: Callable[[float], str] = floatToGoString
"""A value as Go's strconv writes it (``+Inf``, ``NaN``, exponents): what Prometheus parses."""
_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPENMETRICS = "application/openmetrics-text"
_EOF = b"# EOF\n"
_ALLOW = [("Allow", "OPTIONS,GET")]
_WRITTEN_TYPES = frozenset({"gauge", "counter", "histogram", "unknown"})
_OWN_FAMILY_SUFFIXES = ("_created", "_gsum", "_gcount")
"""Samples prometheus_client moves into a family of their own at the end (text format)."""
_SAME_FOR_LEGACY_NAMES = ("underscores", "allow-utf-8", "values")
"""The name escapings that leave a legacy name as it is (``dots`` doubles its underscores)."""


class _OneFamily:
    """What prometheus_client's encoders take: something whose ``collect`` yields families."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterable[Metric]:
        return [self._family]


@functools.lru_cache(maxsize=4096)
def _legacy_label(name: str) -> bool:
    return _LEGACY_LABEL.fullmatch(name) is not None


def _label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class Writer:
    """Writes families in one negotiated format (prometheus_client's encoder for the rest)."""

    def __init__(self, encoder: Encoder, openmetrics: bool, escaping_kept: bool) -> None:
        self._encoder = encoder
        self.openmetrics = openmetrics
        self._escaping_kept = escaping_kept

    def write(self, families: Iterable[Metric]) -> bytes:
        parts: list[str] = []
        for family in families:
            if self._writable(family):
                self._write_family(family, parts)
            else:
                parts.append(self._delegated(family))
        if self.openmetrics:
            parts.append("# EOF\n")
        return "".join(parts).encode("utf-8")

    def _writable(self, family: Metric) -> bool:
        if not self._escaping_kept or family.type not in _WRITTEN_TYPES:
            return False
        if not _LEGACY_NAME.fullmatch(family.name):
            return False
        return all(self._plain(family, sample) for sample in family.samples)

    @staticmethod
    def _plain(family: Metric, sample: Sample) -> bool:
        """A sample this writer writes as prometheus_client would: no timestamp, exemplar or
        native histogram, legacy label names, and none that prometheus_client moves to a family
        of its own (``_created`` and the like)."""
        if sample.timestamp is not None or sample.exemplar is not None:
            return False
        if sample.native_histogram is not None:
            return False
        if family.type == "counter" and sample.name != family.name + "_total":
            return False
        if sample.name.removeprefix(family.name) in _OWN_FAMILY_SUFFIXES:
            return False
        return all(_legacy_label(name) for name in sample.labels)

    def _write_family(self, family: Metric, parts: list[str]) -> None:
        name, kind, doc = family.name, family.type, family.documentation
        if self.openmetrics:
            doc = _label_value(doc)
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            if family.unit:
                parts.append(f"# UNIT {name} {family.unit}\n")
        else:
            doc = doc.replace("\\", r"\\").replace("\n", r"\n")
            if kind == "counter":
                name += "_total"
            elif kind == "unknown":
                kind = "untyped"
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
        for sample in family.samples:
            value = _go_float(sample.value)
            if sample.labels:
                labels = ",".join(
                    f'{key}="{_label_value(val)}"' for key, val in sorted(sample.labels.items())
                )
                parts.append(f"{sample.name}{{{labels}}} {value}\n")
            else:
                parts.append(f"{sample.name} {value}\n")

    def _delegated(self, family: Metric) -> str:
        text = self._encoder(_OneFamily(family))  # type: ignore[arg-type]
        return text.removesuffix(_EOF).decode("utf-8")


def negotiate(accept: str | None) -> tuple[Writer, str]:
    """The writer and Content-Type prometheus_client would choose for this Accept header."""
    encoder, content_type = choose_encoder(accept or "")
    escaping = content_type.partition("escaping=")[2].split(";")[0].strip() or "underscores"
    openmetrics = content_type.startswith(_OPENMETRICS)
    return Writer(encoder, openmetrics, escaping in _SAME_FOR_LEGACY_NAMES), content_type


def metrics_app(
    collect: Callable[[], Iterable[Metric]],
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """A WSGI app serving ``collect()``'s families as prometheus_client's ``make_wsgi_app``
    serves a registry: GET any path, OPTIONS, 405 otherwise, ``name[]`` keeps only those
    samples' families, gzip when accepted."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "OPTIONS":
            start_response("200 OK", _ALLOW)
            return [b""]
        if method != "GET":
            start_response("405 Method Not Allowed", _ALLOW)
            return [f"# HTTP 405 Method Not Allowed: {method}; use OPTIONS or GET\n".encode()]
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [])
            return [b""]
        output, headers = answer(
            collect(),
            environ.get("HTTP_ACCEPT"),
            environ.get("HTTP_ACCEPT_ENCODING"),
            environ.get("QUERY_STRING", ""),
        )
        start_response("200 OK", headers)
        return [output]

    return app


def answer(
    families: Iterable[Metric],
    accept: str | None,
    accept_encoding: str | None,
    query_string: str,
) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers of one scrape's answer: the format ``accept`` asks for, only the
    families of the query's ``name[]`` when it has some, gzip when ``accept_encoding`` takes it.
    What :func:`metrics_app` and the hook's Flask route (failover_hook/app.py) both answer."""
    writer, content_type = negotiate(accept)
    names = parse_qs(query_string).get("name[]")
    if names is not None:
        families = _restricted(families, set(names))
    output = writer.write(families)
    headers = [("Content-Type", content_type)]
    if gzip_accepted(accept_encoding or ""):
        # level 1, not prometheus_client's 9: a lab node's answer (26 KB) in 0.10 ms of CPU
        # instead of 0.35, 4.9 KB instead of 4.1 (docs/benchmarks.md "Idle cost on the lab")
        output = gzip.compress(output, compresslevel=1)
        headers.append(("Content-Encoding", "gzip"))
    return output, headers


def _restricted(families: Iterable[Metric], names: set[str]) -> Iterable[Metric]:
    """The families with a sample of one of ``names``, keeping only those samples (what
    prometheus_client's ``RestrictedRegistry`` yields)."""
    for family in families:
        samples = [s for s in family.samples if s.name in names]
        if samples:
            kept = Metric(family.name, family.documentation, family.type)
            kept.samples = samples
            yield kept
