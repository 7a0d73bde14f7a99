"""``gardien lab up|down|status|exec NODE -- CMD|fence NODE|demo``: the two-node lab (root)."""

from __future__ import annotations

import argparse
import os
import sys

from gardien import exitcodes
from gardien_lab import clusterconfig, lifecycle
from gardien_lab.fence import fence
from gardien_lab.netns import LabError
from gardien_lab.topology import MACHINES, Lab


def _lab(args: argparse.Namespace) -> Lab:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, mounts, loop devices)")
    return Lab(name=args.lab)


def _up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    lifecycle.up(lab, full=not args.groups_only)
    print(lifecycle.format_status(lab, lifecycle.status(lab)))
    return exitcodes.OK


def _down(args: argparse.Namespace) -> int:
    removal = lifecycle.down(_lab(args))
    for left in removal.not_ours:
        print(f"gardien lab down: left {left}", file=sys.stderr)
    for problem in removal.problems:
        print(f"gardien lab down: {problem}", file=sys.stderr)
    return exitcodes.FAILURE if removal.problems else exitcodes.OK


def _status(args: argparse.Namespace) -> int:
    lab = _lab(args)
    print(lifecycle.format_status(lab, lifecycle.status(lab)))
    return exitcodes.OK


def _exec(args: argparse.Namespace) -> int:
    lab = _lab(args)
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        print("gardien lab exec: give a command after --", file=sys.stderr)
        return exitcodes.USAGE
    env = {**os.environ, "GARDIEN_CONFIG": str(clusterconfig.config_path(lab))}
    prefix = lab.prefix_argv(args.machine)
    os.execvpe(prefix[0], [*prefix, *argv], env)  # noqa: S606 - replaces this process on purpose


def _fence(args: argparse.Namespace) -> int:
    problems = fence(_lab(args), args.node)
    for problem in problems:
        print(f"fence {args.node}: {problem}", file=sys.stderr)
    if not problems:
        print(f"fence {args.node}: off")
    return exitcodes.FAILURE if problems else exitcodes.OK


def _demo(args: argparse.Namespace) -> int:
    from gardien_lab.demo import demo  # noqa: PLC0415 - heavy only for this command

    return demo(_lab(args))


def _chaos(args: argparse.Namespace) -> int:
    from gardien_lab.chaos import command  # noqa: PLC0415 - heavy only for this command

    return command.chaos(_lab(args), args.seed, args.faults, args.kinds, args.output)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="the two-node lab on this machine (root)",
        description="Two nodes, a client, a router and a monitoring machine as network "
        "namespaces on this machine, running the real services of the example cluster.",
    )
    parser.add_argument(
        "--lab",
        default=os.environ.get("GARDIEN_LAB", "lab"),
        help="lab instance name (default 'lab': namespaces node1, node2...)",
    )
    sub = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="build the lab and start everything (idempotent)")
    up.add_argument(
        "--groups-only",
        action="store_true",
        help="start the groups only: no AD DC, winbind, exporters, hooks, Prometheus, Alertmanager",
    )
    up.set_defaults(func=_up)
    sub.add_parser("down", help="remove everything the lab made").set_defaults(func=_down)
    sub.add_parser("status", help="placement, health and URLs").set_defaults(func=_status)
    ex = sub.add_parser("exec", help="run a command on a machine of the lab")
    ex.add_argument("machine", choices=MACHINES)
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    ex.set_defaults(func=_exec)
    fe = sub.add_parser("fence", help="the lab's fence agent: power a node off and verify")
    fe.add_argument("node", choices=("node1", "node2"))
    fe.set_defaults(func=_fence)
    sub.add_parser(
        "demo", help="bring the lab up, break php4's Apache, show the group move"
    ).set_defaults(func=_demo)
    from gardien_lab.chaos.command import add_arguments  # noqa: PLC0415 - keeps 'lab' light

    chaos = sub.add_parser(
        "chaos",
        help="random faults from a seed, audited by an independent checker (docs/chaos.md)",
    )
    add_arguments(chaos)
    chaos.set_defaults(func=_chaos)
