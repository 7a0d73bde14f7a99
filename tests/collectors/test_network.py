"""Network collector inside a test node pinging a router node that holds several addresses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.collectors.helpers import Samples, collect_on_node, config_data, value
from tests.support.netns import Node, Switch, have_root_and_netns, nodes, run

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]


@dataclass
class Lan:
    switch: Switch
    node: Node
    router: Node
    prefixlen: int
    internal: list[str]
    external: list[str]

    def config(self) -> dict[str, Any]:
        network = {
            "interface": "eth0",
            "internal": self.internal,
            "external": self.external,
            "timeout": "1s",
        }
        return config_data(network=network)


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    with nodes("net", "rt") as (switch, (node, router)):
        router_address = router.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout.split()[3]
        extra = [str(switch.next_address()) for _ in range(3)]
        for address in extra:
            router.run(["ip", "addr", "add", f"{address}/{switch.subnet.prefixlen}", "dev", "eth0"])
        internal = [router_address.split("/")[0], extra[0]]
        yield Lan(switch, node, router, switch.subnet.prefixlen, internal, extra[1:])


def up(found: Samples, target: str, scope: str) -> float:
    return value(found, "gardien_network_target_up", target=target, scope=scope)


def rtt(found: Samples, target: str, scope: str) -> float:
    return value(found, "gardien_network_target_rtt_seconds", target=target, scope=scope)


def targets(lan: Lan) -> list[tuple[str, str]]:
    return [(t, "internal") for t in lan.internal] + [(t, "external") for t in lan.external]


def test_every_target_answers(lan: Lan, tmp_path: Path) -> None:
    found = collect_on_node(lan.node, lan.config(), "network", tmp_path)

    assert value(found, "gardien_network_link_up", interface="eth0") == 1
    for target, scope in targets(lan):
        assert up(found, target, scope) == 1, target
        assert rtt(found, target, scope) > 0, target


def test_one_target_down(lan: Lan, tmp_path: Path) -> None:
    gone = lan.external[0]
    lan.router.run(["ip", "addr", "del", f"{gone}/{lan.prefixlen}", "dev", "eth0"])
    try:
        found = collect_on_node(lan.node, lan.config(), "network", tmp_path)
    finally:
        lan.router.run(["ip", "addr", "add", f"{gone}/{lan.prefixlen}", "dev", "eth0"])

    assert up(found, gone, "external") == 0
    assert rtt(found, gone, "external") == 0
    for target, scope in targets(lan):
        if target != gone:
            assert up(found, target, scope) == 1, target


def test_link_down(lan: Lan, tmp_path: Path) -> None:
    lan.node.run(["ip", "link", "set", "eth0", "down"])
    try:
        found = collect_on_node(lan.node, lan.config(), "network", tmp_path)
    finally:
        lan.node.run(["ip", "link", "set", "eth0", "up"])

    assert value(found, "gardien_network_link_up", interface="eth0") == 0
    for target, scope in targets(lan):
        assert up(found, target, scope) == 0, target


def switch_port(lan: Lan) -> str:
    """The switch's end of the node's eth0 (a veth pair)."""
    (eth0,) = json.loads(lan.node.run(["ip", "-j", "link", "show", "eth0"]).stdout)
    ports = json.loads(run(["ip", "-n", lan.switch.netns, "-j", "link", "show"]).stdout)
    return next(p["ifname"] for p in ports if p["ifindex"] == eth0["link_index"])


def test_carrier_lost(lan: Lan, tmp_path: Path) -> None:
    """The cable is pulled (the switch port goes down): eth0 stays up but loses its carrier."""
    port = switch_port(lan)
    run(["ip", "-n", lan.switch.netns, "link", "set", port, "down"])
    try:
        found = collect_on_node(lan.node, lan.config(), "network", tmp_path)
    finally:
        run(["ip", "-n", lan.switch.netns, "link", "set", port, "up"])

    assert value(found, "gardien_network_link_up", interface="eth0") == 0
    for target, scope in targets(lan):
        assert up(found, target, scope) == 0, target
