"""Helpers shared by the renderers: Prometheus durations and stable YAML output."""

from __future__ import annotations

from typing import Any

import yaml

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
