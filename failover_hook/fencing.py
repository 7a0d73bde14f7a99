"""Fencing: make sure a node runs nothing before its groups start elsewhere.

The fence command of a node (``config.fencing[node]``) runs as an argv list through the
CommandRunner, bounded by its timeout; exit 0 means the node is off.  The agent itself is
expected to verify the power state (fence-agents do); gardien trusts exit 0 and nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from failover_hook.outcome import Outcome, Status
from gardien.command_runner import INHERIT, CommandRunner
from gardien.config.model import ClusterConfig

log = logging.getLogger(__name__)


class Fencer:
    """Runs fence commands, one at a time per node.

    When a node fails, every group it ran is moved at once, and each move may have to fence it:
    the moves that ask while a fence of the node runs wait for it and share its success instead
    of fencing the node again (a power fence would cycle it once per group).  Only a fence that
    *ended after* a move asked is shared (the node was off at a time later than the move's
    question), never an older one: the node may be back since.
    """

    def __init__(
        self,
        config: ClusterConfig,
        runner: CommandRunner | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.runner = runner or CommandRunner(env=INHERIT)
        self._clock = clock
        self._locks: dict[str, threading.Lock] = {n: threading.Lock() for n in config.fencing}
        self._last: dict[str, tuple[float, Outcome]] = {}
        """Per node: when its last successful fence ended, and its outcome."""

    def can_fence(self, node: str) -> bool:
        return node in self.config.fencing

    def fence(self, node: str) -> Outcome:
        fence = self.config.fencing.get(node)
        if fence is None:
            return Outcome(Status.REFUSED, f"no fence agent configured for {node}")
        asked = self._clock()
        with self._locks[node]:
            shared = self._last.get(node)
            if shared is not None and shared[0] >= asked:
                return shared[1]
            started = self._clock()
            log.warning("fencing %s: %s", node, fence.command[0])
            result = self.runner.run(fence.command, timeout=fence.timeout)
            took = self._clock() - started
            if result.ok:
                done = Outcome(Status.DONE, f"fenced {node} in {took:.1f} s", None, {"node": node})
                self._last[node] = (self._clock(), done)
                return done
        return Outcome(
            Status.FAILED,
            f"fencing {node} failed: {result.describe()}",
            None,
            {"node": node, "rc": result.returncode},
        )
