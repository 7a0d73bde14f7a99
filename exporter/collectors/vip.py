"""VIP collector: is each group's virtual IP on its interface, and does this node hold the group?

Addresses come from ``getifaddrs()`` through psutil (in-process, no ``ip`` child per scrape), in
the network namespace the exporter runs in.  An address added with a label (``ip addr add ... label
eth0:vip``) is listed under that label, which still counts as the interface.

``gardien_group_active`` is the node's claim on a group: its volume mounted (when it has one) and
its VIP present (when it has one); for a group with neither, the node agent's record in the state
folder (:func:`gardien.state.held_groups`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import NodeCollector
from exporter.collectors.mounts import read_mounts, volume_mount
from gardien.config import ClusterConfig
from gardien.state import DEFAULT_STATE_DIR, held_groups

log = logging.getLogger(__name__)

InterfaceAddresses = Callable[[], Mapping[str, Sequence[str]]]
"""Returns the addresses of every interface: name (or ``name:label``) -> address strings."""


def system_addresses() -> Mapping[str, Sequence[str]]:
    try:
        table = psutil.net_if_addrs()
    except OSError as exc:  # every VIP is then reported absent rather than not reported
        log.error("cannot list interface addresses: %s", exc)
        return {}
    return {name: [a.address for a in addrs] for name, addrs in table.items()}


def addresses_of(
    interface: str, table: Mapping[str, Sequence[str]]
) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for name, addresses in table.items():
        if name != interface and not name.startswith(interface + ":"):
            continue
        for text in addresses:
            try:
                found.add(ipaddress.ip_address(text.split("%")[0]))  # fe80::1%eth0
            except ValueError:
                continue  # a link-layer (MAC) address
    return found


class VipCollector(NodeCollector):
    name = "vip"

    def __init__(
        self,
        config: ClusterConfig,
        *,
        state_dir: Path = DEFAULT_STATE_DIR,
        addresses: InterfaceAddresses = system_addresses,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
    ) -> None:
        super().__init__(config)
        self.state_dir = state_dir
        self.addresses = addresses
        self.proc_root = proc_root
        self.sys_root = sys_root

    def collect(self, timeout: float) -> Iterable[Metric]:
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
        table = self.addresses() if any(g.vip for g in groups.values()) else {}
        mounts = read_mounts(self.proc_root) if any(g.volume for g in groups.values()) else []
        held = self._held() if any(not (g.vip or g.volume) for g in groups.values()) else set()
        for group, cfg in groups.items():
            holds = True
            if cfg.vip is not None:
                here = cfg.vip.address.ip in addresses_of(cfg.vip.interface, table)
                present.add_metric([group, str(cfg.vip.address.ip), cfg.vip.interface], float(here))
                holds = here
            if cfg.volume is not None:
                holds = holds and volume_mount(cfg.volume, mounts, self.sys_root) is not None
            if cfg.vip is None and cfg.volume is None:
                holds = group in held
            active.add_metric([group], float(holds))
        return [present, active]

    def _held(self) -> set[str]:
        try:
            return held_groups(self.state_dir)
        except OSError as exc:
            log.warning("cannot read held groups in %s: %s", self.state_dir, exc)
            return set()
