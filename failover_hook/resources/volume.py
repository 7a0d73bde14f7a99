"""Volume resource: the group's filesystem mounted at its mountpoint on this node only.

Stopping is a force operation: when the filesystem is busy, the processes holding it are found
(``fuser -m``, only once ``mountpoint -q`` said it *is* a mountpoint: on a plain directory fuser
would match every process of the root filesystem, docs/lab.md section 4), sent TERM, then KILL, and
the unmount is retried in a loop because killing is asynchronous.  A stop is never reported done
while the volume is still mounted.

A volume with ``mmp: true`` is checked on its device before anything of the group starts: the
agent refuses to mount one whose device lacks ext4's multi-mount protection (or whose update
interval is longer than the config says, so that the MMP wait would outlast the start budget),
with the device's :class:`~gardien.node.mmp.MmpState` in the refusal's details.  Its start budget
(:func:`start_budget`) covers the kernel's MMP wait after an unclean stop, and a mount that waited
says so in its change (and so in the acquire's outcome).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from failover_hook import processes
from failover_hook.resources.base import (
    RUNNING,
    Change,
    Resource,
    ResourceError,
    ResourceState,
    State,
)
from failover_hook.resources.registry import BuildContext, register
from gardien.command_runner import CommandRunner
from gardien.config.model import GroupConfig, VolumeConfig
from gardien.node.mmp import (
    MmpSequence,
    MmpState,
    describe_problem,
    problem_of,
    read_mmp,
    unclean_mount_wait,
)
from gardien.node.mounts import PROC, SYS, read_mount_table
from gardien.polling import Deadline, pauses

log = logging.getLogger(__name__)

_RETRY = 0.05
"""Longest pause between two unmount attempts while holders die (they start shorter)."""
_COMMAND_TIMEOUT = 10.0
_MOUNT_TIMEOUT = 30.0
"""Time allowed to mount (fsck aside) when the storage does not make the mount wait."""
_FSCK_TIMEOUT = 120.0
"""The same with ``fsck -p`` first."""


def start_budget(config: VolumeConfig) -> float:
    """Seconds a mount of the volume may take: fsck if asked, and for an MMP device the kernel's
    wait after an unclean stop (the agent's deadline, and part of the group's budget)."""
    base = _FSCK_TIMEOUT if config.fsck else _MOUNT_TIMEOUT
    return base + (unclean_mount_wait(config.mmp_update_interval) if config.mmp else 0.0)


class Volume(Resource):
    kind = "volume"

    def __init__(
        self,
        config: VolumeConfig,
        runner: CommandRunner,
        proc_root: Path = PROC,
        sys_root: Path = SYS,
    ) -> None:
        super().__init__(runner)
        self.config = config
        self.mountpoint = os.path.normpath(config.mountpoint)
        self.proc_root = proc_root
        self.sys_root = sys_root

    @property
    def name(self) -> str:
        return f"volume {self.mountpoint}"

    @property
    def start_timeout(self) -> float:
        return start_budget(self.config)

    @property
    def stop_timeout(self) -> float:
        return self.config.stop_timeout

    def monitor(self) -> ResourceState:
        try:
            table = read_mount_table(self.proc_root, self.sys_root)
        except OSError as exc:
            return ResourceState(State.ERROR, f"cannot read the mount table: {exc.strerror}")
        if table.of_volume(self.config) is not None:
            return RUNNING
        here = table.visible(self.mountpoint)
        if here is not None:
            return ResourceState(State.ERROR, f"{here.source} is mounted on {self.mountpoint}")
        elsewhere = table.from_device(self.config.device)
        if elsewhere:
            where = elsewhere[0].mountpoint
            return ResourceState(State.ERROR, f"{self.config.device} is mounted on {where}")
        return ResourceState(State.NOT_RUNNING, f"{self.mountpoint} not mounted")

    def preflight(self) -> None:
        """An ``mmp: true`` volume's device has the feature, with an interval the budget covers."""
        if self.config.mmp:
            self._checked_mmp()

    def _checked_mmp(self) -> MmpState:
        found = read_mmp(self.config.device, self.runner, _COMMAND_TIMEOUT)
        problem = problem_of(self.config, found)
        if problem is not None:
            raise ResourceError(
                f"refusing to mount: {describe_problem(self.config, found, problem)}",
                {"mmp": {"problem": str(problem), **found.to_json()}},
            )
        return found

    def _start(self, deadline: Deadline, current: ResourceState) -> str | Change:
        if current.state is State.ERROR:
            raise ResourceError(f"refusing to mount {self.config.device}: {current.reason}")
        before = self._checked_mmp() if self.config.mmp else None
        os.makedirs(self.mountpoint, exist_ok=True)
        if self.config.fsck:
            result = self.runner.run(["fsck", "-p", self.config.device], timeout=deadline.left(1))
            if result.returncode is None or result.returncode >= 4:
                raise ResourceError(f"fsck of {self.config.device} failed: {result.describe()}")
        argv = ["mount", "-t", self.config.fstype]
        if self.config.options:
            argv += ["-o", ",".join(self.config.options)]
        result = self.runner.run(
            [*argv, self.config.device, self.mountpoint], timeout=deadline.left(1)
        )
        mmp = _mmp_details(before, result.duration) if before else {}
        if not result.ok:
            why = result.describe()
            if before is not None and before.sequence is MmpSequence.ACTIVE:
                why += (
                    f" (MMP: the device is active on another node, last written by"
                    f" {before.last_node or 'unknown node'} through {before.last_device or '?'})"
                )
            raise ResourceError(f"mount of {self.config.device} failed: {why}", mmp)
        mounted = f"mounted {self.config.device} on {self.mountpoint}"
        if before is None or not mmp["mmp"]["waited"]:
            return Change(changed=True, message=mounted, details=mmp)
        waited = (
            f"the mount waited {result.duration:.1f} s for MMP: the last holder"
            f" ({before.last_node or 'unknown node'} through {before.last_device or 'its device'})"
            " did not unmount it cleanly"
        )
        return Change(changed=True, message=f"{mounted}; {waited}", remark=waited, details=mmp)

    def _stop(self, deadline: Deadline) -> str:
        if self.monitor().state is State.ERROR:
            raise ResourceError(f"not unmounting {self.mountpoint}: {self.monitor().reason}")
        started = time.monotonic()
        term_until = started + min(2.0, self.stop_timeout / 3)
        killed: set[int] = set()
        last = ""
        for pause in pauses(_RETRY):
            result = self.runner.run(
                ["umount", self.mountpoint], timeout=min(_COMMAND_TIMEOUT, deadline.left(1))
            )
            if result.ok or self.monitor().state is State.NOT_RUNNING:
                how = f", after ending {len(killed)} process(es) holding it" if killed else ""
                return f"unmounted {self.mountpoint}{how}"
            last = result.describe()
            if deadline.passed:
                break
            holders = self._holders(deadline)
            sig = signal.SIGTERM if time.monotonic() < term_until else signal.SIGKILL
            fresh = set(holders) - killed if sig == signal.SIGTERM else set(holders)
            if fresh:
                log.info("%s busy: sending %s to %s", self.mountpoint, sig.name, sorted(fresh))
                processes.signal_all(fresh, sig)
                killed |= fresh
            time.sleep(min(pause, deadline.left()))
        holders = self._holders(Deadline(_COMMAND_TIMEOUT))
        held = f"; held by pid(s) {', '.join(map(str, holders))}" if holders else ""
        took = time.monotonic() - started
        raise ResourceError(f"{self.mountpoint} still mounted after {took:.1f} s: {last}{held}")

    def _holders(self, deadline: Deadline) -> Sequence[int]:
        """Processes using the filesystem, asked only while it is a mountpoint here."""
        check = self.runner.run(
            ["mountpoint", "-q", self.mountpoint], timeout=min(_COMMAND_TIMEOUT, deadline.left(1))
        )
        if not check.ok:
            return ()
        found = self.runner.run(
            ["fuser", "-m", self.mountpoint], timeout=min(_COMMAND_TIMEOUT, deadline.left(1))
        )
        me = os.getpid()
        pids = [int(p) for p in re.findall(r"\d+", found.stdout)]
        return [pid for pid in pids if pid != me]


def _mmp_details(before: MmpState, took: float) -> dict[str, Any]:
    """What the mount met: the MMP block's state just before, whether the kernel waited (a
    sequence left active, by a holder that is still there or one that stopped uncleanly) and
    how long the mount took."""
    waited = before.sequence is not MmpSequence.CLEAN
    return {"mmp": {**before.to_json(), "waited": waited, "mount_seconds": round(took, 3)}}


@register("volume")
def _build(group: GroupConfig, context: BuildContext) -> list[Resource]:
    return [Volume(group.volume, context.runner)] if group.volume else []
