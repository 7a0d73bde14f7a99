"""``gardien check-config F``: validate a cluster config, printing every problem with its place."""

from __future__ import annotations

import argparse

from gardien import exitcodes, options
from gardien.config import load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-config", help="validate a cluster config; exit 0 when valid, 2 otherwise"
    )
    parser.add_argument("file", help="the cluster config (YAML)")
    options.SKIP_FILE_CHECKS.add_to(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.file, check_files=not args.skip_file_checks)
    groups = ", ".join(config.groups) or "none"
    print(
        f"{args.file}: valid: cluster {config.cluster}, {len(config.nodes)} nodes, "
        f"{len(config.groups)} groups ({groups}), {len(config.services)} services"
    )
    return exitcodes.OK
