"""Detection to webhook latency: from breaking a probed service to the failover webhook arriving
at the hooks, through the real path (gardien exporter -> Prometheus with the rendered rules ->
Alertmanager with the rendered routing -> gardien hook --dry-run), all on loopback.

A trial kills the HTTP service (crash: connection refused) or freezes it with SIGSTOP (hang: the
probe waits for its timeout), then waits for the first decision about the group on any hook; the
latency is the hook's decision time minus the time of the fault.  Between trials the service is
restarted and the alert left to resolve, so each trial starts from a healthy, quiet cluster.

    python3 benchmarks/detection_latency.py --trials 10               # for 0 s, group_wait 0 s
    python3 benchmarks/detection_latency.py --trials 10 --for 3s      # the rules' default
    python3 benchmarks/detection_latency.py --trials 3 --group-wait 30s --modes crash

Root (the daemons run as this user; nothing here needs it, but the lab machines run as root).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gardien.render.alertmanager import AlertmanagerOptions  # noqa: E402
from gardien.render.rules import RuleOptions  # noqa: E402
from gardien.types import parse_duration  # noqa: E402
from tests.render.daemons import wait_for  # noqa: E402
from tests.render.stack import (  # noqa: E402
    HttpService,
    Stack,
    cluster_config,
    first_decision,
    now,
    running,
)

PROBE_TIMEOUT = 0.5


def quiet(stack: Stack, group_interval: float) -> None:
    """Healthy again, no GroupFailed left anywhere, and Alertmanager's group for it gone."""
    assert stack.prometheus is not None and stack.alertmanager is not None
    prometheus, alertmanager = stack.prometheus, stack.alertmanager
    wait_for(lambda: prometheus.vector('gardien_probe_success{group="web"} == 1'), "healthy",
             timeout=60, interval=0.2)  # fmt: skip
    wait_for(lambda: not prometheus.vector('ALERTS{alertname="GardienGroupFailed"}'),
             "the alert resolved in Prometheus", timeout=60, interval=0.2)  # fmt: skip
    wait_for(lambda: not alertmanager.alert(alertname="GardienGroupFailed"),
             "the alert gone from Alertmanager", timeout=60, interval=0.2)  # fmt: skip
    time.sleep(group_interval + 1)  # the resolved notification flushed, the group deleted


def trial(stack: Stack, service: HttpService, mode: str) -> float:
    # The end of quiet() is locked to Prometheus' and Alertmanager's cycles: a random pause puts
    # the fault at a random phase of the scrape and evaluation intervals, as in real life.
    time.sleep(random.uniform(0, stack.interval))
    stopped = now()
    if mode == "crash":
        service.crash()
    else:
        service.hang()
    _, decision = first_decision(stack, "web", stopped, timeout=120)
    latency = float(decision["time"]) - stopped
    service.restart()
    return latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--modes", default="crash,hang")
    parser.add_argument(
        "--for",
        dest="for_",
        type=parse_duration,
        default=0.0,
        help="GardienGroupFailed's for (default 0s: the raw path)",
    )
    parser.add_argument("--group-wait", type=parse_duration, default=0.0)
    parser.add_argument(
        "--interval", type=parse_duration, default=1.0, help="scrape and evaluation interval"
    )
    args = parser.parse_args()
    am_options = AlertmanagerOptions(group_wait=args.group_wait)
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="gardien-bench-") as tmp:
        folder = Path(tmp)
        service = HttpService(folder)
        try:
            config = cluster_config(folder, service.url, probe_timeout=f"{PROBE_TIMEOUT}s")
            with running(folder, config, rule_options=RuleOptions(group_failed_for=args.for_),
                         am_options=am_options, interval=args.interval) as stack:  # fmt: skip
                stack.wait_scraped('gardien_group_active{group="web"} == 1',
                                   'up{job="gardien-hook"} == 1')  # fmt: skip
                for mode in args.modes.split(","):
                    results[mode] = []
                    for number in range(args.trials):
                        quiet(stack, am_options.group_interval)
                        latency = trial(stack, service, mode)
                        results[mode].append(latency)
                        print(f"{mode} {number + 1}/{args.trials}: {latency:.2f} s", flush=True)
        finally:
            service.stop()
    summary = {
        mode: {"median": statistics.median(v), "max": max(v), "min": min(v), "trials": v}
        for mode, v in results.items()
    }
    print(json.dumps({"for": args.for_, "group_wait": args.group_wait,
                      "interval": args.interval, "probe_timeout": PROBE_TIMEOUT,
                      "results": summary}, indent=1))  # fmt: skip
    for mode, s in summary.items():
        print(f"| {mode} | for {args.for_:g} s, group_wait {args.group_wait:g} s | "
              f"{s['median']:.2f} s ({s['max']:.2f}) |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
