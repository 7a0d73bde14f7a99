"""Turn what a collector yields into plain samples, in this process or on a test node."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
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
import json, sys
from pathlib import Path
import gardien.config
from gardien.config import parse_config
from exporter.collectors import collector_classes
config = parse_config(Path(sys.argv[1]).read_text())
kwargs = json.loads(sys.argv[3])
collector = collector_classes()[sys.argv[2]](config, **{k: Path(v) for k, v in kwargs.items()})
families = collector.collect(float(sys.argv[4]))
out = [[s.name, s.labels, s.value] for f in families for s in f.samples]
print(json.dumps(out))
"""


def collect_on_node(
    node: Node,
    data: dict[str, Any],
    name: str,
    tmp: Path,
    timeout: float = 5.0,
    paths: Mapping[str, Path] | None = None,
) -> Samples:
    """Run collector ``name`` inside ``node`` (its network and mount namespaces)."""
    config_file = tmp / f"cluster-{name}.json"
    config_file.write_text(json.dumps(data))
    args = json.dumps({k: str(v) for k, v in (paths or {}).items()})
    done = node.run(
        [sys.executable, "-c", _ON_NODE, str(config_file), name, args, str(timeout)],
        cwd=str(Path(__file__).parents[2]),
    )
    return {(n, frozenset(labels.items())): v for n, labels, v in json.loads(done.stdout)}
