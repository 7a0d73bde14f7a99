"""The checks that span several keys: nodes named by groups and fencing, shared addresses, VIPs,
devices and mountpoints, service names, restarts in place without a settle period.

They read the YAML as parsed, not the validated :class:`~gardien.config.model.ClusterConfig`, so
that they run in the same pass as the field checks even when a field elsewhere is invalid (an
operator fixing a file sees every problem at once, not a new one after each fix).  Each leaf they
compare is converted with the type the model gives it; a leaf that does not convert is left out,
as its own problem is already reported by the field checks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from gardien.config.model import HookConfig, NodeConfig, Problem, RestartConfig, VipConfig
from gardien.types import Duration

T = TypeVar("T")

KeyPath = tuple[str | int, ...]

_NODE_ADDRESS: TypeAdapter[ipaddress.IPv4Address | ipaddress.IPv6Address] = TypeAdapter(
    NodeConfig.model_fields["address"].annotation
)
_DURATION: TypeAdapter[float] = TypeAdapter(Duration)
_ATTEMPTS: TypeAdapter[int] = TypeAdapter(RestartConfig.model_fields["attempts"].annotation)
_VIP_ADDRESS: TypeAdapter[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = TypeAdapter(
    VipConfig.model_fields["address"].annotation
)


def _converted(adapter: TypeAdapter[T], value: Any) -> T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _groups(data: Mapping[str, Any]) -> Iterator[tuple[str, dict[Any, Any]]]:
    for name, group in _mapping(data.get("groups")).items():
        yield str(name), _mapping(group)


def cross_check(data: Mapping[str, Any]) -> list[Problem]:
    """Problems that span several keys, each with the key path it is about."""
    nodes = {str(name) for name in _mapping(data.get("nodes"))}
    return [
        *_check_node_addresses(data),
        *(
            (("fencing", name), f"fencing names unknown node {name!r}")
            for name in map(str, _mapping(data.get("fencing")))
            if name not in nodes
        ),
        *_check_group_nodes(data, nodes),
        *_check_service_names(data),
        *_check_group_resources(data),
        *_check_restart_settle(data),
    ]


def _check_node_addresses(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    addresses: dict[str, str] = {}
    for name, node in _mapping(data.get("nodes")).items():
        address = _converted(_NODE_ADDRESS, _mapping(node).get("address"))
        if address is None:
            continue
        other = addresses.setdefault(str(address), str(name))
        if other != str(name):
            problems.append((("nodes", name, "address"), f"same address as node {other!r}"))
    return problems


def _check_group_nodes(data: Mapping[str, Any], known: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for group_name, group in _groups(data):
        listed = [n for n in _items(group.get("nodes")) if isinstance(n, str)]
        for j, node in enumerate(_items(group.get("nodes"))):
            if isinstance(node, str) and node not in known:
                where = ("groups", group_name, "nodes", j)
                problems.append((where, f"group names unknown node {node!r}"))
        if len(set(listed)) != len(listed):
            problems.append((("groups", group_name, "nodes"), "a node is listed twice"))
    return problems


def _service_names(data: Mapping[str, Any]) -> Iterator[tuple[KeyPath, Any]]:
    for i, service in enumerate(_items(data.get("node_services"))):
        yield ("node_services", i, "name"), _mapping(service).get("name")
    for group_name, group in _groups(data):
        for j, service in enumerate(_items(group.get("services"))):
            yield ("groups", group_name, "services", j, "name"), _mapping(service).get("name")


def _check_service_names(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, KeyPath] = {}
    for where, name in _service_names(data):
        if not isinstance(name, str):
            continue
        first = seen.setdefault(name, where)
        if first != where:
            place = ".".join(str(p) for p in first)
            problems.append((where, f"duplicate service name {name!r} (first at {place})"))
    return problems


def _check_group_resources(data: Mapping[str, Any]) -> list[Problem]:
    """Two groups never share a VIP, a device or a mountpoint."""
    problems: list[Problem] = []
    owners: dict[str, str] = {}
    for group_name, group in _groups(data):
        claims: list[tuple[KeyPath, str]] = []
        vip = _converted(_VIP_ADDRESS, _mapping(group.get("vip")).get("address"))
        if vip is not None:
            claims.append((("vip", "address"), f"VIP {vip.ip}"))
        volume = _mapping(group.get("volume"))
        for field in ("device", "mountpoint"):
            if isinstance(volume.get(field), str):
                claims.append((("volume", field), f"{field} {volume[field]}"))
        for key, what in claims:
            other = owners.setdefault(what, group_name)
            if other != group_name:
                problems.append((("groups", group_name, *key), f"{what} is also group {other!r}'s"))
    return problems


def _check_restart_settle(data: Mapping[str, Any]) -> list[Problem]:
    """A restart in place needs ``hook.settle`` above 0: the alert that led to a restart still
    fires while the service comes back, and only the settle period after the restart keeps it
    from moving the group whose restart worked (docs/config.md, "Restart in place")."""
    hook = _mapping(data.get("hook"))
    default = HookConfig.model_fields["settle"].default
    settle = _converted(_DURATION, hook["settle"]) if "settle" in hook else default
    if settle is None or settle > 0:
        return []
    problems: list[Problem] = []
    for group_name, group in _groups(data):
        for j, service in enumerate(_items(group.get("services"))):
            restart = _mapping(_mapping(service).get("restart"))
            attempts = _converted(_ATTEMPTS, restart.get("attempts", 0))
            if attempts:
                where = ("groups", group_name, "services", j, "restart", "attempts")
                problems.append((where, "a restart in place needs hook.settle above 0"))
    return problems
