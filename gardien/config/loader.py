"""Read the cluster config once: YAML -> typed objects, or every problem with its place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gardien.config.crossref import cross_check
from gardien.config.model import ClusterConfig
from gardien.errors import ConfigError

DEFAULT_CONFIG = Path("/etc/gardien/cluster.yml")

KeyPath = tuple[str | int, ...]


def default_config_path() -> Path:
    return Path(os.environ.get("GARDIEN_CONFIG", DEFAULT_CONFIG))


def _line_index(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    """Record the 1-based line of every key path in the YAML node tree."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), lines)


def _line(path: KeyPath, lines: dict[KeyPath, int]) -> int:
    """The line of the deepest part of the path that is in the file."""
    for depth in range(len(path), -1, -1):
        if path[:depth] in lines:
            return lines[path[:depth]]
    return 1


def _place(path: KeyPath, lines: dict[KeyPath, int]) -> str:
    """``line 12: groups.php4.vip.address``, from the deepest part of the path in the file."""
    dotted = ".".join(str(p) for p in path) or "(top level)"
    return f"line {_line(path, lines)}: {dotted}"


def _clean_loc(loc: tuple[str | int, ...]) -> KeyPath:
    """Drop the probe-kind tags pydantic repeats in union locations (``http.http.url``)."""
    cleaned: list[str | int] = []
    for part in loc:
        if cleaned and part == cleaned[-1] and isinstance(part, str):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _duplicate_keys(node: yaml.Node, path: KeyPath, problems: list[tuple[KeyPath, str]]) -> None:
    """YAML silently keeps the last of two equal keys; for a cluster config that hides mistakes."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                problems.append(((*path, key_node.value), "key given twice"))
            seen.add(key_node.value)
            _duplicate_keys(value_node, (*path, key_node.value), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, (*path, i), problems)


def parse_config(
    text: str, source: str = "<config>", base_dir: Path | None = None, check_files: bool = True
) -> ClusterConfig:
    """Parse config text; raise :class:`ConfigError` listing every problem with its line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise ConfigError(source, [f"{source}: {where}: invalid YAML: {exc}"]) from exc
    if root is None or not isinstance(data, dict):
        raise ConfigError(source, [f"{source}: line 1: the config must be a YAML mapping"])
    lines: dict[KeyPath, int] = {}
    _line_index(root, (), lines)
    problems: list[tuple[KeyPath, str]] = []
    _duplicate_keys(root, (), problems)
    context = {"base_dir": base_dir or Path.cwd(), "check_files": check_files}
    config: ClusterConfig | None = None
    try:
        config = ClusterConfig.model_validate(data, context=context)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            problems.append((_clean_loc(error["loc"]), error["msg"]))
    # with the field checks, whatever they found: every problem of the file in one run
    problems.extend(cross_check(data))
    if problems:
        problems.sort(key=lambda problem: _line(problem[0], lines))  # in the order of the file
        raise ConfigError(source, [f"{source}: {_place(p, lines)}: {m}" for p, m in problems])
    assert config is not None
    return config


def place_in_file(file: Path, path: KeyPath) -> str:
    """``line 12: groups.php4.volume.mmp``: where ``path`` is in ``file``, for the checks that run
    once the config is loaded (what the machine shows of it); the path alone if unreadable."""
    lines: dict[KeyPath, int] = {}
    try:
        root = yaml.compose(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        root = None
    if root is not None:
        _line_index(root, (), lines)
    return _place(path, lines)


def load_config(path: Path | str | None = None, check_files: bool = True) -> ClusterConfig:
    """Read and validate the cluster config file (default: ``$GARDIEN_CONFIG`` or /etc/gardien)."""
    file = Path(path) if path is not None else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    config = parse_config(text, str(file), file.resolve().parent, check_files)
    return config.model_copy(update={"source": file.resolve()})
