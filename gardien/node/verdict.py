"""A node's network verdict, defined once: from its link and which targets of each scope answered.

The hook's watcher judges with :func:`judge` (:mod:`failover_hook.network`), the decision gates
and the choice of a target read the result from every node's status (:mod:`failover_hook.decide`),
and the recording rule ``node:gardien_network_verdict:info`` (:mod:`gardien.render.rules`) writes
the same table in PromQL from the exporter's series; tests/render/test_network_verdict_rules.py
runs every row through both and requires the same answer.

The semantics, as an operator reads the two scopes of ``network`` (docs/alerting.md, "The network
verdict", has the table for one node and for both):

* **internal** targets are the site's own network (gateway, a peer on the LAN), **external** ones
  the world beyond it.  A node that reaches some target with its link up is *not cut off*: the
  faulty part is beyond it, and every node that reaches the same part of the network serves as
  well.  Its verdict is ``degraded-external`` or ``degraded-internal``; it keeps its groups and
  may take others, so a local service failure there still moves the group to a healthy peer.
* A node whose link is down, or that reaches no target at all, is ``isolated``: it cannot serve,
  and its groups move to a peer that is not isolated.  When the peers are isolated as well, the
  fault is the network's (a network-wide outage) and nothing moves: moving would not help.
* ``unknown``: no target is configured, there is nothing to judge by (the link alone is not
  judged, as the rules have no target series to join it with).

Why an internal-only loss is not an isolation: the node's packets still reach the external
targets, which lie *through* the site's network (its gateway), so its link, address and route
work; what failed is the internal targets themselves or their answer to ICMP.  Moving every group
away on that would trade a working service for a move, on every node alike when the targets are
down for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Scope(StrEnum):
    """The ``scope`` label of ``gardien_network_target_up``."""

    INTERNAL = "internal"
    EXTERNAL = "external"


class NetworkState(StrEnum):
    OK = "ok"
    DEGRADED_EXTERNAL = "degraded-external"
    """Internal targets answer, no external one does."""
    DEGRADED_INTERNAL = "degraded-internal"
    """External targets answer, no internal one does."""
    ISOLATED = "isolated"
    """The link is down, or no target answers."""
    UNKNOWN = "unknown"
    """No target configured."""

    @property
    def isolated(self) -> bool:
        return self is NetworkState.ISOLATED

    @property
    def degraded(self) -> bool:
        return self in (NetworkState.DEGRADED_EXTERNAL, NetworkState.DEGRADED_INTERNAL)


DEGRADED_BY_SCOPE: Mapping[Scope, NetworkState] = {
    Scope.INTERNAL: NetworkState.DEGRADED_INTERNAL,
    Scope.EXTERNAL: NetworkState.DEGRADED_EXTERNAL,
}
"""The verdict of a node whose link is up and that reaches targets, but none of this scope."""


@dataclass(frozen=True)
class NetworkVerdict:
    state: NetworkState
    reason: str
    """For people: what the verdict rests on ("no external target answers (192.0.2.1)")."""


def judge(
    link_up: bool, internal: Mapping[str, bool], external: Mapping[str, bool]
) -> NetworkVerdict:
    """The verdict from the link's state and each scope's answers (``{target: answered}``; an
    empty mapping is a scope without targets, which is never "down")."""
    scopes = {Scope.INTERNAL: internal, Scope.EXTERNAL: external}
    if not internal and not external:
        return NetworkVerdict(NetworkState.UNKNOWN, "no network target configured")
    if not link_up:
        return NetworkVerdict(NetworkState.ISOLATED, "link down")
    if not any(any(answers.values()) for answers in scopes.values()):
        return NetworkVerdict(NetworkState.ISOLATED, "no target answers")
    for scope, answers in scopes.items():
        if answers and not any(answers.values()):
            return NetworkVerdict(
                DEGRADED_BY_SCOPE[scope],
                f"no {scope} target answers ({', '.join(answers)})",
            )
    return NetworkVerdict(NetworkState.OK, "link up, every scope answers")


ClusterNetwork = Literal["ok", "isolated", "outage", "unknown"]


def cluster_view(own: NetworkState, others: list[NetworkState]) -> ClusterNetwork:
    """``ok``, ``isolated`` (only this node is cut off) or ``outage`` (every node that answers is
    isolated too): the ``network`` of ``gardien status`` and the outage gate's question.

    ``others`` are the verdicts of the peers that answered; with none, an isolated node cannot
    tell and is called isolated.  A degraded node is ``ok`` here: it is not cut off.
    """
    if not own.isolated:
        return "unknown" if own is NetworkState.UNKNOWN else "ok"
    return "outage" if others and all(s.isolated for s in others) else "isolated"
