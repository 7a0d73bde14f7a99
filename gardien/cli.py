"""The ``gardien`` command: one entry point, one sub-command module per job.

Each command module exposes ``register(subparsers)``, adding its parser with ``func`` set to a
callable ``(args) -> int``.  Only :func:`main` turns exceptions into exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gardien import __version__, exitcodes
from gardien.errors import ConfigError, GardienError

log = logging.getLogger(__name__)

# Modules that contribute sub-commands, in the order ``gardien --help`` lists them.
COMMAND_MODULES = (
    "gardien.commands.check_config",
    "exporter.command",
    "failover_hook.command",
    "failover_hook.cli",
    "gardien.render.command",
    "gardien.lab.command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gardien",
        description="Probes, alert rules and safe failover for active/passive clusters.",
    )
    parser.add_argument("--version", action="version", version=f"gardien {__version__}")
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging threshold (default info)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not name.startswith(exc.name):
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exitcodes.CONFIG_INVALID
    except GardienError as exc:
        print(f"gardien: {exc}", file=sys.stderr)
        return exitcodes.FAILURE
    except KeyboardInterrupt:
        return exitcodes.ABORTED
    return code


if __name__ == "__main__":
    sys.exit(main())
