"""VIP collector inside a test node: the address on the node's interface, and group_active."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gardien.state import mark_held
from tests.collectors.helpers import collect_on_node, config_data, value
from tests.support.netns import Node, Switch, have_root_and_netns, nodes

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]


@pytest.fixture(scope="module")
def lan() -> Iterator[tuple[Switch, Node]]:
    with nodes("vip") as (switch, (node,)):
        yield switch, node


def test_vip_present_then_removed(lan: tuple[Switch, Node], tmp_path: Path) -> None:
    switch, node = lan
    vip = f"{switch.next_address()}/{switch.subnet.prefixlen}"
    other = f"{switch.next_address()}/{switch.subnet.prefixlen}"
    ip = vip.split("/", maxsplit=1)[0]
    data = config_data(
        groups={
            "web": {"nodes": ["n1"], "vip": {"address": vip, "interface": "eth0"}},
            "db": {
                "nodes": ["n1"],
                "vip": {"address": other, "interface": "eth0"},
                "volume": {"device": "/dev/gardien-absent", "mountpoint": str(tmp_path / "db")},
            },
            "java": {"nodes": ["n1"]},
            "batch": {"nodes": ["n1"]},
        }
    )
    state = tmp_path / "state"
    mark_held(state, "java", True)
    paths = {"state_dir": state}

    node.run(["ip", "addr", "add", vip, "dev", "eth0"])
    node.run(["ip", "addr", "add", other, "dev", "eth0", "label", "eth0:db"])
    try:
        present = collect_on_node(node, data, "vip", tmp_path, paths=paths)
    finally:
        node.run(["ip", "addr", "del", vip, "dev", "eth0"], check=False)
    removed = collect_on_node(node, data, "vip", tmp_path, paths=paths)
    node.run(["ip", "addr", "del", other, "dev", "eth0"], check=False)

    labels = {"group": "web", "address": ip, "interface": "eth0"}
    assert value(present, "gardien_group_vip_present", **labels) == 1
    assert value(present, "gardien_group_active", group="web") == 1
    assert value(removed, "gardien_group_vip_present", **labels) == 0
    assert value(removed, "gardien_group_active", group="web") == 0
    # a labelled address counts; the group is still not active without its volume
    db = {"group": "db", "address": other.split("/", maxsplit=1)[0], "interface": "eth0"}
    assert value(present, "gardien_group_vip_present", **db) == 1
    assert value(present, "gardien_group_active", group="db") == 0
    # groups with neither volume nor VIP: the node agent's record
    assert value(present, "gardien_group_active", group="java") == 1
    assert value(present, "gardien_group_active", group="batch") == 0
