"""``gardien exporter``: serve the probes and node collectors of this node on ``/metrics``.

Only the command line lives here: ``gardien`` imports every command module to build its parser,
so the daemon's imports (prometheus_client, h11, the probe kinds) wait until it runs.
"""

from __future__ import annotations

import argparse

from gardien import options
from gardien.config.model import ExporterConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exporter", help="run the Prometheus exporter of this node (probes, volumes, VIPs...)"
    )
    options.CONFIG_FILE.add_to(parser)
    options.LISTEN_ADDRESS.add_to(
        parser, help_values=options.listen_port_help(ExporterConfig, "exporter.port")
    )
    options.WEB_CONFIG_FILE.add_to(parser)
    options.STATE_DIR.add_to(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from exporter import daemon  # noqa: PLC0415 - see the module docstring

    return daemon.run(args)
