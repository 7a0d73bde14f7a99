"""How the engine talks to another node's agent: the PeerClient protocol.

The hook's HTTP client implements it against ``POST /api/v1/groups/<g>/release|acquire`` (a
deciding hook also reads its peers' ``GET /api/v1/status``, through that client directly).  An
unreachable peer is *unknown*, never *down*: calls raise :class:`PeerUnreachable` and the mover
decides (fence, or refuse).
"""

from __future__ import annotations

from typing import Protocol

from failover_hook.outcome import Outcome
from gardien.errors import GardienError


class PeerUnreachable(GardienError):  # noqa: N818 - the name the hook uses
    """The peer's agent did not answer (connection refused, timeout, broken answer)."""


class PeerClient(Protocol):
    def release(self, group: str, move: str | None = None) -> Outcome:
        """Release ``group`` on the peer; its own outcome (FAILED when it could not).

        ``move``: the key of the move it is a step of, which the peer journals (anti-flap)."""
        ...

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        """Acquire ``group`` on the peer (the undo of a release, when a move rolls back);
        ``given_back_by``: the asking node, which has nothing of the group up."""
        ...
