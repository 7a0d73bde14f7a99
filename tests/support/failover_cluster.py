"""A two-node cluster for the failover engine's tests and benchmarks, built from real parts.

Two nodes and a client as namespaces on one switch (:mod:`tests.support.netns`), a loop-mounted
ext4 image as the group's volume (mounted only in the active node's mount namespace), a VIP of the
switch's subnet and a real Apache whose config, pid file and pages live on the volume.  Each node
runs the agent and the mover inside itself (:mod:`tests.support.agent_host`).  Everything is
removed at the end, including after a fence killed a node.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from failover_hook.journal import Journal, MoveRecord
from failover_hook.outcome import Outcome
from gardien_lab.daemons import apache
from tests.support import agent_host
from tests.support.netns import Node, Switch, run

GROUP = "web"
PAGE = "gardien lab web OK"
FENCE_SCRIPT = Path(__file__).with_name("fence_test_node.py")


@dataclass
class Cluster:
    root: Path
    switch: Switch
    nodes: dict[str, Node]
    client: Node
    vip: ipaddress.IPv4Address
    loop: str
    mountpoint: Path
    hosts: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def apache(self) -> apache.ApacheInstance:
        return apache.ApacheInstance(GROUP, self.mountpoint / "www", str(self.vip))

    def config(
        self,
        fencing: bool = False,
        expect: str = PAGE,
        start_timeout: str = "20s",
        stop_timeout: str = "10s",
        garp_interval: str = "50ms",
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cluster": "test",
            "nodes": {name: {"address": self.address(name)} for name in self.nodes},
            "groups": {
                GROUP: {
                    "nodes": list(self.nodes),
                    "volume": {
                        "device": self.loop,
                        "mountpoint": str(self.mountpoint),
                        "stop_timeout": "10s",
                    },
                    "vip": {
                        "address": f"{self.vip}/{self.switch.subnet.prefixlen}",
                        "interface": "eth0",
                        "garp_count": 2,
                        "garp_interval": garp_interval,
                    },
                    "services": [
                        {
                            "name": "apache-web",
                            "start": apache.start_argv(self.apache),
                            "stop": apache.stop_argv(self.apache),
                            "process": {"pidfile": str(self.apache.pidfile)},
                            "probes": [
                                {
                                    "http": {
                                        "url": f"http://{self.vip}/",
                                        "expect_regex": expect,
                                        "timeout": "2s",
                                    }
                                }
                            ],
                            "start_timeout": start_timeout,
                            "stop_timeout": stop_timeout,
                        }
                    ],
                }
            },
        }
        if fencing:
            data["fencing"] = {
                name: {
                    "command": [sys.executable, str(FENCE_SCRIPT), str(node.pid), node.netns],
                    "timeout": "20s",
                }
                for name, node in self.nodes.items()
            }
        return data

    def address(self, name: str) -> str:
        out = run(["ip", "-n", self.nodes[name].netns, "-o", "-4", "addr", "show", "eth0"]).stdout
        return out.split("inet ")[1].split("/")[0]

    @property
    def config_file(self) -> Path:
        return self.root / "cluster.yml"

    def write_config(self, **options: Any) -> None:
        self.config_file.write_text(yaml.safe_dump(self.config(**options)))

    def state_dir(self, name: str) -> Path:
        return self.root / f"{name}-state"

    def sock(self, name: str) -> Path:
        return self.root / f"{name}.sock"

    def start_host(self, name: str) -> None:
        peers = {other: self.sock(other) for other in self.nodes if other != name}
        self.hosts[name] = agent_host.start(
            self.nodes[name].prefix(),
            self.config_file,
            name,
            self.state_dir(name),
            self.sock(name),
            peers,
        )

    def kill_host(self, name: str) -> None:
        proc = self.hosts.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def call(self, name: str, op: str, **request: Any) -> Any:
        return agent_host.call(self.sock(name), {"op": op, **request})

    def outcome(self, name: str, op: str, **request: Any) -> Outcome:
        return Outcome.from_json(self.call(name, op, group=GROUP, **request))

    def journal(self, name: str) -> Journal:
        return Journal.in_state_dir(self.state_dir(name))

    def moves(self, name: str) -> list[MoveRecord]:
        journal = self.journal(name)
        try:
            return [m for m in journal.history(GROUP) if m.kind == "move"]
        finally:
            journal.close()

    # -- what the nodes look like from outside -------------------------------------------------

    def mounted(self, name: str) -> bool:
        node = self.nodes[name]
        with contextlib.suppress(OSError):
            return f" {self.mountpoint} " in node.mounts()
        return False

    def has_vip(self, name: str) -> bool:
        node = self.nodes[name]
        out = run(["ip", "-n", node.netns, "-o", "addr", "show"], check=False).stdout
        return f"inet {self.vip}/" in out

    def on_volume(self, name: str, rel: str) -> Path:
        """A file of the volume as seen by node ``name`` (through its holder's root)."""
        return Path(f"/proc/{self.nodes[name].pid}/root") / self.mountpoint.relative_to("/") / rel

    def page(self) -> str | None:
        """The page the client gets on the VIP (None when nothing answers)."""
        result = self.client.run(["curl", "-sS", "-m", "3", f"http://{self.vip}/"], check=False)
        return result.stdout if result.returncode == 0 else None


def _prepare_volume(cluster: Cluster) -> None:
    """mkfs, then write Apache's config and page onto the volume from node1's mount namespace."""
    image = cluster.root / "web.img"
    run(["truncate", "-s", "64M", str(image)])
    run(["mkfs.ext4", "-q", "-F", "-L", "web", str(image)])
    cluster.loop = run(["losetup", "-f", "--show", str(image)]).stdout.strip()
    node1 = cluster.nodes["node1"]
    node1.run(["mount", cluster.loop, str(cluster.mountpoint)])
    try:
        apache.write_config(
            cluster.apache, {"index.html": PAGE + "\n"}, fs_root=Path(f"/proc/{node1.pid}/root")
        )
    finally:
        node1.run(["umount", str(cluster.mountpoint)])


def _destroy_node(node: Node) -> None:
    """Node.destroy, also for a node whose holder a fence already killed."""
    try:
        node.destroy()
    except OSError:
        with contextlib.suppress(Exception):
            node._holder.kill()
            node._holder.wait(timeout=5)
        run(["ip", "netns", "del", node.netns], check=False)


@contextlib.contextmanager
def cluster(**config: Any) -> Iterator[Cluster]:
    """node1 and node2 with their agent hosts running, the group held by nobody yet."""
    root = Path(tempfile.mkdtemp(prefix="gardien-failover-"))
    root.chmod(0o755)  # Apache's user must reach the mountpoint
    switch = Switch()
    made: list[Node] = []
    built: Cluster | None = None
    try:
        for name in ("node1", "node2", "client"):
            node = Node(name)
            made.append(node)
            switch.plug(node)
        mountpoint = root / "mnt" / GROUP
        mountpoint.mkdir(parents=True)
        built = Cluster(
            root,
            switch,
            {"node1": made[0], "node2": made[1]},
            made[2],
            switch.next_address(),
            "",
            mountpoint,
        )
        _prepare_volume(built)
        built.write_config(**config)
        for name in built.nodes:
            built.start_host(name)
        yield built
    finally:
        if built is not None:
            for name in list(built.hosts):
                built.kill_host(name)
        for node in made:
            _destroy_node(node)
        switch.destroy()
        if built is not None and built.loop:
            run(["losetup", "-d", built.loop], check=False)
        shutil.rmtree(root, ignore_errors=True)
