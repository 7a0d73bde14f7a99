"""``gardien check-config F``: validate a cluster config, printing every problem with its place.

Two kinds of checks, printed apart.  The *file* checks (fields, cross-references, the files it
names) say whether the config is valid anywhere; they are the config loader's.  The *machine*
checks compare the config with what this host shows of it, and only where it shows it: a volume
with ``mmp: true`` whose device exists here must have ext4's MMP (``dumpe2fs -h``), with an update
interval the volume's start budget covers.  A device that does not exist here is not a problem (a
host that is not a node, or a SAN path not presented yet): it is listed as not checked.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from gardien import exitcodes, options
from gardien.command_runner import CommandRunner
from gardien.config import ClusterConfig, load_config
from gardien.config.loader import place_in_file
from gardien.node.mmp import MmpProblem, MmpState, describe_problem, problem_of, read_mmp


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a cluster config, then check it against this machine (MMP volumes); "
        "exit 0 when both pass, 2 otherwise",
    )
    parser.add_argument("file", help="the cluster config (YAML)")
    options.SKIP_FILE_CHECKS.add_to(parser)
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class VolumeCheck:
    """One ``mmp: true`` volume as this machine shows it: ``found`` is None when its device is
    not here (not checked)."""

    group: str
    found: MmpState | None
    problem: MmpProblem | None


def check_machine(config: ClusterConfig, runner: CommandRunner) -> list[VolumeCheck]:
    """Every volume configured ``mmp: true``, checked on its device where it exists here."""
    checks = []
    for group, spec in config.groups.items():
        volume = spec.volume
        if volume is None or not volume.mmp:
            continue
        if not os.path.exists(volume.device):
            checks.append(VolumeCheck(group, None, None))
            continue
        found = read_mmp(volume.device, runner)
        checks.append(VolumeCheck(group, found, problem_of(volume, found)))
    return checks


def run(args: argparse.Namespace) -> int:
    config = load_config(args.file, check_files=not args.skip_file_checks)
    groups = ", ".join(config.groups) or "none"
    print(
        f"{args.file}: valid: cluster {config.cluster}, {len(config.nodes)} nodes, "
        f"{len(config.groups)} groups ({groups}), {len(config.services)} services"
    )
    checks = check_machine(config, CommandRunner())
    if not checks:
        return exitcodes.OK
    problems = [c for c in checks if c.problem is not None]
    print(
        f"machine checks ({socket.gethostname()}): {len(checks)} volume(s) with mmp: true, "
        f"{len(problems)} problem(s)"
    )
    for check in checks:
        volume = config.groups[check.group].volume
        assert volume is not None
        if check.found is None:
            print(f"  groups.{check.group}.volume: {volume.device} not here: not checked")
        elif check.problem is None:
            print(
                f"  groups.{check.group}.volume: {volume.device} has MMP, updated every "
                f"{check.found.update_interval} s"
            )
    for check in problems:
        volume = config.groups[check.group].volume
        assert volume is not None and check.found is not None and check.problem is not None
        place = place_in_file(Path(args.file), ("groups", check.group, "volume", "mmp"))
        what = describe_problem(volume, check.found, check.problem)
        print(f"{args.file}: {place}: on this machine: {what}", file=sys.stderr)
    return exitcodes.CONFIG_INVALID if problems else exitcodes.OK
