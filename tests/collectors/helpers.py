"""Turn what a collector yields into plain samples, in this process or on a test node."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from gardien.config import ClusterConfig, parse_config
from tests.support.netns import Node

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(families: Iterable[Metric]) -> Samples:
    """Every sample by (name, labels); also checks the families render as exposition text."""
    families = list(families)

    class _Fixed:
        def collect(self) -> Iterable[Metric]:
            return families

    registry = CollectorRegistry()
    registry.register(_Fixed())  # type: ignore[arg-type]
    generate_latest(registry)
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def config_data(**sections: Any) -> dict[str, Any]:
    """A one-node cluster config with the given top-level sections, as parsed YAML."""
    return {"cluster": "test", "nodes": {"n1": {"address": "127.0.0.1"}}, **sections}


def config(**sections: Any) -> ClusterConfig:
    return parse_config(json.dumps(config_data(**sections)))


_ON_NODE = """
import json, subprocess, sys, threading
from pathlib import Path
import gardien.config
from gardien.config import parse_config
from exporter.collectors import collector_classes
config = parse_config(Path(sys.argv[1]).read_text())
kwargs = {k: Path(v) for k, v in json.loads(sys.argv[3]).items()}
collector = collector_classes()[sys.argv[2]](config, **kwargs)
out = []
for action, arg in json.loads(sys.argv[4]):
    if action == "run":
        subprocess.run(arg, check=True, capture_output=True, timeout=30)
    elif action == "threads":  # how many threads of this name prefix are alive
        alive = sum(t.name.startswith(arg) for t in threading.enumerate())
        out.append([["threads", {}, alive]])
    else:
        families = collector.collect(float(arg))
        out.append([[s.name, s.labels, s.value] for f in families for s in f.samples])
print(json.dumps(out))
"""

Step = tuple[str, Any]
"""("collect", timeout), ("run", argv) to run on the node between two scrapes, or ("threads",
name prefix) to count the collector's threads (a pseudo-scrape with one sample named threads)."""


def session_on_node(
    node: Node,
    data: dict[str, Any],
    name: str,
    tmp: Path,
    steps: Sequence[Step],
    paths: Mapping[str, Path] | None = None,
) -> list[Samples]:
    """Run collector ``name`` inside ``node`` (its network and mount namespaces), as in
    production, through ``steps``; the samples of each ``collect`` step."""
    config_file = tmp / f"cluster-{name}.json"
    config_file.write_text(json.dumps(data))
    args = json.dumps({k: str(v) for k, v in (paths or {}).items()})
    argv = [sys.executable, "-c", _ON_NODE, str(config_file), name, args, json.dumps(steps)]
    done = node.run(argv, cwd=str(Path(__file__).parents[2]), timeout=120)
    return [
        {(n, frozenset(labels.items())): v for n, labels, v in scrape}
        for scrape in json.loads(done.stdout)
    ]


def collect_on_node(
    node: Node,
    data: dict[str, Any],
    name: str,
    tmp: Path,
    timeout: float = 5.0,
    paths: Mapping[str, Path] | None = None,
) -> Samples:
    return session_on_node(node, data, name, tmp, [("collect", timeout)], paths)[0]
