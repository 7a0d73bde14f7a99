"""The one registry of probe kinds: kind name -> Probe subclass.

Adding a probe kind means one new module in ``gardien.probes`` that calls :func:`register` on its
class, plus its entry in ``_KIND_MODULES`` below.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from gardien.probes.base import Probe, ProbeParams

_KIND_MODULES = ("http", "tcp", "mysql", "smb", "winbind", "process", "ldap")

_REGISTRY: dict[str, type[Probe[ProbeParams]]] = {}
_builtins_loaded = False

K = TypeVar("K", bound=type[Probe[Any]])


def register(cls: K) -> K:
    """Class decorator: make a probe kind known to the config and the exporter."""
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise RuntimeError(f"probe kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def probe_kinds() -> Mapping[str, type[Probe[ProbeParams]]]:
    """Every registered probe kind, importing the built-in kinds on first use."""
    global _builtins_loaded  # noqa: PLW0603 - a one-time import, like a module-level cache
    if not _builtins_loaded:
        for module in _KIND_MODULES:
            importlib.import_module(f"gardien.probes.{module}")
        _builtins_loaded = True
    return _REGISTRY


def build_probe(kind: str, params: ProbeParams) -> Probe[ProbeParams]:
    return probe_kinds()[kind](params)
