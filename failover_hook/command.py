"""``gardien hook``: the node agent and Alertmanager webhook receiver of one node.

Only the command line lives here: ``gardien`` imports every command module to build its parser, so
the daemon's imports (Flask, cheroot, the failover engine) wait until it runs
(:mod:`failover_hook.daemon`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import psutil

from gardien.config import ClusterConfig
from gardien.errors import ConfigError
from gardien.state import DEFAULT_STATE_DIR


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hook", help="run the node agent and Alertmanager webhook receiver (default :19481)"
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=None,
        help="cluster config (default $GARDIEN_CONFIG or /etc/gardien/cluster.yml)",
    )
    parser.add_argument(
        "--node",
        default=None,
        help="this node's name in the config (default: the one whose address is local)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"journal and freeze state (default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=None,
        help="HOST:PORT or :PORT to listen on (default :<hook.port>)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="exporter-toolkit web config (TLS, basic auth)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="decide and report, execute nothing (no move, acquire or release)",
    )
    parser.set_defaults(func=run)


def local_node(config: ClusterConfig) -> str:
    """The configured node whose address this host has."""
    addresses = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
    node = config.node_of_address(addresses)
    if node is None:
        raise ConfigError(
            str(config.source or "config"),
            ["no configured node has an address of this host; give --node NAME"],
        )
    return node


def run(args: argparse.Namespace) -> int:
    from failover_hook import daemon  # noqa: PLC0415 - see the module docstring

    return daemon.run(args)
