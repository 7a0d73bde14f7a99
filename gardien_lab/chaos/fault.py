"""What a fault of the campaign is: its kind (how it is drawn and injected, how much it may
move), the fault injected (how to heal it), and what a kind draws from (the campaign's random
generator and the placement of the moment).  The kinds themselves: :mod:`.service_faults` and
:mod:`.node_faults`, registered in :mod:`.kinds`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gardien_lab.topology import NODES, Lab

HOLD = (2.0, 12.0)
"""How long most faults are held (seconds): longer than a failed probe takes to move a group."""
LONG_HOLD = (2.0, 50.0)
"""A silent node is fenced only once Prometheus and the peer's retries agree (about 30-40 s in
the lab): a node frozen, off or cut off is held from a blip to well past that."""

RESTART_SEC = 2.0
"""``RestartSec`` of contrib/systemd's gardien-hook and gardien-exporter units."""

SERVICES = {
    "apache": (("php4", "php5"), 0),
    "samba": (("php4", "php5"), 1),
    "mariadb": (("mysql1", "mysql2"), 0),
    "tomcat": (("java",), 0),
}
"""Service kind: the groups that run one, and its index among the group's services."""


@dataclass(frozen=True)
class Fault:
    """An injected fault: what it is (for people) and how to heal it."""

    kind: str
    description: str
    node: str | None
    heal: Callable[[], None]


@dataclass
class Context:
    lab: Lab
    rng: random.Random
    placement: dict[str, str]
    """Each group's node at the draw (the campaign starts a trial only when each runs on one)."""

    def groups_on(self, node: str, among: tuple[str, ...]) -> list[str]:
        return [g for g in among if self.placement.get(g) == node]

    def pick_node(self, node: str | None) -> str:
        return node if node is not None else self.rng.choice(NODES)


Inject = Callable[[Context, "str | None"], "Fault | None"]


@dataclass(frozen=True)
class Kind:
    name: str
    inject: Inject
    moves_at_most: int | None = None
    """Moves the fault may cause at most (0: nothing may move); None: as many as it needs."""
    on_one_node: bool = True
    """It acts on one node (it can be one of ``two-at-once``'s pair)."""
    held: bool = True
    """The fault lasts until healed (a link down, a stopped process); False: it is over once
    injected (a kill: what comes next is gardien's, or the supervisor's, to do)."""
    hold: tuple[float, float] = HOLD
    """How long the fault is held, drawn uniformly (seconds)."""


def nothing() -> None:
    """The heal of a fault that gardien itself must repair (a crashed service: the move)."""
