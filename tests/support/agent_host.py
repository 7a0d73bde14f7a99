"""Runs a node's agent and mover *inside* a test node, answering on a Unix socket.

Production runs the hook inside the node; the tests do the same with this small process started
through the node's ``nsenter`` prefix, so every action (mount, ip, arping, apachectl, probes
from Python) happens in the node's namespaces.  Unix sockets are reached through the filesystem,
which all test nodes share, so the test process and the other node's mover reach it from any
network namespace.

Protocol: one JSON request per connection, one JSON answer (``{"ok": ..., "result": ...}``).
:class:`SocketPeer` is the in-process PeerClient the movers use to reach another node's host.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import socketserver
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from failover_hook.agent import LocalAgent
from failover_hook.fencing import Fencer
from failover_hook.guard import Clearance
from failover_hook.move import Mover
from failover_hook.outcome import Outcome
from failover_hook.peers import PeerUnreachable
from failover_hook.processes import become_subreaper
from failover_hook.recovery import recover
from gardien.command_runner import INHERIT, CommandRunner
from gardien.config.loader import load_config
from gardien.polling import wait_until

REPO = Path(__file__).resolve().parents[2]


def call(sock: Path, request: dict[str, Any], timeout: float = 120.0) -> Any:
    """Send one request to a host; its ``result`` (raises PeerUnreachable if it does not answer)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(sock))
            conn.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise PeerUnreachable(f"{sock.name}: {exc}") from exc
    if not data:
        raise PeerUnreachable(f"{sock.name}: connection closed without an answer")
    answer = json.loads(data)
    if not answer["ok"]:
        raise RuntimeError(answer["error"])
    return answer["result"]


class SocketPeer:
    """PeerClient over a host's Unix socket."""

    def __init__(self, sock: Path, timeout: float = 120.0) -> None:
        self.sock = sock
        self.timeout = timeout

    def release(self, group: str, move: str | None = None) -> Outcome:
        """``move`` is not passed on: the engine's test hosts journal releases as "api"."""
        return Outcome.from_json(call(self.sock, {"op": "release", "group": group}, self.timeout))

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        request = {"op": "acquire", "group": group, "force": force, "given_back_by": given_back_by}
        return Outcome.from_json(call(self.sock, request, self.timeout))

    def status(self, group: str | None = None, resources: bool = True) -> dict[str, Any]:
        """What the guard of an acquire reads: ``{"groups": {group: {"held": ...}}}``, within
        the 5 s of the hook's ``request_timeout`` in the tests (a frozen host never answers)."""
        held = call(self.sock, {"op": "held", "group": group}, timeout=5.0)
        return {"groups": {group: {"held": held}}}


class Host:
    def __init__(
        self, config_file: Path, node: str, state_dir: Path, peers: dict[str, Path]
    ) -> None:
        config = load_config(config_file)
        self.runner = CommandRunner(env=INHERIT, record=True)  # as the daemon's
        clients = {name: SocketPeer(path) for name, path in peers.items()}
        self.agent = LocalAgent(config, node, state_dir, self.runner, peers=clients)
        self.mover = Mover(
            config, node, self.agent.journal, self.agent, clients, Fencer(config, self.runner)
        )

    def handle(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        group = request.get("group", "")
        if op == "acquire":
            clearance = Clearance(
                force=request.get("force", False), given_back_by=request.get("given_back_by")
            )
            return self.agent.acquire(group, clearance=clearance).to_json()
        if op == "release":
            return self.agent.release(group).to_json()
        if op == "status":
            return self.agent.status(group)
        if op == "held":
            return self.agent.holds(group)
        if op == "plan":
            return self.mover.plan(group, request["source"], request["target"]).describe()
        if op == "move":
            plan = self.mover.plan(group, request["source"], request["target"])
            return self.mover.execute(plan, force=request.get("force", False)).to_json()
        if op == "recover":
            return [o.to_json() for o in recover(self.mover)]
        if op == "ran":
            return self.runner.ran
        raise ValueError(f"unknown op {op!r}")


def serve(host: Host, sock: Path) -> None:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                result = {"ok": True, "result": host.handle(json.loads(self.rfile.readline()))}
            except Exception as exc:
                logging.exception("request failed")
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(result).encode() + b"\n")

    sock.unlink(missing_ok=True)
    with socketserver.ThreadingUnixStreamServer(str(sock), Handler) as server:
        server.daemon_threads = True
        server.serve_forever()


def start(
    prefix: Sequence[str],
    config_file: Path,
    node: str,
    state_dir: Path,
    sock: Path,
    peers: dict[str, Path],
    timeout: float = 20.0,
) -> subprocess.Popen[bytes]:
    """Start a host on a node (``prefix``: the node's nsenter argv) and wait until it answers."""
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "tests.support.agent_host",
        "--config",
        str(config_file),
        "--node",
        node,
        "--state-dir",
        str(state_dir),
        "--socket",
        str(sock),
    ]
    for name, path in peers.items():
        argv += ["--peer", f"{name}={path}"]
    log = (state_dir.parent / f"{node}-host.log").open("ab")
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )

    def answers() -> bool:
        try:
            call(sock, {"op": "ran"}, timeout=2)
        except PeerUnreachable:
            return False
        return True

    if wait_until(lambda: proc.poll() is not None or answers(), timeout) and proc.poll() is None:
        return proc
    proc.kill()
    raise RuntimeError(f"agent host of {node} did not start (see {log.name})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--peer", action="append", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    become_subreaper()
    peers = {p.split("=", 1)[0]: Path(p.split("=", 1)[1]) for p in args.peer}
    serve(Host(args.config, args.node, args.state_dir, peers), args.socket)


if __name__ == "__main__":
    main()
