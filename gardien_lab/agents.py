"""gardien's own daemons on each node: the exporter and the hook, run inside the node.

Only there do they see the node's mounts and VIPs, and the hook's start/stop commands act on the
node.  Both listen on the node's cluster address, where Prometheus (in ``mon``) and the peer hook
reach them.
"""

from __future__ import annotations

import sys

from gardien_lab import clusterconfig
from gardien_lab.monitoring import wait_http
from gardien_lab.services import node_state_dir
from gardien_lab.topology import Lab, running, spawn

AGENTS = ("exporter", "hook")


def exporter_url(lab: Lab, node: str) -> str:
    return f"http://{lab.cluster_address(node)}:{clusterconfig.EXPORTER_PORT}"


def hook_url(lab: Lab, node: str) -> str:
    return f"http://{lab.cluster_address(node)}:{clusterconfig.HOOK_PORT}"


def start(lab: Lab, node: str) -> None:
    """Start the node's exporter and hook unless they run; wait until both answer."""
    config = str(clusterconfig.config_path(lab))
    state_dir = node_state_dir(lab, node)
    state_dir.mkdir(parents=True, exist_ok=True)
    gardien = [sys.executable, "-m", "gardien.cli"]
    env = {"GARDIEN_CONFIG": config}
    spawn(
        lab,
        node,
        "exporter",
        [
            *gardien,
            "exporter",
            "--config.file",
            config,
            "--state-dir",
            str(state_dir),
            "--web.listen-address",
            f"{lab.cluster_address(node)}:{clusterconfig.EXPORTER_PORT}",
        ],
        env,
    )
    spawn(
        lab,
        node,
        "hook",
        [
            *gardien,
            "hook",
            "--config.file",
            config,
            "--node",
            node,
            "--state-dir",
            str(state_dir),
            "--web.listen-address",
            f"{lab.cluster_address(node)}:{clusterconfig.HOOK_PORT}",
        ],
        env,
    )
    # /-/healthy: a scrape before the groups run takes the probes' timeouts
    wait_http(lab, "mon", f"{exporter_url(lab, node)}/-/healthy", 60, f"exporter of {node}")
    wait_http(lab, "mon", f"{hook_url(lab, node)}/-/healthy", 60, f"hook of {node}")


def state(lab: Lab, node: str) -> dict[str, int | None]:
    return {name: running(lab, node, name) for name in AGENTS}
