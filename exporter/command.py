"""``gardien exporter``: serve the probes and node collectors of this node on ``/metrics``.

Only the command line lives here: ``gardien`` imports every command module to build its parser,
so the daemon's imports (prometheus_client, cheroot, the probe kinds) wait until it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gardien.state import DEFAULT_STATE_DIR


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exporter", help="run the Prometheus exporter of this node (probes, volumes, VIPs...)"
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=None,
        help="cluster config (default: $GARDIEN_CONFIG or /etc/gardien/cluster.yml)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=None,
        help="HOST:PORT or :PORT to listen on (default :<exporter.port of the config>, :19480)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        default=None,
        help="TLS and basic auth, in the Prometheus exporter-toolkit web config format",
    )
    parser.add_argument(
        "--state-dir",
        dest="state_dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"the node agent's state folder (default {DEFAULT_STATE_DIR})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from exporter import daemon  # noqa: PLC0415 - see the module docstring

    return daemon.run(args)
