"""Prometheus and Alertmanager (Debian packages) in the ``mon`` machine, fed by ``gardien render``.

``gardien render prometheus|rules|alertmanager`` writes the files for the lab's cluster config;
they are checked with ``promtool`` and ``amtool`` before the daemons start (docs/lab.md section 6).
Both listen on every address of ``mon`` (its cluster address is reachable from the nodes, and
127.0.0.1 from ``lab exec mon``); the root namespace never reaches them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from gardien.polling import wait_until
from gardien.types import parse_duration
from gardien_lab import clusterconfig
from gardien_lab.netns import LabError, run
from gardien_lab.topology import (
    ALERTMANAGER_PORT,
    PROMETHEUS_PORT,
    Lab,
    alertmanager_url,
    on,
    prometheus_url,
    running,
    spawn,
)

log = logging.getLogger(__name__)

REPEAT_INTERVAL = "30s"
RESEND_DELAY = "2s"
"""Prometheus' ``--rules.alert.resend-delay`` in the lab (docs/alerting.md, "Prometheus'
flags"): how soon a firing alert is sent to Alertmanager again."""
"""How often Alertmanager re-sends a still-firing failover alert in the lab (render's default,
5 min, is the production one).  A decision a gate refused (settle, a move in progress, an outage
that has just cleared) is decided again at the next repeat: with the lab's anti-flap periods of
seconds, a scenario should not wait 5 min for it."""


def mon_dir(lab: Lab) -> Path:
    return lab.dir / "mon"


def _render(lab: Lab, kind: str, *flags: str) -> Path:
    out = mon_dir(lab) / kind
    out.mkdir(parents=True, exist_ok=True)
    config = str(clusterconfig.config_path(lab))
    run(
        [
            sys.executable,
            "-m",
            "gardien.cli",
            "render",
            kind,
            "--config.file",
            config,
            "--out",
            str(out),
            *flags,
        ],
        timeout=60,
    )
    found = sorted(out.glob("*.yml"))
    if not found:
        raise LabError(f"'gardien render {kind}' wrote no .yml file in {out}")
    return found[0]


def render(lab: Lab) -> tuple[Path, Path]:
    """Render rules, Alertmanager and Prometheus files; returns their prometheus.yml and
    alertmanager.yml."""
    rules = _render(lab, "rules", "--for.group-failed", lab.group_failed_for)
    am_conf = _render(lab, "alertmanager", "--repeat-interval", REPEAT_INTERVAL)
    scrape_timeout = 0.9 * parse_duration(lab.scrape_interval)
    prom_conf = _render(
        lab,
        "prometheus",
        "--scrape-interval",
        lab.scrape_interval,
        "--scrape-timeout",
        f"{scrape_timeout * 1000:.0f}ms",
        "--evaluation-interval",
        lab.evaluation_interval,
        "--rule-file",
        str(rules),
        "--alertmanager",
        f"127.0.0.1:{ALERTMANAGER_PORT}",
    )
    return prom_conf, am_conf


def _rendered(lab: Lab) -> dict[Path, str]:
    """Every file rendered for ``mon`` so far, with its text."""
    return {p: p.read_text() for p in sorted(mon_dir(lab).glob("*/*.yml"))}


def start(lab: Lab) -> None:
    """Render, check, and start Alertmanager then Prometheus in ``mon`` (idempotent).

    Running daemons reload only when a rendered file changed: for a few seconds after a reload
    Prometheus knows no Alertmanager and drops the notifications it would send (see
    :data:`RESEND_DELAY`), and every scenario brings the lab up before it starts."""
    before = _rendered(lab)
    prom_conf, am_conf = render(lab)
    run(["promtool", "check", "config", str(prom_conf)], timeout=60)
    run(["amtool", "check-config", str(am_conf)], timeout=60)
    changed = _rendered(lab) != before
    for name in ("alertmanager", "prometheus"):
        pid = running(lab, "mon", name)
        if pid is not None and changed:  # already up: reload the files rendered again
            os.kill(pid, signal.SIGHUP)
    data = mon_dir(lab) / "data"
    spawn(
        lab,
        "mon",
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={am_conf}",
            f"--storage.path={data / 'alertmanager'}",
            f"--web.listen-address=:{ALERTMANAGER_PORT}",
            "--cluster.listen-address=",
        ],
    )
    spawn(
        lab,
        "mon",
        "prometheus",
        [
            "prometheus",
            f"--config.file={prom_conf}",
            f"--storage.tsdb.path={data / 'prometheus'}",
            f"--web.listen-address=:{PROMETHEUS_PORT}",
            "--web.enable-lifecycle",
            # a notification Prometheus drops (no Alertmanager known for a few seconds after a
            # reload, prometheus/prometheus#13064) is sent again after this, not after 1 min
            f"--rules.alert.resend-delay={RESEND_DELAY}",
        ],
    )
    for name, url in (
        ("alertmanager", f"{alertmanager_url(lab)}/-/ready"),
        ("prometheus", f"{prometheus_url(lab)}/-/ready"),
    ):
        wait_http(lab, "mon", url, 30, name)


def wait_http(lab: Lab, machine: str, url: str, timeout: float, what: str) -> None:
    if not wait_until(lambda: http_get(lab, machine, url) is not None, timeout, interval=0.2):
        raise LabError(f"{what} did not answer {url} from {machine} within {timeout:g} s")


def http_get(lab: Lab, machine: str, url: str, timeout: float = 3) -> str | None:
    """Body of ``GET url`` fetched from ``machine`` (None on any failure)."""
    done = on(
        lab, machine, ["curl", "-fsS", "-m", f"{timeout:g}", url], check=False, timeout=timeout + 5
    )
    return done.stdout if done.returncode == 0 else None


def query(lab: Lab, promql: str, **params: str) -> list[dict[str, Any]]:
    """Result of a Prometheus query (``query`` or, with ``start``/``end``/``step``,
    ``query_range``); empty when Prometheus does not answer."""
    endpoint = "query_range" if "start" in params else "query"
    qs = urllib.parse.urlencode({"query": promql, **params})
    body = http_get(lab, "mon", f"{prometheus_url(lab)}/api/v1/{endpoint}?{qs}", timeout=10)
    if body is None:
        return []
    result: list[dict[str, Any]] = json.loads(body).get("data", {}).get("result", [])
    return result


def alerts(lab: Lab) -> list[dict[str, Any]]:
    """Alerts Alertmanager currently holds (firing or suppressed)."""
    body = http_get(lab, "mon", f"{alertmanager_url(lab)}/api/v2/alerts", timeout=5)
    return [] if body is None else list(json.loads(body))


def is_running(lab: Lab) -> dict[str, bool]:
    return {name: running(lab, "mon", name) is not None for name in ("prometheus", "alertmanager")}
