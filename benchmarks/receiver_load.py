"""The hook's webhook receiver under a bounded burst, against the real web server (gardien.web).

Two ``gardien hook --dry-run`` processes (node1, node2) on loopback addresses, 20 groups without
resources.  N POSTs of single-alert notifications to node2's hook from C concurrent clients: a
fraction are duplicates of an earlier delivery (retries, an Alertmanager cluster's second copy),
the rest distinct failures (``GardienGroupFailed`` of one of the groups on node1, each its own
fingerprint).  Measured: the response time of every POST (p50, p99, max), then, once the hook has
decided on everything, how many moves it started (dry run: "would move" decisions) and how many
deliveries it dropped as duplicates, from its own metrics.  Every decision asks node1's hook for
its status over HTTP, as in production.

    python3 benchmarks/receiver_load.py --posts 2000 --duplicates 0.8 --groups 20 --clients 8

Only loopback addresses are used; the number of requests is bounded by --posts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client.parser import text_string_to_metric_families

from tests.support.hooks import HookPair, alert, payload


def _decisions(text: str, action: str) -> float:
    """``gardien_hook_decisions_total{action=...}`` from the hook's /metrics text."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gardien_hook_decisions_total" and sample.labels["action"] == action:
                return sample.value
    return 0.0


def _deliveries(posts: int, duplicates: float, groups: list[str]) -> tuple[list[bytes], int]:
    """The bodies in sending order, and how many distinct failures they carry."""
    rng = random.Random(4)
    distinct = max(1, round(posts * (1 - duplicates)))
    originals = [
        json.dumps(
            payload(alert(group=groups[i % len(groups)], node="node1", fingerprint=f"{i:016x}"))
        ).encode()
        for i in range(distinct)
    ]
    bodies = list(originals)
    while len(bodies) < posts:
        bodies.append(rng.choice(originals))
    rng.shuffle(bodies)
    return bodies, distinct


def run(posts: int, duplicates: float, group_count: int, clients: int) -> dict[str, float]:
    groups = [f"g{i:02d}" for i in range(1, group_count + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        pair = HookPair(
            Path(tmp),
            dry_run=True,
            hook={"settle": 0, "cooldown": 0},
            groups={g: {"nodes": ["node1", "node2"]} for g in groups},
        )
        pair.start()
        try:
            bodies, distinct = _deliveries(posts, duplicates, groups)
            url = pair.url("node2", "/api/v1/alerts")
            headers = {"Authorization": f"Bearer {pair.token}", "Content-Type": "application/json"}
            sessions = [requests.Session() for _ in range(clients)]

            def post(i: int) -> float:
                started = time.perf_counter()
                response = sessions[i % clients].post(
                    url, data=bodies[i], headers=headers, timeout=10
                )
                took = time.perf_counter() - started
                response.raise_for_status()
                return took

            began = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                times = sorted(pool.map(post, range(len(bodies))))
            burst = time.perf_counter() - began
            deadline = time.monotonic() + 120
            while True:
                metrics = requests.get(
                    pair.url("node2", "/metrics"), headers=headers, timeout=10
                ).text
                moved = _decisions(metrics, "dry_run")
                dropped = _decisions(metrics, "duplicate")
                if moved + dropped >= posts or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            decided = time.perf_counter() - began
        finally:
            pair.stop()
    return {
        "posts": posts,
        "distinct": distinct,
        "p50_ms": 1000 * statistics.median(times),
        "p99_ms": 1000 * times[int(0.99 * (len(times) - 1))],
        "max_ms": 1000 * times[-1],
        "burst_s": burst,
        "decided_s": decided,
        "moves": moved,
        "duplicates": dropped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--duplicates", type=float, default=0.8)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    result = run(min(args.posts, 20_000), args.duplicates, args.groups, args.clients)
    print(
        "| posts | distinct failures | clients | p50 | p99 | max | burst | all decided "
        "| moves started | duplicates dropped |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {result['posts']} | {result['distinct']} | {args.clients} "
        f"| {result['p50_ms']:.1f} ms | {result['p99_ms']:.1f} ms | {result['max_ms']:.1f} ms "
        f"| {result['burst_s']:.2f} s | {result['decided_s']:.2f} s | {result['moves']:.0f} "
        f"| {result['duplicates']:.0f} |"
    )
    ok = result["moves"] == result["distinct"] and result["p99_ms"] < 50
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
