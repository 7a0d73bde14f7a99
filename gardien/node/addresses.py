"""The addresses on this node's interfaces, and "is this VIP on its interface?".

Read in-process through psutil (``getifaddrs()``, netlink underneath) in the network namespace of
the reading process: no ``ip`` child per scrape or per status call.  Resources still run
``ip addr add/del`` to act; they read the result here.  An address added with a label (``ip addr
add ... label eth0:vip``) is listed under that label, which still counts as the interface.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Mapping, Sequence

import psutil

from gardien.config.model import VipConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface
"""An address with its prefix length, as configured on an interface."""

AddressTable = Mapping[str, Sequence[Address]]
"""Every interface (by name, or ``name:label``) -> its IP addresses; an interface without any is
listed with none (it exists)."""

ReadAddresses = Callable[[], AddressTable]
"""How a reader gets the table (:func:`read_addresses`, or a recorded one in tests)."""


def _prefix_length(netmask: str | None, address: IPAddress) -> int:
    """``255.255.255.0`` -> 24; no netmask reported means the address alone."""
    if netmask is None:
        return address.max_prefixlen
    return bin(int(ipaddress.ip_address(netmask.split("%")[0]))).count("1")


@functools.lru_cache(maxsize=1024)
def _parsed(address: str, netmask: str | None) -> Address:
    """One address as the kernel lists it, parsed (the same few addresses at every scrape: the
    parse was most of a read, docs/benchmarks.md "Idle cost on the lab")."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # fe80::1%eth0
    return ipaddress.ip_interface((ip, _prefix_length(netmask, ip)))


def read_addresses() -> AddressTable:
    """The addresses of every interface of this network namespace; raises OSError when the kernel
    cannot be asked."""
    table: dict[str, list[Address]] = {}
    for name, entries in psutil.net_if_addrs().items():
        table[name] = [
            _parsed(entry.address, entry.netmask)
            for entry in entries
            if entry.family in (socket.AF_INET, socket.AF_INET6)  # not the link-layer (MAC) one
        ]
    return table


def has_interface(interface: str, table: AddressTable) -> bool:
    return interface in table or any(name.startswith(interface + ":") for name in table)


def on_interface(interface: str, table: AddressTable) -> list[Address]:
    """The addresses of ``interface``, those of its labels (``eth0:vip``) included."""
    return [
        address
        for name, addresses in table.items()
        if name == interface or name.startswith(interface + ":")
        for address in addresses
    ]


def vip_present(vip: VipConfig, table: AddressTable) -> bool:
    """Whether the VIP's address is on its interface (whatever its prefix length: this node
    answers for the address all the same)."""
    return any(a.ip == vip.address.ip for a in on_interface(vip.interface, table))
