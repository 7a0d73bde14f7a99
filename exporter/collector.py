"""The exporter's prometheus_client collector: one scrape as the families of docs/metrics.md.

Every scrape runs the probes and node collectors afresh and yields new families; nothing is kept
between scrapes.  Every configured service and probe is always present (0 when down).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from exporter.runner import ScrapeReport, ScrapeRunner
from gardien import __version__
from gardien.config import ClusterConfig
from gardien.probes.base import Probe, ProbeParams
from gardien.probes.registry import probe_kinds

PROBE_LABELS = ("group", "service", "probe", "kind")
VALUE_LABELS = ("group", "service", "probe")


@dataclass(frozen=True)
class ReloadStatus:
    """Outcome of the last config (re)load."""

    successful: bool
    last_success: float
    """Unix time of the last successful load."""


class ExporterCollector:
    """Runs one scrape in :meth:`collect` and turns its report into metric families."""

    def __init__(
        self,
        config: ClusterConfig,
        runner: ScrapeRunner,
        budget: float,
        reload_status: ReloadStatus,
        kinds: Mapping[str, type[Probe[ProbeParams]]] | None = None,
    ) -> None:
        self._config = config
        self._runner = runner
        self._budget = budget
        self._reload = reload_status
        self._kinds = probe_kinds() if kinds is None else kinds

    def collect(self) -> Iterator[Metric]:
        report = self._runner.scrape(self._budget)
        yield from self._exporter_families(report)
        yield from self._probe_families(report)
        yield from self._service_families(report)
        for outcome in report.collectors:
            yield from outcome.metrics

    def _exporter_families(self, report: ScrapeReport) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "gardien_build_info",
            "Always 1; labels say which gardien and Python run the exporter.",
            labels=("version", "python_version"),
        )
        build.add_metric((__version__, platform.python_version()), 1)
        yield build
        yield GaugeMetricFamily(
            "gardien_config_last_reload_successful",
            "1 when the last config (re)load succeeded; 0 means the previous config is in force.",
            value=1 if self._reload.successful else 0,
        )
        yield GaugeMetricFamily(
            "gardien_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load.",
            value=self._reload.last_success,
        )
        success = GaugeMetricFamily(
            "gardien_exporter_collector_success",
            "1 when the collector ran without error within the scrape budget.",
            labels=("collector",),
        )
        duration = GaugeMetricFamily(
            "gardien_exporter_collector_duration_seconds",
            "Time the collector took in this scrape.",
            labels=("collector",),
        )
        # probe failures are reported per probe; the probes collector itself cannot fail
        success.add_metric(("probes",), 1)
        duration.add_metric(("probes",), report.probes_duration)
        for outcome in report.collectors:
            success.add_metric((outcome.name,), 1 if outcome.ok else 0)
            duration.add_metric((outcome.name,), outcome.duration)
        yield success
        yield duration

    def _probe_families(self, report: ScrapeReport) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "gardien_probe_success", "1 when the probe passed.", labels=PROBE_LABELS
        )
        duration = GaugeMetricFamily(
            "gardien_probe_duration_seconds", "Time the probe took.", labels=PROBE_LABELS
        )
        timed_out = GaugeMetricFamily(
            "gardien_probe_timed_out",
            "1 when the probe did not answer within its budget (its timeout or the scrape's).",
            labels=PROBE_LABELS,
        )
        age = GaugeMetricFamily(
            "gardien_probe_age_seconds",
            "Seconds since the run whose result is reported started (see the probe's 'every').",
            labels=PROBE_LABELS,
        )
        values: dict[str, GaugeMetricFamily] = {}
        for outcome in report.probes:
            target = outcome.target
            kind = target.spec.kind
            labels = (target.group, target.service, target.spec.name)
            success.add_metric((*labels, kind), 1 if outcome.result.ok else 0)
            duration.add_metric((*labels, kind), outcome.result.duration)
            timed_out.add_metric((*labels, kind), 1 if outcome.timed_out else 0)
            age.add_metric((*labels, kind), outcome.age)
            for value_name, help_text in self._kinds[kind].values.items():
                name = f"gardien_probe_{kind}_{value_name}"
                family = values.get(name)
                if family is None:
                    family = values[name] = GaugeMetricFamily(name, help_text, labels=VALUE_LABELS)
                # a value the probe could not read (target down) is 0, never absent
                family.add_metric(labels, outcome.result.values.get(value_name, 0.0))
        yield success
        yield duration
        yield timed_out
        yield age
        yield from values.values()

    def _service_families(self, report: ScrapeReport) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "gardien_service_up",
            "1 when every probe of the service passed (a service without probes is 1).",
            labels=("group", "service"),
        )
        passed: dict[tuple[str, str], bool] = {}
        for outcome in report.probes:
            key = (outcome.target.group, outcome.target.service)
            passed[key] = passed.get(key, True) and outcome.result.ok
        services = [("", s.name) for s in self._config.node_services] + [
            (group_name, s.name)
            for group_name, group in self._config.groups.items()
            for s in group.services
        ]
        for key in services:
            up.add_metric(key, 1 if passed.get(key, True) else 0)
        yield up
