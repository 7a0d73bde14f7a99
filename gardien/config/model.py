"""The cluster config as typed, validated, immutable objects.

One file describes the whole cluster and is the same on every node.  It is parsed once (see
:mod:`gardien.config.loader`); nothing downstream indexes raw dicts.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    Tag,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from gardien.probes.base import ProbeParams
from gardien.probes.registry import probe_kinds
from gardien.types import Command, Duration, Name, PositiveDuration, SecretFile

Problem = tuple[tuple[str | int, ...], str]
"""A problem found in the config: the key path it is about and what is wrong."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class ProbeSpec:
    """One configured probe: its label name, its kind and that kind's validated parameters."""

    name: str
    kind: str
    params: ProbeParams

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate ``{kind: {params}}`` against the kind's own model, keeping error locations."""
        kinds = probe_kinds()
        entries = []
        for kind, probe_cls in sorted(kinds.items()):
            entry = create_model(  # type: ignore[call-overload]
                f"{kind.capitalize()}ProbeEntry",
                __config__=ConfigDict(frozen=True, extra="forbid"),
                **{kind: (probe_cls.params_model, ...)},
            )
            entries.append(Annotated[entry, Tag(kind)])

        def kind_of(value: Any) -> str | None:
            if isinstance(value, dict) and len(value) == 1:
                key = next(iter(value))
                return key if key in kinds else None
            if isinstance(value, BaseModel):
                return next(iter(type(value).model_fields))
            return None

        union: Any = Annotated[
            Union[tuple(entries)],  # noqa: UP007 - the union is built at run time
            Discriminator(
                kind_of,
                custom_error_type="probe_kind",
                custom_error_message=(
                    "a probe is a mapping with one key, its kind: one of "
                    + ", ".join(sorted(kinds))
                ),
            ),
        ]

        def to_spec(entry: BaseModel) -> ProbeSpec:
            kind = next(iter(type(entry).model_fields))
            params: ProbeParams = getattr(entry, kind)
            return ProbeSpec(name=params.name or kind, kind=kind, params=params)

        def known_kind(value: Any) -> Any:
            if isinstance(value, dict) and len(value) == 1 and next(iter(value)) not in kinds:
                raise PydanticCustomError(
                    "probe_kind",
                    "unknown probe kind '{kind}'; known kinds: {known}",
                    {"kind": str(next(iter(value))), "known": ", ".join(sorted(kinds))},
                )
            return value

        return core_schema.no_info_before_validator_function(
            known_kind,
            core_schema.no_info_after_validator_function(to_spec, handler.generate_schema(union)),
        )


def _name_probes(probes: tuple[ProbeSpec, ...]) -> tuple[ProbeSpec, ...]:
    """Give unnamed probes of the same kind distinct names (``http``, ``http_2``...)."""
    seen: dict[str, int] = {}
    named = []
    for spec in probes:
        if spec.params.name is None:
            seen[spec.kind] = seen.get(spec.kind, 0) + 1
            if seen[spec.kind] > 1:
                named.append(ProbeSpec(f"{spec.kind}_{seen[spec.kind]}", spec.kind, spec.params))
                continue
        named.append(spec)
    names = [s.name for s in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PydanticCustomError(
            "duplicate_probe", "duplicate probe name(s): {names}", {"names": ", ".join(duplicates)}
        )
    return tuple(named)


class ProcessSpec:
    """Validates ``process:`` of a service as the ``process`` probe kind's parameters."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        model = probe_kinds()["process"].params_model
        return core_schema.no_info_after_validator_function(
            lambda params: ProbeSpec(name="process", kind="process", params=params),
            handler.generate_schema(model),
        )


class NodeConfig(_Frozen):
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    """Where this node's exporter and hook listen and are reached (the cluster network)."""


class ExporterConfig(_Frozen):
    port: int = Field(19480, ge=1, le=65535)
    scrape_timeout_margin: Duration = 0.25
    """Subtracted from Prometheus' scrape timeout so the answer always arrives in time."""
    default_scrape_timeout: PositiveDuration = 10.0
    """Budget of a scrape that does not send ``X-Prometheus-Scrape-Timeout-Seconds``."""


class HookConfig(_Frozen):
    port: int = Field(19481, ge=1, le=65535)
    token_file: SecretFile | None = None
    """Bearer token every API call must carry (except ``/-/healthy``)."""
    cooldown: Duration = 600.0
    """No automatic move of a group that moved less than this ago."""
    max_moves: int = Field(3, ge=1)
    window: PositiveDuration = 3600.0
    """At most ``max_moves`` automatic moves of one group in this window."""
    settle: Duration = 30.0
    """After a move, alerts about the group start no move for this long (its services restart)."""
    request_timeout: PositiveDuration = 5.0
    """Timeout of one call to a peer's agent API."""
    confirm_failure: bool = True
    """Before moving a group on ``GardienGroupFailed``, ask its node to check the group's
    resources again, and move only when one fails there now (failover_hook/confirm.py): a probe
    that failed once moves nothing, so the rule's ``for`` can be short."""
    prometheus_url: str | None = Field(None, pattern=r"^https?://[^\s/]+")
    """The Prometheus that scrapes this cluster (``http://mon:9090``).  Before fencing a node
    that did not answer, the hook asks it whether that node's exporter or hook was scraped since
    (a busy node is, a dead one is not): see failover_hook/silence.py."""
    tls_ca_file: SecretFile | None = None
    """The hooks serve https (``tls_server_config`` in their ``--web.config.file``): peers, the
    CLI, Alertmanager and Prometheus call them with https and verify their certificates against
    this CA.  A hook's certificate must name its node's address (an IP subjectAltName)."""


class NetworkConfig(_Frozen):
    interface: str = Field(min_length=1, max_length=15)
    internal: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    external: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    timeout: PositiveDuration = 1.0
    """ICMP echo timeout per target."""


class DiskConfig(_Frozen):
    device: str = Field(pattern=r"^/dev/")
    type: str | None = None
    """smartctl ``-d`` device type (``sat``, ``nvme``, ``megaraid,0``...); detected when absent."""
    interval: PositiveDuration = 300.0
    """SMART data is read at most this often and cached (a read can take seconds)."""
    timeout: PositiveDuration = 30.0

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, value: Any) -> Any:
        return {"device": value} if isinstance(value, str) else value


class FenceConfig(_Frozen):
    command: Command
    """Run as an argv list (never a shell); exit 0 means the node is off."""
    timeout: PositiveDuration = 60.0


class VolumeConfig(_Frozen):
    device: str = Field(pattern=r"^/")
    mountpoint: str = Field(pattern=r"^/.")
    fstype: str = "ext4"
    options: tuple[str, ...] = ()
    fsck: bool = False
    """Run ``fsck -p`` before mounting."""
    write_test: bool = True
    """The exporter writes and removes a small file to prove the volume is writable."""
    check_every: Duration = 5.0
    """The exporter's filesystem check (free space and the write test, which fsyncs the volume)
    runs at most this often; the scrapes between two checks report the last one's answer.  A
    read-only remount or an unmount shows at the next scrape whatever this is (the mount table
    is read at every scrape).  0: a check at every scrape."""
    stop_timeout: PositiveDuration = 20.0
    """Time allowed to unmount, killing the processes that hold the volume."""
    mmp: bool = False
    """The device has ext4's multi-mount protection (``tune2fs -O mmp``): the kernel itself
    refuses a mount while another node has it mounted.  ``check-config`` and the agent verify
    the device has the feature; the agent refuses to mount one that lacks it."""
    mmp_update_interval: int = Field(5, ge=1, le=300)
    """The device's MMP update interval (``-E mmp_update_interval=N``; mkfs's default 5): the
    volume's start budget covers the wait it causes after an unclean stop (22 s up to 5 s).
    The agent refuses a device whose interval is longer (its wait would outlast the budget)."""


class VipConfig(_Frozen):
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    interface: str = Field(min_length=1, max_length=15)
    garp_count: int = Field(3, ge=0)
    """Gratuitous ARP announcements sent after adding the address."""
    garp_interval: Duration = 0.2

    @field_validator("address", mode="before")
    @classmethod
    def _prefix_required(cls, value: Any) -> Any:
        if isinstance(value, str) and "/" not in value:
            raise PydanticCustomError(
                "vip_prefix",
                "the VIP '{value}' needs a prefix length, e.g. '{value}/24'",
                {"value": value},
            )
        return value


class ServiceConfig(_Frozen):
    """A service that is probed; node services run on every node and are never moved."""

    name: Name
    process: Annotated[ProbeSpec, ProcessSpec] | None = None
    """Shorthand for a ``process`` probe named ``process``: finds the master and its workers."""
    probes: Annotated[tuple[ProbeSpec, ...], Field(default=())]

    @property
    def all_probes(self) -> tuple[ProbeSpec, ...]:
        return ((self.process,) if self.process else ()) + self.probes

    @model_validator(mode="after")
    def _unique_probe_names(self) -> Self:
        object.__setattr__(self, "probes", _name_probes(self.probes))
        if self.process and any(p.name == "process" for p in self.probes):
            raise PydanticCustomError("duplicate_probe", "duplicate probe name(s): process")
        return self


class RestartConfig(_Frozen):
    """Restarts of a failed service on the node that holds its group, before the group moves."""

    attempts: int = Field(0, ge=0)
    """Restarts allowed in ``window``; 0: a failure moves the group at once."""
    window: PositiveDuration = 600.0
    """The restarts of the last ``window`` seconds count against ``attempts``."""


class GroupServiceConfig(ServiceConfig):
    """A service of a group: started in order after the volume and VIP, stopped in reverse."""

    start: Command | None = None
    stop: Command | None = None
    unit: str | None = None
    """A systemd unit to start and stop instead of commands."""
    start_timeout: PositiveDuration = 60.0
    """Time allowed for the start command and for the probes to pass afterwards."""
    stop_timeout: PositiveDuration = 30.0
    """Time allowed for a clean stop before what is left of the process tree is killed."""
    restart: RestartConfig = RestartConfig()
    """Restart in place before moving (docs/config.md, "Restart in place")."""

    @model_validator(mode="after")
    def _how_to_run(self) -> Self:
        if self.unit and (self.start or self.stop):
            raise PydanticCustomError(
                "service_control", "give either 'unit' or 'start'/'stop' commands, not both"
            )
        return self


class GroupConfig(_Frozen):
    nodes: tuple[Name, ...] = Field(min_length=1)
    """Preference order: the first healthy node of this list runs the group."""
    volume: VolumeConfig | None = None
    vip: VipConfig | None = None
    services: tuple[GroupServiceConfig, ...] = ()


class ClusterConfig(_Frozen):
    cluster: Name
    nodes: dict[Name, NodeConfig] = Field(min_length=1)
    exporter: ExporterConfig = ExporterConfig()
    hook: HookConfig = HookConfig()
    network: NetworkConfig | None = None
    disks: tuple[DiskConfig, ...] = ()
    fencing: dict[Name, FenceConfig] = Field(default_factory=dict)
    node_services: tuple[ServiceConfig, ...] = ()
    groups: dict[Name, GroupConfig] = Field(default_factory=dict)
    source: Path | None = Field(default=None, exclude=True)
    """The file this config was read from (set by the loader)."""

    @cached_property
    def services(self) -> dict[str, tuple[str | None, ServiceConfig]]:
        """Every service by name, with its group (None for node services)."""
        found: dict[str, tuple[str | None, ServiceConfig]] = {
            s.name: (None, s) for s in self.node_services
        }
        for group_name, group in self.groups.items():
            found.update({s.name: (group_name, s) for s in group.services})
        return found

    def node_of_address(self, addresses: set[str]) -> str | None:
        """The configured node whose address is one of ``addresses`` (this host's own)."""
        for name, node in self.nodes.items():
            if str(node.address) in addresses:
                return name
        return None
