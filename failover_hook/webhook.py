"""The Alertmanager webhook payload (version 4), parsed and checked before anything acts on it.

Three kinds of bad input, three answers: a body too large (413, enforced by the app), a body that
is not a version 4 payload (:class:`PayloadError`, 400) and a failover alert whose ``group`` or
``node`` label names nothing in the config (:class:`UnknownLabelsError`, 422).  Label values are
only ever data: they select configured groups and nodes by exact dictionary lookup and never reach
a shell or argv.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gardien.alerts import FAILOVER_ALERTS, GROUP_FAILED
from gardien.config import ClusterConfig

MAX_BODY_BYTES = 1024 * 1024
"""Alertmanager truncates to ``max_alerts``; a bigger body is not a notification for us (413)."""


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload of version 4 (HTTP 400)."""


class UnknownLabelsError(ValueError):
    """A failover alert names a group or node the config does not have (HTTP 422)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Model(BaseModel):
    # strict: a number where a label value belongs is an error, never coerced
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, populate_by_name=True)


class Alert(_Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt", strict=False)
    ends_at: datetime | None = Field(None, alias="endsAt", strict=False)
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field(pattern=r"^[0-9A-Za-z_-]{1,64}$")

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def shown_name(self) -> str:
        """The alert name for messages and logs: any other than ours is quoted and cut short."""
        return self.alertname if self.alertname in FAILOVER_ALERTS else _shown(self.alertname)

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def is_failover(self) -> bool:
        return self.firing and self.alertname in FAILOVER_ALERTS

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two deliveries the same failure: (group, fingerprint, startsAt)."""
        return (self.labels.get("group", ""), self.fingerprint, self.starts_at.isoformat())


class Payload(_Model):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[Alert] = Field(max_length=10_000)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    external_url: str = Field("", alias="externalURL")
    group_key: str = Field("", alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)


def parse_payload(body: bytes) -> Payload:
    """Parse a webhook body; raise :class:`PayloadError` with a short reason when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadError(f"malformed JSON: {exc}") from None
    if isinstance(data, dict) and "version" in data and data["version"] != "4":
        raise PayloadError(f"unsupported webhook version {str(data['version'])[:20]!r} (need '4')")
    try:
        return Payload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PayloadError(
            f"not an Alertmanager webhook payload: {where}: {first['msg']}"
        ) from None


def check_labels(payload: Payload, config: ClusterConfig) -> None:
    """Raise :class:`UnknownLabelsError` when a firing failover alert names no configured group
    or node."""
    problems = []
    for alert in payload.alerts:
        if not alert.is_failover:
            continue
        node = alert.labels.get("node")
        if node is None or node not in config.nodes:
            problems.append(f"{alert.alertname}: unknown node {_shown(node)}")
        if alert.alertname == GROUP_FAILED:
            group = alert.labels.get("group")
            if group is None or group not in config.groups:
                problems.append(f"{alert.alertname}: unknown group {_shown(group)}")
            elif node in config.nodes and node not in config.groups[group].nodes:
                problems.append(f"{alert.alertname}: group {group} does not run on node {node}")
    if problems:
        raise UnknownLabelsError(problems)


def _shown(value: str | None) -> str:
    """A label value quoted and cut short for a message (it may be anything)."""
    return "(missing)" if value is None else repr(value[:64])
