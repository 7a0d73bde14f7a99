"""Helpers of the lab tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from gardien.lab import clusterconfig, services
from gardien.lab.topology import NODES, Lab

HOME = {"php4": "node1", "php5": "node2", "mysql1": "node1", "mysql2": "node2", "java": "node2"}


def lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("ip", "nsenter", "losetup", "apache2", "smbd", "mariadbd", "prometheus"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed"
    return None


def gardien_on(
    lab: Lab, node: str, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``gardien ARGS`` on ``node`` with the lab's config (as an operator would)."""
    return subprocess.run(
        [*lab.prefix_argv(node), sys.executable, "-m", "gardien.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "GARDIEN_CONFIG": str(clusterconfig.config_path(lab))},
    )


def placement(lab: Lab) -> dict[str, list[str]]:
    up = [n for n in NODES if lab.holder(n) is not None]
    return {name: services.where(lab, g, up) for name, g in services.lab_groups(lab).items()}
