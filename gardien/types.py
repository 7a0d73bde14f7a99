"""Value types shared by every part of the config (durations, command lines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WrapValidator

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Parse a Prometheus-style duration (``500ms``, ``10s``, ``1h30m``) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(
            "a duration must be a number of seconds or a string like '10s', '5m', '1h'"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"invalid duration {value!r}: use e.g. '500ms', '10s', '5m', '1h30m'")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError(
            "a duration must be a number of seconds or a string like '10s', '5m', '1h'"
        )
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in the config as ``10s``, ``5m``, ``1h`` or a plain number."""

PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]

Command = Annotated[list[str], Field(min_length=1)]
"""An argv list; gardien never passes a command line through a shell."""


def _valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    return value


Regex = Annotated[str, AfterValidator(_valid_regex)]
"""A Python regular expression, checked when the config is loaded."""

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=63)]
"""A name used in metric labels, journal rows and URLs."""


def _resolve_existing_file(value: Any, info: ValidationInfo) -> Path:
    """Resolve a path against the config file's folder and require that the file exists.

    Secrets (passwords, tokens) live in files the config names; a missing one is reported at load
    time rather than on the first failover.  ``check_files=False`` in the validation context skips
    the existence check, for checking a config on a host other than the one it is meant for.
    """
    context = info.context or {}
    path = Path(str(value)).expanduser()
    if not path.is_absolute():
        path = Path(context.get("base_dir", ".")) / path
    if context.get("check_files", True) and not path.is_file():
        raise ValueError(f"file {path} does not exist")
    return path


SecretFile = Annotated[Path, WrapValidator(lambda v, _h, info: _resolve_existing_file(v, info))]
"""A file the config names (credentials, token); relative to the config file, must exist."""
