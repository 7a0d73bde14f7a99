"""The one answer to "does this node hold group G?", for the exporter and the node agent alike.

A group is held where its volume is mounted (when it has one) and its VIP is present (when it has
one): those are up on one node only, so the node's own tables say it.  A group with neither
shows nothing on the node that says so (its services may run everywhere): the agent's held marker
in the state folder (:mod:`gardien.state`) is then the only truth.  ``gardien_group_active`` and
the ``active`` of the agent's status both come from :meth:`Holdings.holds`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gardien import state
from gardien.config.model import GroupConfig, VipConfig, VolumeConfig
from gardien.node.addresses import AddressTable, ReadAddresses, read_addresses, vip_present
from gardien.node.mounts import PROC, SYS, MountTable, read_mount_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holdings:
    """One reading of what the node holds: its mounts, its addresses and the held markers."""

    mounts: MountTable
    addresses: AddressTable
    marked: frozenset[str]
    """Groups whose held marker is in the state folder."""

    def volume_mounted(self, volume: VolumeConfig) -> bool:
        return self.mounts.of_volume(volume) is not None

    def vip_present(self, vip: VipConfig) -> bool:
        return vip_present(vip, self.addresses)

    def holds(self, name: str, group: GroupConfig) -> bool:
        """Volume mounted and VIP present (for those it has); else its held marker."""
        if group.volume is None and group.vip is None:
            return name in self.marked
        return (group.volume is None or self.volume_mounted(group.volume)) and (
            group.vip is None or self.vip_present(group.vip)
        )


def read_holdings(
    groups: Mapping[str, GroupConfig],
    state_dir: Path,
    *,
    proc_root: Path = PROC,
    sys_root: Path = SYS,
    addresses: ReadAddresses = read_addresses,
    read_mounts: Callable[[Path, Path], MountTable] = read_mount_table,
) -> Holdings:
    """Read what ``groups`` need to be judged (nothing else).  A table that cannot be read is
    logged and read as empty: every group it decides is then not held here, rather than not
    answered.  ``read_mounts(proc_root, sys_root)``: the exporter passes the mount table its
    scrape reads once for every collector."""
    mounts = MountTable(())
    if any(g.volume for g in groups.values()):
        try:
            mounts = read_mounts(proc_root, sys_root)
        except OSError as exc:
            log.error("cannot read the mount table: %s", exc)
    table: AddressTable = {}
    if any(g.vip for g in groups.values()):
        try:
            table = addresses()
        except OSError as exc:
            log.error("cannot list interface addresses: %s", exc)
    marked: frozenset[str] = frozenset()
    if any(g.volume is None and g.vip is None for g in groups.values()):
        try:
            marked = frozenset(state.held_groups(state_dir))
        except OSError as exc:
            log.warning("cannot read held groups in %s: %s", state_dir, exc)
    return Holdings(mounts, table, marked)
