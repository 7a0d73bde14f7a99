"""What the cluster's Prometheus saw of a node: read-only queries of its HTTP API.

Used before fencing a node that did not answer (:mod:`failover_hook.silence`): Prometheus scrapes
every node's exporter and hook on its own connections, so a scrape that succeeded after a node
went silent for this hook says the node is alive.  Prometheus being unreachable is no evidence
either way: the answer says so and the caller decides on what else it checked.  The web console
shows its active alerts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import requests

from gardien.render.rules import EXPORTER_JOB, HOOK_JOB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scrapes:
    """Whether Prometheus scraped a daemon of a node successfully in a recent window."""

    answered: bool | None
    """True: at least one scrape of the node's exporter or hook succeeded in the window; False:
    none did (or none was recorded); None: Prometheus could not be asked."""
    message: str
    """For people: "Prometheus scraped node1 within the last 7 s", or why it was not asked."""


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class PrometheusReader:
    """Queries of one Prometheus server (``hook.prometheus_url``)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def node_scraped(self, cluster: str, node: str, seconds: float) -> Scrapes:
        """Did a scrape of ``node``'s exporter or hook succeed within the last ``seconds``?"""
        window = max(1, math.ceil(seconds))
        selector = (
            f'up{{job=~"{EXPORTER_JOB}|{HOOK_JOB}",cluster="{_label_value(cluster)}",'
            f'node="{_label_value(node)}"}}'
        )
        query = f"max(max_over_time({selector}[{window}s]))"
        try:
            response = requests.get(
                f"{self.url}/api/v1/query", params={"query": query}, timeout=self.timeout
            )
            response.raise_for_status()
            result = response.json()["data"]["result"]
            answered = bool(result) and float(result[0]["value"][1]) >= 1
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("Prometheus at %s not asked about %s: %s", self.url, node, exc)
            return Scrapes(None, f"Prometheus not asked ({type(exc).__name__})")
        if answered:
            return Scrapes(True, f"Prometheus scraped {node} within the last {window} s")
        return Scrapes(False, f"Prometheus did not scrape {node} in the last {window} s")

    def alerts(self) -> tuple[list[dict[str, Any]], str | None]:
        """The alerts Prometheus has active now (pending or firing: labels, annotations,
        state, activeAt), or none and why it could not be asked."""
        try:
            response = requests.get(f"{self.url}/api/v1/alerts", timeout=self.timeout)
            response.raise_for_status()
            found = response.json()["data"]["alerts"]
            if not isinstance(found, list):
                raise TypeError("alerts is not a list")
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            log.warning("Prometheus at %s not asked for its alerts: %s", self.url, exc)
            return [], f"Prometheus at {self.url} did not answer ({type(exc).__name__})"
        return [a for a in found if isinstance(a, dict)], None
