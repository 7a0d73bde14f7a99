"""A group's failure confirmed on its node right before the move (``hook.confirm_failure``).

``GardienGroupFailed`` says that a probe of the group failed on its node when Prometheus last
evaluated the rules.  A ``for`` on the rule makes that certain by waiting, and every second of
it is a second of outage.  Instead, the target's hook asks the group's node for its status with
the group's resources checked up to the first that fails (``GET
/api/v1/status?group=G&resources=until-failure``: each resource's monitor in order, the services'
probes run again there, bounded by half that node's ``request_timeout``) and moves the group only
when something fails there now.  A probe that failed once (a slow moment, a scrape
under load) passes again: the move is skipped and the outcome says so.  A crash fails at once (no
process), a hang by the probe's own timeout (or the status's budget: a check that did not answer
in time is a failure), a wrong page as the probe says.

A node that does not answer can neither confirm nor deny: the move goes on as it always has
(the mover asks it to release, and fences it only once it is confirmed gone,
failover_hook/silence.py).  Neither can a hook of an older version (it refuses the query, or
its status carries no check): the alert decides.  Node alerts (isolated, down) are never
confirmed this way: the node is the fault, not one of its groups.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failover_hook.client import HttpPeer
from failover_hook.decide import Move
from failover_hook.outcome import Outcome, Status
from failover_hook.peers import PeerUnreachable
from failover_hook.status import NodeStatus


@dataclass(frozen=True)
class Confirmation:
    """What the group's node said when asked: ``failed`` is the answer, ``what`` tells it."""

    node: str
    failed: bool | None
    """True: a resource of the group fails there now; False: every one runs; None: unknown."""
    what: str
    took: float
    """Seconds the question took, answer included."""

    def note(self) -> str:
        """What the source said, for the log and, of a move that goes on, the plan's note."""
        if self.failed:
            return f"failure confirmed on {self.node} in {self.took:.2f} s: {self.what}"
        if self.failed is None:
            return f"failure not confirmed ({self.what}): moving on the alert"
        return f"not failing on {self.node} now ({self.what}): not moving"


def _failing(agent: dict[str, Any]) -> str:
    """The first resource the agent's check found not running, with its state and reason."""
    if "unchecked" in agent:
        return str(agent["unchecked"])
    for name, found in agent.get("resources", {}).items():
        state = str(found.get("state"))
        if state != "running":
            reason = found.get("reason") or "no reason given"
            return f"{name} {state.replace('_', ' ')} ({reason})"
    return "not healthy"


def ask(peer: HttpPeer, group: str, clock: Callable[[], float] = time.monotonic) -> Confirmation:
    """Whether ``group`` fails on ``peer``'s node now, by that node's own check of it."""
    started = clock()
    try:
        document = NodeStatus.model_validate(peer.status(group, until_failure=True))
    except (PeerUnreachable, ValueError) as exc:
        return Confirmation(
            peer.name, None, f"{peer.name} did not answer: {exc}", clock() - started
        )
    took = clock() - started
    status = document.groups.get(group)
    agent = status.agent if status is not None else {}
    if "healthy" not in agent:
        return Confirmation(peer.name, None, f"{peer.name} reported no check of {group}", took)
    if agent["healthy"]:
        return Confirmation(peer.name, False, f"every resource of {group} runs", took)
    return Confirmation(peer.name, True, _failing(agent), took)


def not_confirmed(move: Move, confirmation: Confirmation) -> Outcome:
    """The skip of a move whose failure its source does not confirm."""
    return Outcome(
        Status.SKIPPED,
        f"skipped: {move.group} not failing on {confirmation.node} now "
        f"({confirmation.what}, checked there in {confirmation.took:.2f} s)",
        move.group,
        {"gate": "confirm", "node": confirmation.node, "checked_seconds": confirmation.took},
    )
