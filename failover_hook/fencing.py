"""Fencing: make sure a node runs nothing before its groups start elsewhere.

The fence command of a node (``config.fencing[node]``) runs as an argv list through the
CommandRunner, bounded by its timeout; exit 0 means the node is off.  The agent itself is
expected to verify the power state (fence-agents do); gardien trusts exit 0 and nothing else.
"""

from __future__ import annotations

import logging
import time

from failover_hook.outcome import Outcome, Status
from gardien.command_runner import INHERIT, CommandRunner
from gardien.config.model import ClusterConfig

log = logging.getLogger(__name__)


class Fencer:
    def __init__(self, config: ClusterConfig, runner: CommandRunner | None = None) -> None:
        self.config = config
        self.runner = runner or CommandRunner(env=INHERIT)

    def can_fence(self, node: str) -> bool:
        return node in self.config.fencing

    def describe(self, node: str) -> str:
        fence = self.config.fencing.get(node)
        return " ".join(fence.command) if fence else "no fence agent configured"

    def fence(self, node: str) -> Outcome:
        fence = self.config.fencing.get(node)
        if fence is None:
            return Outcome(Status.REFUSED, f"no fence agent configured for {node}")
        started = time.monotonic()
        log.warning("fencing %s: %s", node, fence.command[0])
        result = self.runner.run(fence.command, timeout=fence.timeout)
        took = time.monotonic() - started
        if result.ok:
            return Outcome(Status.DONE, f"fenced {node} in {took:.1f} s", None, {"node": node})
        return Outcome(
            Status.FAILED,
            f"fencing {node} failed: {result.describe()}",
            None,
            {"node": node, "rc": result.returncode},
        )
