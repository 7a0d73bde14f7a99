"""A real Prometheus on loopback for the hook tests: scraping the test's daemons every second,
with alerting rules of the test's own."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from gardien.polling import wait_until

PROMETHEUS = "/usr/bin/prometheus"


@contextlib.contextmanager
def prometheus(
    tmp: Path,
    port: int,
    jobs: dict[str, dict[str, str]],
    token: str,
    rules: list[dict[str, Any]] | None = None,
) -> Iterator[str]:
    """A real Prometheus on ``127.0.0.1:port`` scraping every second; ``jobs``: job name ->
    {target: node}; ``rules``: alerting rules, evaluated every second.  Yields its URL once it
    has scraped every target once."""
    (tmp / "prom-token").write_text(token)
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": "1s",
            "scrape_timeout": "900ms",
            "evaluation_interval": "1s",
        },
        "scrape_configs": [
            {
                "job_name": job,
                "authorization": {"credentials_file": str(tmp / "prom-token")},
                "static_configs": [
                    {"targets": [target], "labels": {"node": node, "cluster": "test"}}
                    for target, node in targets.items()
                ],
            }
            for job, targets in jobs.items()
        ],
    }
    if rules:
        (tmp / "rules.yml").write_text(
            yaml.safe_dump({"groups": [{"name": "test", "rules": rules}]})
        )
        config["rule_files"] = [str(tmp / "rules.yml")]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    targets = sum(len(t) for t in jobs.values())

    def scraped_all() -> bool:
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            answer = requests.get(f"{url}/api/v1/query", params={"query": "up == 1"}, timeout=2)
            return len(answer.json()["data"]["result"]) == targets
        return False

    try:
        if not wait_until(scraped_all, 60):
            raise AssertionError(f"Prometheus did not scrape every target: {jobs}")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()
