"""The one per-group lock every path claims (failover_hook.locks)."""

from __future__ import annotations

import threading

from failover_hook.locks import GroupLocks


def _claim_elsewhere(locks: GroupLocks, group: str) -> bool:
    got: list[bool] = []

    def claim() -> None:
        with locks.claim(group) as mine:
            got.append(mine)

    thread = threading.Thread(target=claim)
    thread.start()
    thread.join()
    return got[0]


def test_a_claim_is_reentrant_for_its_thread_and_refused_to_others() -> None:
    locks = GroupLocks()
    with locks.claim("php4") as outer:
        assert outer and locks.held("php4")
        with locks.claim("php4") as inner:  # the mover, then the agent, under the hook's claim
            assert inner
        assert locks.held("php4"), "an inner claim ending ends nothing"
        assert not _claim_elsewhere(locks, "php4")
        assert _claim_elsewhere(locks, "java"), "one lock per group"
    assert not locks.held("php4")
    assert _claim_elsewhere(locks, "php4")


def test_a_refused_claim_releases_nothing() -> None:
    locks = GroupLocks()
    ready, done = threading.Event(), threading.Event()

    def hold() -> None:
        with locks.claim("php4"):
            ready.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(10)
    with locks.claim("php4") as mine:
        assert not mine
    assert locks.held("php4")
    done.set()
    holder.join()
    assert not locks.held("php4")
