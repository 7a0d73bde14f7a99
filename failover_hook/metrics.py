"""The hook's metrics (docs/metrics.md, "Hook"), in a private registry.

Counters and the duration histogram are updated where things happen; the state gauges (held,
frozen, settling, in progress) are read fresh from the hook at every scrape.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gardien import __version__

DECISION_ACTIONS = (
    "moved",
    "dry_run",
    "skipped",
    "refused",
    "not_mine",
    "in_progress",
    "nothing_to_do",
    "failed",
    "ignored",
    "duplicate",
)

RESTART_RESULTS = ("done", "failed")
"""The ``result`` label of ``gardien_hook_restarts_total``."""


@dataclass(frozen=True)
class GroupGauges:
    held: bool
    frozen: bool
    settling: bool
    move_in_progress: bool
    last_move: float | None
    """Unix time of the last move this hook ran, None when none is journaled."""


class _StateCollector(Collector):
    def __init__(self, read: Callable[[], tuple[bool, dict[str, GroupGauges]]]) -> None:
        self._read = read

    def describe(self) -> Iterable[Metric]:
        """Nothing at registration: the hook registers this before its parts exist, and reads
        them (they change with a reload) only when scraped."""
        return ()

    def collect(self) -> Iterable[Metric]:
        cluster_frozen, groups = self._read()
        build = GaugeMetricFamily(
            "gardien_build_info",
            "Version of gardien, always 1.",
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        frozen = GaugeMetricFamily(
            "gardien_hook_cluster_frozen", "1 when the cluster is frozen (no automatic move)."
        )
        frozen.add_metric([], int(cluster_frozen))
        yield frozen
        families = {
            "held": ("gardien_hook_group_held", "1 when this node's agent holds the group."),
            "frozen": ("gardien_hook_group_frozen", "1 when the group is frozen."),
            "settling": (
                "gardien_hook_group_settling",
                "1 during the settle period after a move of the group.",
            ),
            "move_in_progress": (
                "gardien_hook_move_in_progress",
                "1 while a move of the group runs on this hook.",
            ),
        }
        for attr, (name, doc) in families.items():
            family = GaugeMetricFamily(name, doc, labels=["group"])
            for group, gauges in groups.items():
                family.add_metric([group], int(getattr(gauges, attr)))
            yield family
        last = GaugeMetricFamily(
            "gardien_hook_last_move_timestamp_seconds",
            "Unix time of the last move of the group this hook ran (0: none).",
            labels=["group"],
        )
        for group, gauges in groups.items():
            last.add_metric([group], gauges.last_move or 0)
        yield last


class HookMetrics:
    """Owns the hook's private registry: the counters and histograms the parts update where
    things happen, and the state gauges read through ``read_state`` at every scrape."""

    def __init__(
        self, groups: Iterable[str], read_state: Callable[[], tuple[bool, dict[str, GroupGauges]]]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.moves = Counter(
            "gardien_hook_moves",
            "Moves this hook ran as the target.",
            ["group"],
            registry=self.registry,
        )
        self.moves_failed = Counter(
            "gardien_hook_moves_failed",
            "Moves this hook ran that failed.",
            ["group"],
            registry=self.registry,
        )
        self.move_duration = Histogram(
            "gardien_hook_move_duration_seconds",
            "Duration of the moves this hook ran.",
            ["group"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.restarts = Counter(
            "gardien_hook_restarts",
            "Restarts in place this hook ran on its node, by result (done, failed).",
            ["group", "service", "result"],
            registry=self.registry,
        )
        self._restartable: set[tuple[str, str]] = set()
        self.decision_duration = Histogram(
            "gardien_hook_decision_duration_seconds",
            "From an alert's arrival to its decision: an outcome, or the start of a move.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.decisions = Counter(
            "gardien_hook_decisions",
            "Decisions taken on alerts.",
            ["action"],
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "gardien_hook_webhook_requests",
            "Webhook requests by HTTP status.",
            ["code"],
            registry=self.registry,
        )
        self.reload_successful = Gauge(
            "gardien_hook_config_last_reload_successful",
            "0 after a config reload that was refused (the config in force stays), else 1.",
            registry=self.registry,
        )
        self.reload_success_time = Gauge(
            "gardien_hook_config_last_reload_success_timestamp_seconds",
            "Unix time the config in force was loaded (at start or by the last reload).",
            registry=self.registry,
        )
        self._groups: set[str] = set()
        self.set_groups(groups)
        for action in DECISION_ACTIONS:
            self.decisions.labels(action)
        self.registry.register(_StateCollector(read_state))

    def set_groups(self, groups: Iterable[str]) -> None:
        """The groups of the config in force: each always exported, a removed one no more."""
        wanted = set(groups)
        for group in sorted(wanted - self._groups):
            self.moves.labels(group)
            self.moves_failed.labels(group)
            self.move_duration.labels(group)
        for group in sorted(self._groups - wanted):
            self.moves.remove(group)
            self.moves_failed.remove(group)
            self.move_duration.remove(group)
        self._groups = wanted

    def set_restartable(self, services: Iterable[tuple[str, str]]) -> None:
        """The (group, service) pairs with restarts in place: each result always exported."""
        wanted = set(services)
        for group, service in sorted(wanted - self._restartable):
            for result in RESTART_RESULTS:
                self.restarts.labels(group, service, result)
        for group, service in sorted(self._restartable - wanted):
            for result in RESTART_RESULTS:
                self.restarts.remove(group, service, result)
        self._restartable = wanted

    def reloaded(self, successful: bool, when: float) -> None:
        """The outcome of a config load: at start (successful) or by a reload."""
        self.reload_successful.set(int(successful))
        if successful:
            self.reload_success_time.set(when)
