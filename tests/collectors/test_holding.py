"""One truth of what a node holds: the exporter's ``gardien_group_active`` and the node agent's
``active`` agree on every case built here, and both match what the test reads itself.

A test node (network namespace plus private mount namespace) holds real ext4 images on loop
devices and real addresses on its eth0.  One group names its volume by the loop device, another
by the image file behind its loop device; one group has only a VIP (added with a label), two have
neither (one with the agent's held marker).  In each case the exporter's VIP collector and the
agent's status run inside the node, as in production, and the test checks their answers against
its own reading of ``/proc/<holder>/mountinfo`` and ``ip -o addr`` of the node.  The agent's
resource states (what acquire and release act on) are checked against the same reading.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gardien.state import mark_held
from tests.collectors.helpers import config_data
from tests.support.netns import Node, Switch, have_root_and_netns, nodes

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]

_ANSWERS = """
import json, sys
from pathlib import Path
import gardien.config
from gardien.config import parse_config
from exporter.collectors.vip import VipCollector
from failover_hook.agent import LocalAgent
config = parse_config(Path(sys.argv[1]).read_text())
state = Path(sys.argv[2])
families = VipCollector(config, state_dir=state).collect(5)
exporter = {
    s.labels["group"]: bool(s.value)
    for f in families if f.name == "gardien_group_active" for s in f.samples
}
agent = LocalAgent(config, "n1", state)
statuses = {g: agent.status(g) for g in config.groups}
active = {g: status["active"] for g, status in statuses.items()}
healthy = {g: status["healthy"] for g, status in statuses.items()}
print(json.dumps({"exporter": exporter, "agent": active, "healthy": healthy}))
"""


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


@dataclass
class Site:
    """The test node, its two loop-backed images and the groups configured on them."""

    switch: Switch
    node: Node
    images: list[tuple[Path, str]]
    """(image file, loop device) of volumes a and b."""
    mountpoints: list[Path]
    vips: list[str]
    data: dict[str, Any]
    state: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("holding")
    images: list[tuple[Path, str]] = []
    with nodes("hold") as (switch, (node,)):
        try:
            for name in ("a", "b"):
                image = folder / f"{name}.img"
                run("truncate", "-s", "32M", str(image))
                run("mkfs.ext4", "-q", "-F", "-L", name, str(image))
                images.append((image, run("losetup", "-f", "--show", str(image)).strip()))
            mountpoints = [folder / "web mnt", folder / "files"]  # a space: \040 in mountinfo
            for mountpoint in mountpoints:
                mountpoint.mkdir()
            prefix = switch.subnet.prefixlen
            vips = [f"{switch.next_address()}/{prefix}" for _ in range(2)]
            web = {"device": images[0][1], "mountpoint": str(mountpoints[0])}
            files = {"device": str(images[1][0]), "mountpoint": str(mountpoints[1])}
            groups = {
                "web": {
                    "nodes": ["n1"],
                    "volume": web,
                    "vip": {"address": vips[0], "interface": "eth0"},
                },
                "files": {"nodes": ["n1"], "volume": files},
                "addr": {"nodes": ["n1"], "vip": {"address": vips[1], "interface": "eth0"}},
                "java": {"nodes": ["n1"]},
                "batch": {"nodes": ["n1"]},
            }
            state = folder / "state"
            mark_held(state, "java", True)
            yield Site(switch, node, images, mountpoints, vips, config_data(groups=groups), state)
        finally:
            for mountpoint in (folder / "web mnt", folder / "files"):
                for _ in range(3):  # a mountpoint may hold more than one mount
                    node.run(["umount", str(mountpoint)], check=False)
            for _, loop in images:
                subprocess.run(["losetup", "-d", loop], check=False, timeout=30)


def answers(site: Site) -> dict[str, dict[str, bool]]:
    """The exporter's and the agent's answers, both computed inside the node."""
    config = site.state.parent / "cluster.json"
    config.write_text(json.dumps(site.data))
    argv = [sys.executable, "-c", _ANSWERS, str(config), str(site.state)]
    done = site.node.run(argv, cwd=str(Path(__file__).parents[2]), timeout=120)
    found: dict[str, dict[str, bool]] = json.loads(done.stdout)
    return found


def truth(site: Site) -> dict[str, bool]:
    """What the node holds, read by the test itself: the device on top at each mountpoint (from the
    holder's mountinfo), the addresses of eth0 (``ip -o addr``), the held markers."""
    on_top: dict[str, str] = {}
    for line in Path(f"/proc/{site.node.pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        on_top[fields[4].replace("\\040", " ")] = fields[2]  # the last mount there wins
    listed = site.node.run(["ip", "-o", "addr", "show", "dev", "eth0"]).stdout.split()
    addresses = {listed[i + 1].split("/")[0] for i, word in enumerate(listed) if word == "inet"}

    def mounted(index: int) -> bool:
        number = os.stat(site.images[index][1]).st_rdev
        expected = f"{os.major(number)}:{os.minor(number)}"
        return on_top.get(str(site.mountpoints[index])) == expected

    def present(index: int) -> bool:
        return site.vips[index].split("/")[0] in addresses

    return {
        "web": mounted(0) and present(0),
        "files": mounted(1),
        "addr": present(1),
        "java": (site.state / "held" / "java").exists(),
        "batch": (site.state / "held" / "batch").exists(),
    }


def mount(site: Site, volume: int, mountpoint: int) -> None:
    site.node.run(["mount", site.images[volume][1], str(site.mountpoints[mountpoint])])


def umount(site: Site, mountpoint: int) -> None:
    site.node.run(["umount", str(site.mountpoints[mountpoint])])


def address(site: Site, action: str, vip: str, *label: str) -> None:
    site.node.run(["ip", "addr", action, vip, "dev", "eth0", *label])


def host(vip: str) -> str:
    """The VIP's address alone (another prefix length than configured)."""
    return f"{vip.split('/', maxsplit=1)[0]}/32"


CASES: list[tuple[str, dict[str, bool]]] = [
    ("nothing", {"web": False, "files": False, "addr": False, "java": True, "batch": False}),
    ("web volume by its loop device, no VIP", {"web": False}),
    ("web volume and VIP", {"web": True}),
    ("files volume by its image file; addr VIP under a label", {"files": True, "addr": True}),
    ("web VIP alone", {"web": False, "files": True}),
    ("the wrong device on web's mountpoint", {"web": False, "files": False}),
    ("web VIP with another prefix length", {"web": True}),
]


def test_exporter_and_agent_agree_on_what_the_node_holds(site: Site) -> None:
    steps = [
        lambda: None,
        lambda: mount(site, 0, 0),
        lambda: address(site, "add", site.vips[0]),
        lambda: (mount(site, 1, 1), address(site, "add", site.vips[1], "label", "eth0:addr")),
        lambda: umount(site, 0),
        lambda: (umount(site, 1), mount(site, 1, 0)),
        lambda: (
            umount(site, 0),
            mount(site, 0, 0),
            address(site, "del", site.vips[0]),
            address(site, "add", host(site.vips[0])),
        ),
    ]
    for (case, expected), step in zip(CASES, steps, strict=True):
        step()
        found, independent = answers(site), truth(site)

        assert found["exporter"] == found["agent"], case
        assert found["exporter"] == independent, case
        assert {g: independent[g] for g in expected} == expected, case
        # the agent's resources (what acquire and release act on) read the same tables; a VIP
        # with another prefix length is held, but its resource is in error (it would not add it)
        healthy = found["healthy"]
        assert healthy["files"] == independent["files"], case
        assert healthy["web"] == (independent["web"] and case != CASES[-1][0]), case


def test_a_volume_named_by_a_symlink_only_the_node_has(site: Site) -> None:
    """A SAN names a LUN the same on every node (``/dev/disk/by-id/...``) while the device nodes
    differ: a volume configured through such a name is held where the device it points to *on
    that node* is mounted.  The symlink here lives in a tmpfs of the node's own mount namespace,
    so only a reading made inside the node can follow it."""
    for mountpoint in site.mountpoints:  # from whatever the test before left
        for _ in range(3):
            site.node.run(["umount", str(mountpoint)], check=False)
    for vip in (site.vips[0], host(site.vips[0])):
        site.node.run(["ip", "addr", "del", vip, "dev", "eth0"], check=False)
    by_id = site.state.parent / "by-id"
    by_id.mkdir(exist_ok=True)
    site.node.run(["mount", "-t", "tmpfs", "-o", "size=1m", "by-id", str(by_id)])
    try:
        site.node.run(["ln", "-s", site.images[0][1], str(by_id / "web")])
        assert not (by_id / "web").exists()  # not from here: only in the node
        data = json.loads(json.dumps(site.data))
        data["groups"]["web"]["volume"]["device"] = str(by_id / "web")
        linked = dataclasses.replace(site, data=data)
        mount(site, 0, 0)
        address(site, "add", site.vips[0])

        found, independent = answers(linked), truth(site)

        assert independent["web"]
        assert found["exporter"]["web"] and found["agent"]["web"]
        assert found["healthy"]["web"]  # the volume resource sees it mounted, as acquire would
        umount(site, 0)
        found = answers(linked)
        assert not found["exporter"]["web"] and not found["agent"]["web"]
    finally:
        site.node.run(["umount", str(by_id)], check=False)
