"""Safety on the lab below gardien: the storage itself refuses a second owner.

The lab's volumes have ext4's multi-mount protection and each node reaches a group's image through
a loop device of its own (:mod:`gardien_lab.volumes`), as two SAN nodes reach one LUN.  A raw
``mount`` on the node that does not hold the group, run in that node's namespaces with no gardien
involved, must fail in the kernel; the test reads the node's mount table itself, every 10 ms
during the attempt.
"""

from __future__ import annotations

import subprocess

from gardien_lab import services, volumes
from gardien_lab.scenario import restore, runs_only_on
from gardien_lab.topology import Lab
from gardien_lab.volumes import mounted_in
from tests.lab.helpers import HOME, MountWatch
from tests.support.kmsg import kernel_messages, mmp_refused


def _mounted(lab: Lab, node: str, mountpoint: str) -> bool:
    return mounted_in(lab.require_holder(node), mountpoint)


def test_a_raw_mount_of_php4_on_node2_while_node1_holds_it_fails_with_mmp(lab: Lab) -> None:
    restore(lab)
    group = services.lab_groups(lab)["php4"]
    assert HOME["php4"] == "node1" and runs_only_on(lab, "php4", "node1")
    image = str(volumes.image(lab, "php4"))
    assert image in volumes.mounted_images(lab, "node1")
    node2_device = volumes.node_device(lab, "node2", "php4")
    assert node2_device is not None and node2_device != volumes.node_device(lab, "node1", "php4")
    argv = [*lab.prefix_argv("node2"), "mount", "-t", "ext4"]
    argv += [volumes.device_path("php4"), group.mountpoint]

    try:
        with MountWatch(lab, group.mountpoint) as watch, kernel_messages() as messages:
            attempt = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    finally:
        if _mounted(lab, "node2", group.mountpoint):  # never expected: leave the lab sane
            umount = [*lab.prefix_argv("node2"), "umount", group.mountpoint]
            subprocess.run(umount, check=True, timeout=30)

    assert attempt.returncode == 32, attempt  # mount(8)'s mount failure: EBUSY from MMP
    assert mmp_refused(messages, node2_device), messages  # the kernel says why
    assert watch.samples >= 3 and watch.seen["node2"] == []
    assert not _mounted(lab, "node2", group.mountpoint)
    assert image not in volumes.mounted_images(lab, "node2")
    assert runs_only_on(lab, "php4", "node1")
