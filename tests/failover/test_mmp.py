"""ext4 MMP below gardien: one image, one loop device per node, the kernel refusing a second owner.

Two test nodes (network and mount namespaces) attach their own loop device to the same sparse
image (``mkfs.ext4 -O mmp -E mmp_update_interval=1``), as two SAN nodes see one LUN through
device nodes of their own, and each sees it under the same path: a tmpfs private to the node
holds a symlink to its loop device, which is the volume's ``device`` in the config (a SAN's
``/dev/disk/by-id`` name).  The agent runs inside a node, as in production, without peers to
ask (the guard is not what is tested here: this is what stops a mount the guard let through).

What is proven is read by the test itself: the kernel's own messages (``/dev/kmsg``), the mount
command's exit status and ``/proc/<holder>/mountinfo`` of each node.

An unclean stop cannot be made by killing the holder's namespace: the kernel then unmounts the
filesystem, and a clean unmount writes the "clean" sequence (measured: the next mount does not
wait; nor does it after an ext4 shutdown ioctl, nor is device-mapper in these kernels to cut the
I/O).  The test leaves the image as a node that lost power does: a copy taken while the holder
had it mounted (MMP block with a live sequence, journal not checkpointed) is written back after
the holder unmounted, so the next mount meets what a fenced node leaves on its LUN.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gardien.node.mmp import check_wait
from tests.support.kmsg import kernel_messages, mmp_refused
from tests.support.netns import Node, have_root_and_netns, nodes

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.timeout(240),
]

REPO = Path(__file__).parents[2]
GROUP = "data"

_ACT = """
import json, sys
from pathlib import Path
import gardien.config
from gardien.config import load_config
from failover_hook.agent import LocalAgent
agent = LocalAgent(load_config(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
print(json.dumps(getattr(agent, sys.argv[4])(sys.argv[5]).to_json()))
"""


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout


@dataclass
class Site:
    folder: Path
    image: Path
    plain_image: Path
    nodes: dict[str, Node]
    loops: dict[str, str]
    """Each node's loop device on the MMP image."""
    link: Path
    """The path every node sees its own loop device under."""
    mountpoint: Path
    config: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("mmp")
    image, plain = folder / "shared.img", folder / "plain.img"
    for path, features in ((image, ["-O", "mmp", "-E", "mmp_update_interval=1"]), (plain, [])):
        run("truncate", "-s", "16M", str(path))
        run("mkfs.ext4", "-q", "-F", *features, str(path))
    loops: dict[str, str] = {}
    by_id, mountpoint = folder / "by-id", folder / "mnt"
    by_id.mkdir()
    mountpoint.mkdir()
    with nodes("mmpa", "mmpb") as (_switch, made):
        members = dict(zip(("a", "b"), made, strict=True))
        try:
            for name, node in members.items():
                loops[name] = run("losetup", "-f", "--show", str(image)).strip()
                node.run(["mount", "-t", "tmpfs", "-o", "size=1m", "by-id", str(by_id)])
                node.run(["ln", "-s", loops[name], str(by_id / "shared")])
            loops["plain"] = run("losetup", "-f", "--show", str(plain)).strip()
            members["a"].run(["ln", "-s", loops["plain"], str(by_id / "plain")])
            config = folder / "cluster.yml"
            volume = {"mountpoint": str(mountpoint), "mmp": True, "mmp_update_interval": 1}
            plain_mnt = str(folder / "plain-mnt")
            groups = {
                GROUP: {"nodes": ["a", "b"], "volume": {"device": str(by_id / "shared"), **volume}},
                "plain": {
                    "nodes": ["a"],
                    "volume": {**volume, "device": str(by_id / "plain"), "mountpoint": plain_mnt},
                },
            }
            addresses = {"a": {"address": "127.0.0.1"}, "b": {"address": "127.0.0.2"}}
            config.write_text(json.dumps({"cluster": "mmp", "nodes": addresses, "groups": groups}))
            yield Site(folder, image, plain, members, loops, by_id / "shared", mountpoint, config)
        finally:
            for node in members.values():
                node.run(["umount", str(mountpoint)], check=False)
            for loop in loops.values():
                subprocess.run(["losetup", "-d", loop], check=False, timeout=30)


@pytest.fixture
def fresh(site: Site) -> Iterator[Site]:
    """Nothing mounted on either node before and after the test."""
    yield site
    for node in site.nodes.values():
        node.run(["umount", str(site.mountpoint)], check=False)


def mounted(site: Site, name: str) -> bool:
    """Whether the node's mount table (read here, from its holder) has a mount on the volume's
    mountpoint."""
    table = Path(f"/proc/{site.nodes[name].pid}/mountinfo").read_text()
    return any(line.split()[4] == str(site.mountpoint) for line in table.splitlines())


def raw_mount(site: Site, name: str) -> subprocess.CompletedProcess[str]:
    """``mount`` on the node, below gardien, through the node's own path to the image."""
    argv = ["mount", "-t", "ext4", str(site.link), str(site.mountpoint)]
    return site.nodes[name].run(argv, check=False, timeout=90)


def act(site: Site, name: str, action: str, group: str = GROUP) -> dict[str, Any]:
    """The node's agent's ``acquire`` or ``release``, run inside the node; its outcome."""
    state = site.folder / f"state-{name}"
    argv = [sys.executable, "-c", _ACT, str(site.config), name, str(state), action, group]
    done = site.nodes[name].run(argv, cwd=str(REPO), timeout=180)
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


def sampled(site: Site, name: str, call: Any) -> tuple[Any, list[bool]]:
    """``call()``'s answer, and the node's mount table sampled every 10 ms meanwhile."""
    samples: list[bool] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01) and len(samples) < 100_000:
            samples.append(mounted(site, name))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        answer = call()
    finally:
        stop.set()
        thread.join(10)
    return answer, samples


def test_the_kernel_refuses_a_second_mount_while_the_first_is_mounted(fresh: Site) -> None:
    site = fresh
    assert raw_mount(site, "a").returncode == 0
    with kernel_messages() as messages:
        second = raw_mount(site, "b")
    assert second.returncode == 32, second.stderr  # mount(8)'s "mount failure": EBUSY
    assert mmp_refused(messages, site.loops["b"]), messages
    assert not mounted(site, "b") and mounted(site, "a")


def test_an_acquire_beside_a_holder_fails_and_never_mounts(fresh: Site) -> None:
    site = fresh
    assert raw_mount(site, "a").returncode == 0
    site.nodes["a"].run(["sh", "-c", f"echo a > {site.mountpoint}/owner"])

    outcome, samples = sampled(site, "b", lambda: act(site, "b", "acquire"))

    assert outcome["status"] == "failed", outcome
    assert outcome["details"]["failed_step"] == f"volume {site.mountpoint}"
    mmp = outcome["details"]["mmp"]
    assert mmp["sequence"] == "active" and mmp["waited"], mmp
    assert mmp["last_device"] == os.path.basename(site.loops["a"]), mmp  # a's device wrote it
    assert "MMP: the device is active on another node" in outcome["message"]
    assert samples and not any(samples)  # never mounted on b, not even for 10 ms
    assert not mounted(site, "b")
    assert mounted(site, "a")
    owner = site.nodes["a"].run(["cat", f"{site.mountpoint}/owner"]).stdout
    assert owner == "a\n"


def test_after_a_clean_unmount_the_other_node_mounts_without_waiting(fresh: Site) -> None:
    site = fresh
    assert raw_mount(site, "a").returncode == 0
    site.nodes["a"].run(["sh", "-c", f"echo clean > {site.mountpoint}/left"])
    site.nodes["a"].run(["umount", str(site.mountpoint)])

    outcome = act(site, "b", "acquire")

    assert outcome["status"] == "done", outcome
    mmp = outcome["details"]["mmp"]
    assert mmp["sequence"] == "clean" and not mmp["waited"], mmp
    assert "MMP" not in outcome["message"]
    assert mounted(site, "b")
    left = site.nodes["b"].run(["cat", f"{site.mountpoint}/left"]).stdout
    assert left == "clean\n"
    assert act(site, "b", "release")["status"] == "done"
    assert not mounted(site, "b")


def test_after_an_unclean_stop_the_mount_waits_for_mmp_within_its_budget(fresh: Site) -> None:
    site = fresh
    assert act(site, "a", "acquire")["status"] == "done"
    site.nodes["a"].run(["sh", "-c", f"echo before-crash > {site.mountpoint}/left; sync"])
    crashed = site.folder / "crashed.img"
    shutil.copyfile(site.image, crashed)  # the LUN as a node that loses power now leaves it
    assert act(site, "a", "release")["status"] == "done"
    shutil.copyfile(crashed, site.image)  # the same inode: both loop devices read it
    run("blockdev", "--flushbufs", site.loops["b"])  # what b's device cached is stale

    outcome = act(site, "b", "acquire")

    assert outcome["status"] == "done", outcome  # within the start budget, MMP wait included
    mmp = outcome["details"]["mmp"]
    assert mmp["sequence"] == "active" and mmp["waited"], mmp
    assert mmp["last_device"] == os.path.basename(site.loops["a"]), mmp
    assert mmp["mount_seconds"] >= check_wait(1)  # the kernel's wait, not gardien's
    assert "the mount waited" in outcome["message"] and "for MMP" in outcome["message"]
    assert mounted(site, "b") and not mounted(site, "a")
    left = site.nodes["b"].run(["cat", f"{site.mountpoint}/left"]).stdout
    assert left == "before-crash\n"  # the journal replayed what a wrote before it stopped
    assert act(site, "b", "release")["status"] == "done"


def test_an_mmp_volume_on_a_device_without_mmp_is_refused_before_anything(fresh: Site) -> None:
    site = fresh

    outcome = act(site, "a", "acquire", group="plain")

    assert outcome["status"] == "failed", outcome
    assert outcome["details"]["mmp"]["problem"] == "not_enabled"
    assert outcome["details"]["mmp"]["enabled"] is False
    assert "tune2fs -O mmp" in outcome["message"]
    table = Path(f"/proc/{site.nodes['a'].pid}/mountinfo").read_text()
    assert str(site.folder / "plain-mnt") not in table
