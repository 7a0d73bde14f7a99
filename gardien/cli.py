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
    "gardien_lab.command",
)

# Daemons get a parser of their own command only: every module imported to build the full parser
# (render, lab, the operator CLI: ~3 MiB) would stay in the daemon's memory for its whole life.
DAEMON_COMMANDS = {"exporter": "exporter.command", "hook": "failover_hook.command"}


def _command_modules(argv: Sequence[str] | None) -> Sequence[str]:
    """The modules to build the parser from: the daemon's alone when ``argv`` runs a daemon."""
    first = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    first.add_argument("--log.level")
    first.add_argument("command", nargs="?")
    try:
        known, _rest = first.parse_known_args(argv)
    except argparse.ArgumentError:
        return COMMAND_MODULES  # the full parser says what is wrong
    daemon = DAEMON_COMMANDS.get(known.command or "")
    return (daemon,) if daemon else COMMAND_MODULES


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
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
        help="logging threshold (default %(default)s)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _command_modules(argv):
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
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
