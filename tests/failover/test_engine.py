"""The failover engine on two real nodes: a loop-mounted ext4 volume, a VIP, a real Apache.

Each node runs its agent and mover inside itself (tests/support/agent_host.py); the client
namespace fetches the page on the VIP.  Nothing here is mocked: mounts, addresses, gratuitous
ARP, Apache, fencing (a fence script that really kills a node) and crashes (SIGKILL) are real.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from failover_hook import processes
from failover_hook.outcome import Status
from failover_hook.plan import StepState
from gardien_lab.freeze import freeze
from tests.support.failover_cluster import GROUP, PAGE, Cluster, cluster
from tests.support.netns import have_root_and_netns

pytestmark = [
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
    pytest.mark.root,
    pytest.mark.timeout(180),
]


def held_on(c: Cluster, name: str) -> bool:
    """Fully active on ``name``: volume mounted there and VIP there."""
    return c.mounted(name) and c.has_vip(name)


def nothing_on(c: Cluster, name: str) -> bool:
    return not c.mounted(name) and not c.has_vip(name)


@pytest.fixture
def two_nodes() -> Iterator[Cluster]:
    with cluster() as c:
        yield c


@pytest.fixture
def on_node1(two_nodes: Cluster) -> Iterator[Cluster]:
    outcome = two_nodes.outcome("node1", "acquire")
    assert outcome.status is Status.DONE, outcome.message
    assert two_nodes.page() == PAGE + "\n"
    yield two_nodes


def ran(c: Cluster, name: str) -> list[list[str]]:
    result: list[list[str]] = c.call(name, "ran")
    return result


def test_clean_move_serves_the_page_and_the_data_from_the_other_node(on_node1: Cluster) -> None:
    c = on_node1
    c.on_volume("node1", "data.txt").write_text("written on node1\n")
    plan = c.call("node2", "plan", group=GROUP, source="node1", target="node2")
    assert plan.splitlines()[1:4] == [
        "  1. release web on node1 (remote); undo: acquire web on node1",
        "  2. fence node1 if step 1 fails or node1 is unreachable; undo: none",
        f"  3. acquire web on node2 (local: volume {c.mountpoint}, vip {c.vip}/24, "
        "service apache-web); undo: release web on node2",
    ]

    outcome = c.outcome("node2", "move", source="node1", target="node2")

    assert outcome.status is Status.DONE, outcome.message
    assert outcome.message.startswith("moved web node1 -> node2 in ")
    assert c.page() == PAGE + "\n"
    assert c.on_volume("node2", "data.txt").read_text() == "written on node1\n"
    assert nothing_on(c, "node1") and held_on(c, "node2")
    status = c.call("node2", "status", group=GROUP)
    assert status["held"] and status["healthy"], status
    assert not c.call("node1", "status", group=GROUP)["held"]
    again = c.outcome("node1", "release")  # its volume and VIP say it: not held there
    assert (again.status, again.message) == (Status.NOTHING_TO_DO, "web not held by node1")
    commands = [argv[:3] for argv in ran(c, "node2")]
    assert commands.index(["mount", "-t", "ext4"]) < commands.index(["ip", "addr", "add"])
    _wait_for(lambda: len(announcements(c, "node2")) == 2)  # garp_count, in the background
    released = [argv[:3] for argv in ran(c, "node1")]
    stop = released.index(["/usr/sbin/apache2", "-f", str(c.apache.conf_file)])
    assert (
        stop < released.index(["ip", "addr", "del"]) < released.index(["umount", str(c.mountpoint)])
    )
    [move] = c.moves("node2")
    assert [s.state for s in move.steps] == [StepState.DONE, StepState.SKIPPED, StepState.DONE]
    assert move.status == "done" and move.finished is not None


def announcements(c: Cluster, name: str) -> list[list[str]]:
    return [argv for argv in ran(c, name) if argv[:3] == ["arping", "-q", "-U"]]


def test_release_cancels_the_announcements_still_due() -> None:
    """Gratuitous ARP repeats run in the background; once the address is removed, none of them
    may still tell the network that this node holds it."""
    with cluster(garp_interval="3s") as c:
        assert c.outcome("node1", "acquire").status is Status.DONE
        _wait_for(lambda: announcements(c, "node1"))  # the first one goes out in the background
        assert c.outcome("node1", "release").status is Status.DONE
        assert len(announcements(c, "node1")) == 1
        time.sleep(3.5)  # past the time of the second announcement
        assert len(announcements(c, "node1")) == 1


def test_busy_unmount_kills_the_stopped_holder_and_unmounts(on_node1: Cluster) -> None:
    c = on_node1
    c.on_volume("node1", "held.txt").write_text("x")
    holder = c.nodes["node1"].popen(
        ["sh", "-c", f"exec sleep 600 3<{c.mountpoint}/held.txt"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(lambda: str(c.mountpoint) in " ".join(_fds(holder.pid)))
        holder.send_signal(signal.SIGSTOP)  # a stopped holder acts on TERM only after CONT

        outcome = c.outcome("node1", "release")

        assert outcome.status is Status.DONE, outcome.message
        assert holder.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
        assert nothing_on(c, "node1")
        assert ["mountpoint", "-q", str(c.mountpoint)] in ran(c, "node1")
        fuser = [argv for argv in ran(c, "node1") if argv[0] == "fuser"]
        assert fuser, "the holder was found with fuser"
        record = c.journal("node1").history(GROUP)[0]
        assert record.kind == "release"
        assert str(record.steps[-1].message).startswith(
            f"unmounted {c.mountpoint}, after ending 1 process(es)"
        )
    finally:
        holder.kill()
        holder.wait()


def test_release_stops_a_hung_apache(on_node1: Cluster) -> None:
    """SIGSTOP of Apache's whole process group (docs/lab.md section 5): CONT comes before the
    stop."""
    c = on_node1
    master = int(c.on_volume("node1", "www/run/httpd.pid").read_text())
    freeze(os.getpgid(master), group=True)
    assert c.page() is None  # hung: the client gets nothing

    outcome = c.outcome("node1", "release")

    assert outcome.status is Status.DONE, outcome.message
    assert processes.state(master) in (None, "Z")  # gone, or dead and not yet reaped
    assert nothing_on(c, "node1")
    assert c.outcome("node2", "acquire").status is Status.DONE
    assert c.page() == PAGE + "\n"


def test_duplicate_address_is_refused_and_nothing_stays_up(two_nodes: Cluster) -> None:
    c = two_nodes
    c.client.run(["ip", "addr", "add", f"{c.vip}/24", "dev", "eth0"])

    outcome = c.outcome("node1", "acquire")

    assert outcome.status is Status.FAILED
    assert f"{c.vip} already answers on the network (MAC" in outcome.message
    assert outcome.message.startswith(f"acquire web failed at vip {c.vip}/24: refusing to add")
    assert outcome.message.endswith("; nothing started")
    assert nothing_on(c, "node1")
    # the check runs before the volume is mounted (the resources' preflight)
    assert not any(
        argv[0] == "mount" or argv[:3] == ["ip", "addr", "add"] for argv in ran(c, "node1")
    )


def test_unreachable_source_without_fence_agent_is_refused(on_node1: Cluster) -> None:
    c = on_node1
    c.kill_host("node1")  # its agent no longer answers; its group still runs

    outcome = c.outcome("node2", "move", source="node1", target="node2")

    assert outcome.status is Status.REFUSED
    assert outcome.message == "node1 unreachable and no fence agent"  # the hook adds "refused: "
    assert nothing_on(c, "node2")
    assert not any(
        argv[0] in ("mount", "ip", "arping") and argv[:3] != ["ip", "-o", "addr"]
        for argv in ran(c, "node2")
    )
    assert held_on(c, "node1") and c.page() == PAGE + "\n"
    [move] = c.moves("node2")
    assert (move.status, move.message) == ("refused", "node1 unreachable and no fence agent")
    assert [s.state for s in move.steps] == [StepState.FAILED, StepState.FAILED, StepState.PENDING]


def test_unreachable_source_is_fenced_then_the_group_starts_on_the_target() -> None:
    with cluster(fencing=True) as c:
        assert c.outcome("node1", "acquire").status is Status.DONE
        c.kill_host("node1")

        outcome = c.outcome("node2", "move", source="node1", target="node2")

        assert outcome.status is Status.DONE, outcome.message
        assert c.page() == PAGE + "\n"
        assert held_on(c, "node2")
        assert not _alive(c.nodes["node1"].pid)  # the fence script "powered it off"
        fence = [
            argv
            for argv in ran(c, "node2")
            if argv[-2:] == [str(c.nodes["node1"].pid), c.nodes["node1"].netns]
        ]
        assert len(fence) == 1
        [move] = c.moves("node2")
        assert [s.state for s in move.steps] == [StepState.FAILED, StepState.DONE, StepState.DONE]
        assert str(move.steps[1].message).startswith("fenced node1 in ")


def test_mover_killed_after_the_release_is_recovered_never_half_done(on_node1: Cluster) -> None:
    c = on_node1
    answer: dict[str, Any] = {}

    def move() -> None:
        try:
            answer["outcome"] = c.call("node2", "move", group=GROUP, source="node1", target="node2")
        except Exception as exc:
            answer["error"] = exc

    thread = threading.Thread(target=move)
    thread.start()
    journal = c.journal("node2")
    _wait_for(
        lambda: (
            bool(journal.unfinished("move"))
            and journal.unfinished("move")[0].steps[0].state is StepState.DONE
        ),
        timeout=60,
    )
    c.kill_host("node2")  # SIGKILL between the release and the end of the acquire
    thread.join(timeout=30)
    assert "error" in answer, "the mover was killed before answering"
    [unfinished] = journal.unfinished("move")
    assert unfinished.steps[0].state is StepState.DONE
    assert unfinished.steps[2].state is not StepState.DONE
    assert not held_on(c, "node1")  # released, and the target had not finished: half done

    c.start_host("node2")
    [recovered] = [o for o in c.call("node2", "recover") if "move #" in o["message"]]

    assert (
        f"recovered move #{unfinished.id} (web node1 -> node2): finished: moved web"
        in (recovered["message"])
    ), recovered
    assert held_on(c, "node2") and nothing_on(c, "node1")
    assert c.page() == PAGE + "\n"
    assert not journal.unfinished()
    journal.close()


def test_mover_killed_during_the_release_is_rolled_back(on_node1: Cluster) -> None:
    c = on_node1
    thread = threading.Thread(
        target=_ignoring_errors,
        args=(c.call, "node2", "move"),
        kwargs={"group": GROUP, "source": "node1", "target": "node2"},
    )
    thread.start()
    journal = c.journal("node2")
    _wait_for(
        lambda: (
            bool(journal.unfinished("move"))
            and journal.unfinished("move")[0].steps[0].state is StepState.RUNNING
        ),
        timeout=60,
    )
    c.kill_host("node2")  # node1 goes on releasing: nobody will acquire
    thread.join(timeout=30)
    [unfinished] = journal.unfinished("move")
    assert unfinished.steps[0].state is StepState.RUNNING

    c.start_host("node2")
    [recovered] = [o for o in c.call("node2", "recover") if "move #" in o["message"]]

    assert recovered["message"] == (
        f"recovered move #{unfinished.id} (web node1 -> node2): rolled back; web restarted on node1"
    )
    assert held_on(c, "node1") and nothing_on(c, "node2")
    assert c.page() == PAGE + "\n"
    assert journal.get(unfinished.id).finished is not None
    journal.close()


def test_agent_killed_during_an_acquire_is_rolled_back(two_nodes: Cluster) -> None:
    c = two_nodes
    thread = threading.Thread(
        target=_ignoring_errors, args=(c.call, "node1", "acquire"), kwargs={"group": GROUP}
    )
    thread.start()
    journal = c.journal("node1")
    _wait_for(
        lambda: (
            bool(journal.unfinished("acquire"))
            and journal.unfinished("acquire")[0].steps[3].state is StepState.RUNNING
        ),
        timeout=60,
    )
    # step 0 is the guard, 1-2 the volume and VIP (quick: the VIP's duplicate-address check ran
    # before the mount), 3 Apache's start
    c.kill_host("node1")  # the volume is mounted, the VIP added, Apache starting
    thread.join(timeout=30)
    [interrupted] = journal.unfinished("acquire")
    assert c.mounted("node1")

    c.start_host("node1")
    [recovered] = c.call("node1", "recover")

    assert recovered["message"].startswith(
        f"recovered interrupted acquire #{interrupted.id} of web: rolled back (released web"
    ), recovered
    assert nothing_on(c, "node1") and not journal.unfinished()
    journal.close()


def _ignoring_errors(function: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):
        function(*args, **kwargs)


def test_failed_service_start_rolls_back_volume_and_vip() -> None:
    with cluster(expect="this text is not on the page", start_timeout="3s") as c:
        outcome = c.outcome("node1", "acquire")

        assert outcome.status is Status.FAILED
        assert outcome.message.startswith(
            "acquire web failed at service apache-web: probe http failed: "
        )
        assert outcome.message.endswith("; rolled back")
        assert nothing_on(c, "node1")
        assert c.page() is None
        assert not c.call("node1", "status", group=GROUP)["anything_running"]
        commands = [argv[0] for argv in ran(c, "node1")]
        assert commands.index("umount") > commands.index("/usr/sbin/apache2")


def _fds(pid: int) -> list[str]:
    try:
        return [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}/ns/mnt")


def _wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
