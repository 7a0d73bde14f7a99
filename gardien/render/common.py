"""Helpers shared by the renderers: Prometheus durations, their render flags, stable YAML output."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from gardien.options import Option, command_line
from gardien.types import parse_duration

RULES_FILE = "rules.yml"
"""The rule file ``gardien render rules --out`` writes, and the one the scrape config loads."""

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def prom_duration(seconds: float) -> str:
    """Write seconds the way Prometheus and Alertmanager read them: ``90`` -> ``1m30s``."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    whole, rest_ms = divmod(millis, 1000)
    parts = []
    for unit, size in _UNITS:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest_ms:
        parts.append(f"{rest_ms}ms")
    return "".join(parts)


def _duration_argument(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def duration_option(flag: str, help: str) -> dict[str, Option]:
    """The metadata of a render option field in seconds, set by ``flag`` as ``3s``, ``200ms``,
    ``1h``...; its help shows the field's default the way Prometheus writes it."""
    return command_line(
        Option(
            (flag,),
            help=help,
            type=_duration_argument,
            metavar="DURATION",
            show_default=prom_duration,
        )
    )


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order the renderers built them, long strings kept on one line."""

    def ignore_aliases(self, data: Any) -> bool:
        """Repeat shared values (``group_by``) instead of writing YAML anchors."""
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any, header: str = "") -> str:
    """YAML text of ``data``, preceded by ``header`` as comment lines."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comments + body
