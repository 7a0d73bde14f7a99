"""The one way gardien waits for something: a deadline, and polling until it passes.

Every bounded wait (a service to die, an address to leave, a peer to answer, a daemon to start)
goes through :func:`wait_for`: it polls at short pauses first (most waits end quickly), doubling
up to ``interval``, and never sleeps past the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Deadline:
    """The end of an action's time budget; every wait and command inside it uses what is left."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, at_least: float = 0.0) -> float:
        return max(self.end - time.monotonic(), at_least)

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end


def pauses(longest: float, first: float = 0.01) -> Iterator[float]:
    """Pauses between polls: short at first (most waits end quickly), doubling up to ``longest``."""
    pause = min(first, longest)
    while True:
        yield pause
        pause = min(pause * 2, longest)


def wait_for(
    probe: Callable[[], T], deadline: Deadline | float, interval: float = 0.05
) -> T | None:
    """``probe()``'s first truthy answer, polled until ``deadline`` (a :class:`Deadline` or
    seconds from now) passes; None when it never answered.  The probe runs at least once."""
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    for pause in pauses(interval):
        answer = probe()
        if answer:
            return answer
        if deadline.passed:
            return None
        time.sleep(min(pause, deadline.left()))
    raise AssertionError("pauses() never ends")


def wait_until(
    check: Callable[[], bool], deadline: Deadline | float, interval: float = 0.05
) -> bool:
    """Poll ``check`` until it is true or the deadline passes; whether it became true."""
    return wait_for(check, deadline, interval) is not None
