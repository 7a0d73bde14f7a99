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
from importlib.metadata import EntryPoint, entry_points

from gardien import __version__, exitcodes
from gardien.errors import ConfigError, GardienError

log = logging.getLogger(__name__)

BASE_COMMAND_MODULES = ("gardien.commands.check_config", "gardien.render.command")
"""The base's own sub-commands."""

ENTRY_POINT_GROUP = "gardien.commands"
"""Where the layers above the base register their command modules (pyproject's entry points): the
base never names the exporter, the hook or the lab.  An entry point named like the sub-command it
adds (``exporter``, ``hook``, ``lab``) is loaded alone when that sub-command runs, so a daemon keeps
in memory only its own command (every module imported to build the full parser, ~3 MiB, would stay
in the daemon's memory for its whole life)."""


def _registered() -> dict[str, EntryPoint]:
    """The command modules of the layers above, by entry point name (first one wins)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return found


def _command_modules(argv: Sequence[str] | None) -> Sequence[str]:
    """The modules to build the parser from: a command's own module alone when it has one."""
    first = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    first.add_argument("--log.level")
    first.add_argument("command", nargs="?")
    registered = _registered()
    everything = [*BASE_COMMAND_MODULES, *(e.value for e in registered.values())]
    try:
        known, _rest = first.parse_known_args(argv)
    except argparse.ArgumentError:
        return everything  # the full parser says what is wrong
    own = registered.get(known.command or "")
    return (own.value,) if own else everything


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
