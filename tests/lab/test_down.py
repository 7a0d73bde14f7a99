"""``lab down`` removes what its lab made and nothing else: machines only (namespaces and
holders, no service), so this runs in seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from gardien_lab import lifecycle, machines, netns
from gardien_lab.netns import LabError
from gardien_lab.topology import Lab


@pytest.fixture
def machines_only() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab(name="gtown")
    lifecycle.down(lab)  # a previous run that crashed
    machines.build(lab)
    try:
        yield lab
    finally:
        lifecycle.down(lab)


def test_a_namespace_named_like_a_lab_machine_but_not_made_by_it_survives_down(
    machines_only: Lab,
) -> None:
    lab = machines_only
    client = lab.netns("client")
    # the lab's client goes away, and someone else makes a namespace of the same name (it may
    # even get the same inode number: the namespace's tag tells them apart)
    assert machines.kill_machine(lab, "client") == []
    netns.delete_netns(client)
    netns.add_netns(client)
    stranger = subprocess.Popen(
        ["ip", "netns", "exec", client, "sleep", "300"], start_new_session=True
    )
    try:
        with pytest.raises(LabError, match=f"{client} exists but lab 'gtown' did not make it"):
            machines.build(lab)
        removal = lifecycle.down(lab)
        assert removal.problems == []
        assert removal.not_ours == [f"network namespace {client} (not made by lab 'gtown')"]
        assert stranger.poll() is None, "down killed a process of a namespace it did not make"
        assert netns.netns_exists(client)
        assert [ns for ns in lab.all_netns() if netns.netns_exists(ns)] == [client]
        assert not lab.dir.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stranger.pid, signal.SIGKILL)
        stranger.wait(timeout=10)
        netns.delete_netns(client)


def test_a_reused_pid_is_not_taken_for_a_holder(machines_only: Lab) -> None:
    lab = machines_only
    holder = netns.Holder(lab.require_holder("mon"), 0)  # same pid, another start time
    assert not holder.runs_in(lab.netns("mon"))
    assert lab.holder("mon") is not None
