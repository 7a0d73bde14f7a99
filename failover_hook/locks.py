"""One lock per group: what must not happen twice on a node is two actions on one group."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class GroupLocks:
    """The groups an action holds on this node: one holder per group, never waited for.

    Every path that acts on a group claims it here: the hook's webhook decision (on the target's
    hook only), migrate, the release/acquire API, the mover's execute and its recovery, and the
    agent's acquire and release.  :meth:`claim` does not block: it answers whether the caller got
    the group, and a caller that did not answers "already in progress" (409 over the API) instead
    of queueing a second action.

    A claim is re-entrant for the thread that holds it: the hook claims a group and runs its move
    in the same thread, and the mover, then the agent (the move's local release or acquire),
    claim it again on the way down; those inner claims succeed and end nothing when they end.  Any
    other thread (a second alert, API call or migrate) does not get the group.  A peer's request
    (the target's mover asking this node to release) runs in one of this hook's request threads:
    it is refused only if this node itself acts on the group; the target's own claim is held in
    the target's process, so it never refuses its own request to the source.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders: dict[str, tuple[int, int]] = {}
        """Per claimed group: the holding thread and how many of its claims are open."""

    @contextlib.contextmanager
    def claim(self, group: str) -> Iterator[bool]:
        """True and the group held for the block, or False when another thread holds it."""
        me = threading.get_ident()
        with self._lock:
            holder, depth = self._holders.get(group, (me, 0))
            got = holder == me
            if got:
                self._holders[group] = (me, depth + 1)
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    _holder, depth = self._holders[group]
                    if depth == 1:
                        del self._holders[group]
                    else:
                        self._holders[group] = (me, depth - 1)

    def held(self, group: str) -> bool:
        """Whether an action holds the group now (``move_in_progress`` in the status)."""
        with self._lock:
            return group in self._holders
