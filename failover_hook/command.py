"""``gardien hook``: the node agent and Alertmanager webhook receiver of one node.

Only the command line lives here: ``gardien`` imports every command module to build its parser, so
the daemon's imports (Flask, h11, the failover engine) wait until it runs
(:mod:`failover_hook.daemon`).
"""

from __future__ import annotations

import argparse

import psutil

from gardien import options
from gardien.config import ClusterConfig, HookConfig
from gardien.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hook",
        help="run the node agent and Alertmanager webhook receiver "
        f"(default :{HookConfig.model_fields['port'].default})",
    )
    options.CONFIG_FILE.add_to(parser)
    options.NODE.add_to(parser)
    options.STATE_DIR.add_to(parser)
    options.LISTEN_ADDRESS.add_to(
        parser, help_values=options.listen_port_help(HookConfig, "hook.port")
    )
    options.WEB_CONFIG_FILE.add_to(parser)
    options.DRY_RUN.add_to(
        parser, help="decide and report, execute nothing (no move, acquire or release)"
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
