"""The guard of every acquire: before anything starts, no other node holds the group.

Every node that may run the group (its ``nodes`` but this one) is asked its status over its API
(``resources=0``, as a deciding peer asks) and must answer "not held".  A node that does not answer
may be running the group all the same (a frozen hook's kernel still serves the volume): it counts
as clear only when it was fenced *for this move*, which only the mover that fenced it can say
(:class:`Clearance`, built from the fence step of its journal).  Otherwise the acquire is refused,
naming the holder or the silent node.  ``force`` is the operator's explicit override: no node is
asked, and the acquire is journaled as forced (as is one whose silent node an operator's forced
move vouched for).

Two nodes acquiring at once would each find the other "not held" if "held" meant only "acquired":
an acquiring node reports the group held from before it asks its peers until its acquire ends
(:meth:`failover_hook.agent.LocalAgent.holds`), so of two acquires that overlap, at least one sees
the other and refuses (both may, which is safe).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from failover_hook.peers import PeerUnreachable
from failover_hook.status import GroupStatus

log = logging.getLogger(__name__)


class StatusPeer(Protocol):
    """What the guard asks of another node: its status document (the hook's HTTP client)."""

    def status(self, group: str | None = None, resources: bool = True) -> dict[str, Any]:
        """``GET /api/v1/status?group=G&resources=0``; raises PeerUnreachable."""
        ...


@dataclass(frozen=True)
class Clearance:
    """What the caller of an acquire has already established about the other nodes."""

    fenced: Mapping[str, str] = field(default_factory=dict)
    """Nodes fenced for this move, with the fence's result (``fenced node1 in 0.4 s``): they
    are off, so they are not asked."""
    vouched: tuple[str, ...] = ()
    """Nodes that did not answer and that an operator's forced move (no fence agent) vouched
    for: not asked, and the acquire is journaled as forced.  A node that answers is never
    vouched for: it is asked, even in a forced move."""
    force: bool = False
    """The operator's override of ``gardien acquire --force``: nobody is asked."""
    given_back_by: str | None = None
    """The node that asks for this acquire to give the group back (a move's undo): it says, by
    asking, that nothing of the group is up there (:meth:`LocalAgent.lets_go`), and it may not
    be able to answer a status meanwhile (a hook recovering before it serves)."""

    @property
    def forced(self) -> bool:
        """Whether the operator's word replaced an answer or a fence (the journal's flag)."""
        return self.force or bool(self.vouched)

    def excused(self, node: str) -> str | None:
        """Why ``node`` need not be asked (for the journal), or None when it must be."""
        if node in self.fenced:
            return f"{node} fenced for this move ({self.fenced[node]})"
        if node in self.vouched:
            return f"{node} vouched for by the operator's forced move (no fence agent)"
        if node == self.given_back_by:
            return f"{node} gives the group back (nothing of it is up there)"
        return None


NO_CLEARANCE = Clearance()


@dataclass(frozen=True)
class PeerCheck:
    """What the other nodes that may run a group answered; decided on by :attr:`clear`."""

    group: str
    holders: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()
    """Did not answer (and were not fenced for this move); why, by node, in ``why``."""
    free: tuple[str, ...] = ()
    excused: tuple[str, ...] = ()
    """Not asked: fenced for this move, or vouched for by the operator's forced move (why, by
    node, in ``why``)."""
    why: Mapping[str, str] = field(default_factory=dict)

    @property
    def clear(self) -> bool:
        return not self.holders and not self.silent

    def refusal(self) -> str:
        """Why the acquire is refused (only when not :attr:`clear`), for people."""
        if self.holders:
            return f"refused: {self.group} is held by {', '.join(self.holders)}"
        return (
            f"refused: {', '.join(self.silent)} did not answer whether it holds {self.group} "
            "and was not fenced for this move"
        )

    def describe(self) -> str:
        """For the journal: ``not held by node1; node3 fenced for this move (fenced node3...)``."""
        parts = []
        if self.holders:
            parts.append(f"held by {', '.join(self.holders)}")
        if self.silent:
            parts.append(f"no answer from {', '.join(self.silent)}")
        if self.free:
            parts.append(f"not held by {', '.join(self.free)}")
        parts += [self.why[n] for n in self.excused]
        return "; ".join(parts) or "no other node may run it"

    def details(self) -> dict[str, Any]:
        """The refusal's data: who holds it, who did not answer and why."""
        return {"holders": list(self.holders), "silent": {n: self.why[n] for n in self.silent}}


class Guard:
    """Asks the other nodes of a group whether they hold it, all at once, each within its
    client's own timeout (``hook.request_timeout`` for the hook's)."""

    def __init__(self, node: str, peers: Mapping[str, StatusPeer]) -> None:
        self.node = node
        self.peers = dict(peers)

    def check(self, group: str, nodes: tuple[str, ...], clearance: Clearance) -> PeerCheck:
        others = [n for n in nodes if n != self.node]
        excuses = {n: why for n in others if (why := clearance.excused(n)) is not None}
        excused = tuple(excuses)
        asked = [n for n in others if n not in excuses]
        answers: dict[str, bool | str] = {}
        if asked:
            with ThreadPoolExecutor(max_workers=len(asked), thread_name_prefix="guard") as pool:
                calls = {n: pool.submit(self._holds, n, group) for n in asked}
            answers = {n: call.result() for n, call in calls.items()}
        return PeerCheck(
            group,
            holders=tuple(n for n in asked if answers[n] is True),
            silent=tuple(n for n in asked if isinstance(answers[n], str)),
            free=tuple(n for n in asked if answers[n] is False),
            excused=excused,
            why={**excuses, **{n: a for n, a in answers.items() if isinstance(a, str)}},
        )

    def _holds(self, node: str, group: str) -> bool | str:
        """Whether ``node`` says it holds ``group``; a string says why it did not answer."""
        peer = self.peers.get(node)
        if peer is None:
            return "no client for it"
        try:
            document = peer.status(group, resources=False)
            return GroupStatus.model_validate(document["groups"][group]).held
        except PeerUnreachable as exc:
            log.warning("guard of %s: %s did not answer: %s", group, node, exc)
            return str(exc)
        except (KeyError, TypeError, ValueError) as exc:
            return f"unexpected status: {type(exc).__name__}: {exc}"
