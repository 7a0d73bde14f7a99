"""VIP collector: is each group's virtual IP on its interface, and does this node hold the group?

Both answers come from :mod:`gardien.node.holding`, the same reading the node agent's status
makes: addresses in the network namespace the exporter runs in (a labelled address, ``eth0:vip``,
counts as the interface), the mount table, and for a group with neither volume nor VIP the node
agent's held marker in the state folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector, ScrapeFacts, shared_mount_table
from gardien.config import ClusterConfig
from gardien.node.addresses import ReadAddresses, read_addresses
from gardien.node.holding import read_holdings
from gardien.node.mounts import PROC, SYS
from gardien.state import DEFAULT_STATE_DIR


class VipCollector(NodeCollector):
    name = "vip"

    def __init__(
        self,
        config: ClusterConfig,
        *,
        state_dir: Path = DEFAULT_STATE_DIR,
        addresses: ReadAddresses = read_addresses,
        proc_root: Path = PROC,
        sys_root: Path = SYS,
    ) -> None:
        super().__init__(config)
        self.state_dir = state_dir
        self.addresses = addresses
        self.proc_root = proc_root
        self.sys_root = sys_root

    def collect(self, timeout: float, facts: ScrapeFacts | None = None) -> Iterable[Metric]:
        present = GaugeMetricFamily(
            "gardien_group_vip_present",
            "1 when the group's virtual IP is on its interface on this node.",
            labels=["group", "address", "interface"],
        )
        active = GaugeMetricFamily(
            "gardien_group_active",
            "1 when this node holds the group: volume mounted and VIP present "
            "(for a group with neither, the node agent's record).",
            labels=["group"],
        )
        groups = self.config.groups
        holdings = read_holdings(
            groups,
            self.state_dir,
            proc_root=self.proc_root,
            sys_root=self.sys_root,
            addresses=self.addresses,
            read_mounts=shared_mount_table(facts or ScrapeFacts()),
        )
        for group, cfg in groups.items():
            if cfg.vip is not None:
                here = holdings.vip_present(cfg.vip)
                present.add_metric([group, str(cfg.vip.address.ip), cfg.vip.interface], float(here))
            active.add_metric([group], float(holdings.holds(group, cfg)))
        return [present, active]
