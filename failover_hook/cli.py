"""The operator commands: status, migrate, release, acquire, freeze, unfreeze, history, replay.

They act through the hooks' APIs (node addresses from the config, the token file), so they work
from any host that reaches the hooks.  Every action prints its outcome and exits with a code of
:mod:`gardien.exitcodes`; actions that change where a group runs ask for confirmation (``--force``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from failover_hook import timeline
from failover_hook.client import HttpPeer, read_token
from failover_hook.command import local_node
from failover_hook.freeze import FREEZE_KINDS, merged
from failover_hook.outcome import Outcome, Status
from failover_hook.peers import PeerUnreachable
from failover_hook.status import NodeStatus, RestartStatus
from failover_hook.webhook import PayloadError, UnknownLabelsError, check_labels, parse_payload
from gardien import exitcodes, options
from gardien.config import ClusterConfig, load_config
from gardien.node.verdict import ClusterNetwork, NetworkState, cluster_view

_EXIT = {
    Status.DONE: exitcodes.OK,
    Status.NOTHING_TO_DO: exitcodes.OK,
    Status.IGNORED: exitcodes.OK,
    Status.NOT_MINE: exitcodes.OK,
    Status.SKIPPED: exitcodes.REFUSED,
    Status.REFUSED: exitcodes.REFUSED,
    Status.IN_PROGRESS: exitcodes.REFUSED,
    Status.FAILED: exitcodes.FAILURE,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    options.CONFIG_FILE.add_to(common)
    options.OUTPUT.add_to(common)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
        parser = subparsers.add_parser(name, parents=[common], help=help)
        parser.set_defaults(func=func)
        return parser

    add("status", run_status, "groups x nodes: where each group runs, health, frozen, last move")
    migrate = add("migrate", run_migrate, "move a group by hand")
    migrate.add_argument("group")
    migrate.add_argument("--to", dest="target", required=True, metavar="NODE")
    options.DRY_RUN.add_to(migrate)
    options.FORCE.add_to(
        migrate, help="no confirmation; override frozen and the missing fence agent"
    )
    release = add("release", run_local, "release a group on this node")
    release.add_argument("group")
    options.NODE.add_to(release)
    options.FORCE.add_to(release)
    acquire = add("acquire", run_local, "acquire a group on this node, if no other node holds it")
    acquire.add_argument("group")
    options.NODE.add_to(acquire)
    options.FORCE.add_to(
        acquire,
        help="no confirmation, and acquire without asking the other nodes whether they hold "
        "the group (journaled as forced)",
    )
    for verb in ("freeze", "unfreeze"):
        parser = add(verb, run_freeze, f"{verb} a group or the whole cluster, on every node")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("group", nargs="?")
        which.add_argument("--all", action="store_true", help="the whole cluster")
    history = add("history", run_history, "moves from every node's journal")
    history.add_argument("group", nargs="?")
    history.add_argument(
        "--svg",
        type=Path,
        metavar="FILE",
        help="write the group's last move (or --move) as a timeline picture to FILE",
    )
    history.add_argument("--move", metavar="NODE#ID", help="the move --svg draws")
    replay = add("replay", run_replay, "run a saved Alertmanager payload through the decision")
    replay.add_argument("payload", type=Path)
    replay.add_argument("--execute", action="store_true", help="act (default: dry run)")
    options.FORCE.add_to(replay)


def _peers(config: ClusterConfig) -> dict[str, HttpPeer]:
    token = read_token(config)
    return {name: HttpPeer.for_node(config, name, token) for name in config.nodes}


def _confirm(question: str, force: bool) -> bool:
    if force:
        return True
    # the question goes to stderr: stdout stays the command's output (``--output json``)
    print(f"{question} [y/N] ", end="", flush=True, file=sys.stderr)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _print_outcomes(args: argparse.Namespace, outcomes: dict[str, Outcome | str]) -> int:
    """Print each node's outcome (or why it did not answer); the exit code of the worst one."""
    if args.output == "json":
        print(
            json.dumps(
                {
                    n: o.to_json() if isinstance(o, Outcome) else {"unreachable": o}
                    for n, o in outcomes.items()
                },
                indent=2,
            )
        )
    else:
        for node, outcome in outcomes.items():
            print(
                f"{node}: {outcome if isinstance(outcome, Outcome) else 'unreachable: ' + outcome}"
            )
    codes = [
        _EXIT[o.status] if isinstance(o, Outcome) else exitcodes.UNREACHABLE
        for o in outcomes.values()
    ]
    return max(codes, default=exitcodes.OK)


def _call(peer: HttpPeer, action: Callable[[HttpPeer], Outcome]) -> Outcome | str:
    try:
        return action(peer)
    except PeerUnreachable as exc:
        return str(exc)


# ---- status --------------------------------------------------------------------------------


def _network(node: str, statuses: dict[str, NodeStatus | None]) -> ClusterNetwork:
    """ok, isolated (only this node is cut off) or outage (every node that answers is too)."""
    own = statuses[node]
    if own is None:
        return "unknown"
    others = [s.verdict for n, s in statuses.items() if n != node and s is not None]
    return cluster_view(own.verdict, others)


def _restarts(restart: RestartStatus) -> dict[str, dict[str, float]]:
    """Each restartable service's restarts in place on the active node: used and left in its
    window (docs/config.md, "Restart in place")."""
    return {
        name: {
            "attempts": c.attempts,
            "used": c.used,
            "left": max(c.attempts - c.used, 0),
            "window_seconds": c.window,
        }
        for name, c in restart.services.items()
    }


def cluster_status(config: ClusterConfig) -> dict[str, Any]:
    """The status document of ``gardien status --output json`` (see docs/architecture.md)."""
    statuses: dict[str, NodeStatus | None] = {}
    for name, peer in _peers(config).items():
        try:
            statuses[name] = NodeStatus.model_validate(peer.status())
        except PeerUnreachable:
            statuses[name] = None
    return summarize(config, statuses)


def summarize(config: ClusterConfig, statuses: dict[str, NodeStatus | None]) -> dict[str, Any]:
    """The status document of the nodes' ``statuses`` (None: no answer); the console's too."""
    # nodes that disagree on a freeze (one was down): the newest wins, as in ClusterStatus.view
    freeze = merged([s.freeze for s in statuses.values() if s is not None])
    groups = {}
    for group in config.groups:
        record = freeze.groups.get(group)
        known = {n: s.groups[group] for n, s in statuses.items() if s and group in s.groups}
        holders = [n for n, g in known.items() if g.held]
        active = holders[0] if len(holders) == 1 else None
        ages = [g.last_change_age for g in known.values() if g.last_change_age is not None]
        groups[group] = {
            "active_node": active,
            "held_by": holders,
            "healthy": bool(known[active].agent.get("healthy")) if active else False,
            "frozen": bool(record and record.frozen),
            "settling": any(g.settling for g in known.values()),
            "move_in_progress": any(g.move_in_progress for g in known.values()),
            "last_change_seconds_ago": min(ages) if ages else None,
            "restarting": any(g.restart.restarting for g in known.values()),
            "restarts": _restarts(known[active].restart) if active else {},
        }
    nodes = {
        name: {
            "reachable": s is not None,
            "network": _network(name, statuses),
            "network_verdict": str(s.verdict) if s else "unknown",
            "cluster_frozen": bool(s and s.cluster_frozen),
        }
        for name, s in statuses.items()
    }
    return {"cluster": config.cluster, "groups": groups, "nodes": nodes}


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _status_text(config: ClusterConfig, doc: dict[str, Any]) -> str:
    nodes = list(config.nodes)
    lines = [f"Cluster {doc['cluster']}", "", "Nodes:"]
    for name, node in doc["nodes"].items():
        state = "reachable" if node["reachable"] else "UNREACHABLE"
        frozen = "  cluster FROZEN" if node["cluster_frozen"] else ""
        network = node["network"]
        if NetworkState(node["network_verdict"]).degraded:  # not cut off: say what it lacks
            network += f" ({node['network_verdict']})"
        lines.append(f"  {name:<12} {state:<12} network {network}{frozen}")
    width = max([len("GROUP"), *map(len, config.groups)]) + 2
    columns = "".join(n.ljust(10) for n in nodes)
    header = "GROUP".ljust(width) + columns + "HEALTH   CHANGED    FLAGS"
    lines += ["", header]
    for group, g in doc["groups"].items():
        cells = []
        for node in nodes:
            if not doc["nodes"][node]["reachable"]:
                cells.append("?")
            else:
                cells.append("ACTIVE" if node in g["held_by"] else "-")
        health = "ok" if g["healthy"] else ("stopped" if not g["held_by"] else "FAILED")
        flags = [f for f in ("frozen", "settling", "move_in_progress", "restarting") if g[f]]
        if len(g["held_by"]) > 1:
            flags.append("SPLIT-BRAIN")
        lines.append(
            group.ljust(width)
            + "".join(c.ljust(10) for c in cells)
            + health.ljust(9)
            + _ago(g["last_change_seconds_ago"]).ljust(11)
            + ",".join(flags)
        )
        if g["restarts"]:
            used = "; ".join(
                f"{name} {r['used']} used, {r['left']} left in {r['window_seconds']:g} s"
                for name, r in g["restarts"].items()
            )
            lines.append(f"  restarts on {g['active_node']}: {used}")
    return "\n".join(lines)


def run_status(args: argparse.Namespace) -> int:
    config = load_config(args.config_file, check_files=False)
    doc = cluster_status(config)
    print(json.dumps(doc, indent=2) if args.output == "json" else _status_text(config, doc))
    if not any(n["reachable"] for n in doc["nodes"].values()):
        return exitcodes.UNREACHABLE
    return exitcodes.OK


# ---- actions -------------------------------------------------------------------------------


def run_migrate(args: argparse.Namespace) -> int:
    config = load_config(args.config_file, check_files=False)
    if args.group not in config.groups or args.target not in config.nodes:
        print(f"gardien: unknown group {args.group!r} or node {args.target!r}", file=sys.stderr)
        return exitcodes.USAGE
    if not args.dry_run and not _confirm(f"Move {args.group} to {args.target}?", args.force):
        return exitcodes.ABORTED
    peer = _peers(config)[args.target]
    outcome = _call(peer, lambda p: p.migrate(args.group, args.target, args.dry_run, args.force))
    code = _print_outcomes(args, {args.target: outcome})
    if args.dry_run and isinstance(outcome, Outcome) and args.output == "text":
        print(outcome.details.get("plan", ""))
    return code


def run_local(args: argparse.Namespace) -> int:
    config = load_config(args.config_file, check_files=False)
    if args.group not in config.groups:
        print(f"gardien: unknown group {args.group!r}", file=sys.stderr)
        return exitcodes.USAGE
    node = args.node or local_node(config)
    verb = args.command
    if not _confirm(f"{verb.capitalize()} {args.group} on {node}?", args.force):
        return exitcodes.ABORTED
    peer = _peers(config)[node]
    if verb == "release":
        outcome = _call(peer, lambda p: p.release(args.group))
    else:
        outcome = _call(peer, lambda p: p.acquire(args.group, force=args.force))
    return _print_outcomes(args, {node: outcome})


def run_freeze(args: argparse.Namespace) -> int:
    """Ask one hook, the first of the config's nodes that answers: it learns what every peer it
    reaches knows, records the decision after it and gives it to them.  Exit 0 when every node
    recorded it, UNREACHABLE when some did not (the outcome names them)."""
    config = load_config(args.config_file, check_files=False)
    if args.group is not None and args.group not in config.groups:
        print(f"gardien: unknown group {args.group!r}", file=sys.stderr)
        return exitcodes.USAGE
    frozen = args.command == "freeze"
    group = None if args.all else args.group
    answers: dict[str, Outcome | str] = {}
    for name, peer in _peers(config).items():
        answers[name] = _call(peer, lambda p: p.freeze(group, frozen))
        if isinstance(answers[name], Outcome):
            break
    code = _print_outcomes(args, answers)
    outcome = next((o for o in answers.values() if isinstance(o, Outcome)), None)
    if outcome is None or not outcome.ok:
        return code
    return exitcodes.UNREACHABLE if outcome.details.get("missed") else exitcodes.OK


def run_history(args: argparse.Namespace) -> int:
    config = load_config(args.config_file, check_files=False)
    moves: list[dict[str, Any]] = []
    unreachable = []
    for name, peer in _peers(config).items():
        try:
            moves += [{"node": name, **m} for m in peer.history(args.group)]
        except PeerUnreachable as exc:
            unreachable.append(str(exc))
    moves.sort(key=lambda m: m["started"], reverse=True)
    if args.svg is not None:
        return _write_svg(args, config, moves, unreachable)
    if args.output == "json":
        print(json.dumps(moves, indent=2))
    else:
        for move in moves:
            when = datetime.fromtimestamp(move["started"]).isoformat(sep=" ", timespec="seconds")
            where = f"{move['source'] or '-'} -> {move['target'] or '-'}"
            if move["kind"] == "restart":  # in place: on its node, for its failed services
                where = f"on {move['source']}: {','.join(move.get('services', []))}"
            elif move["kind"] in FREEZE_KINDS:  # the operator's, on the node that recorded it
                where = f"on {move['node']}, {move['trigger']}"
            forced = " (forced)" if move.get("forced") else ""  # the operator's override
            print(
                f"{when}  {move['group']:<10} {move['kind']:<8} {where:<20} "
                f"{move['status'] or 'UNFINISHED'}{forced}: {move['message'] or ''}"
            )
            for note in move.get("notes", []):  # a hook of an older version has none
                print(f"      note: {note}")
            for step in move["steps"]:
                took = f"{step['duration']:.1f} s" if step["duration"] is not None else "-"
                print(f"      {step['state']:<9} {took:>8}  {step['description']}")
    for problem in unreachable:
        print(f"unreachable: {problem}", file=sys.stderr)
    return exitcodes.UNREACHABLE if unreachable and not moves else exitcodes.OK


def _write_svg(
    args: argparse.Namespace,
    config: ClusterConfig,
    entries: list[dict[str, Any]],
    unreachable: list[str],
) -> int:
    """``history GROUP --svg FILE``: the move's timeline, from every node that answered."""
    move = timeline.pick(entries, args.group, args.move)
    for problem in unreachable:
        print(f"unreachable (its steps are missing): {problem}", file=sys.stderr)
    if move is None:
        print(f"gardien: no move {args.move or 'of ' + str(args.group)} found", file=sys.stderr)
        return exitcodes.USAGE
    try:
        decisions = _peers(config)[move["node"]].decisions()
    except PeerUnreachable as exc:
        print(f"unreachable (no decision shown): {exc}", file=sys.stderr)
        decisions = []
    picture = timeline.build(move, entries, decisions, time.time())
    args.svg.write_text(timeline.svg(picture), encoding="utf-8")
    print(f"{picture.title}: {len(picture.bars)} phases drawn in {args.svg}")
    return exitcodes.OK


def run_replay(args: argparse.Namespace) -> int:
    config = load_config(args.config_file, check_files=False)
    body = args.payload.read_bytes()
    try:
        check_labels(parse_payload(body), config)
    except (PayloadError, UnknownLabelsError) as exc:
        print(f"gardien: {args.payload}: {exc}", file=sys.stderr)
        return exitcodes.CONFIG_INVALID
    if args.execute and not _confirm("Act on this payload (moves may run)?", args.force):
        return exitcodes.ABORTED
    results: dict[str, Outcome | str] = {}
    for name, peer in _peers(config).items():
        try:
            for i, outcome in enumerate(peer.decide(body, execute=args.execute)):
                results[f"{name}#{i + 1}"] = outcome
        except PeerUnreachable as exc:
            results[name] = str(exc)
    return _print_outcomes(args, results)
