"""The one registry of resource kinds: kind -> builder of that kind's resources for a group.

A group starts its resources in the order of ``START_ORDER`` (volume, then VIP, then services in
their configured order) and stops them in reverse.  Adding a kind means one module that calls
:func:`register` and its place in ``START_ORDER``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from failover_hook.resources.base import Resource
from gardien.command_runner import CommandRunner
from gardien.config.model import GroupConfig

START_ORDER = ("volume", "vip", "service")


@dataclass(frozen=True)
class BuildContext:
    """What a resource may need beyond its config: the runner and a folder for its logs."""

    group: str
    runner: CommandRunner
    log_dir: Path


Builder = Callable[[GroupConfig, BuildContext], Sequence[Resource]]

_BUILDERS: dict[str, Builder] = {}


def register(kind: str) -> Callable[[Builder], Builder]:
    def decorate(builder: Builder) -> Builder:
        if kind in _BUILDERS and _BUILDERS[kind] is not builder:
            raise RuntimeError(f"resource kind {kind!r} registered twice")
        _BUILDERS[kind] = builder
        return builder

    return decorate


def build_resources(group: GroupConfig, context: BuildContext) -> list[Resource]:
    """The group's resources in start order."""
    for kind in START_ORDER:
        if kind not in _BUILDERS:
            importlib.import_module(f"failover_hook.resources.{kind}")
    return [res for kind in START_ORDER for res in _BUILDERS[kind](group, context)]
