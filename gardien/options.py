"""Command-line options shared by several ``gardien`` commands, each declared once.

As Patroni's ``option_force`` and fence-agents' ``all_opt``: a flag's name, destination, type,
default and help live in one :class:`Option`, and every command adds it with :meth:`Option.add_to`,
so ``gardien exporter --help`` and ``gardien render rules --help`` cannot describe
``--config.file`` differently.  A command overrides a keyword only where the flag means something
more precise there (what ``--force`` overrides when migrating).  Options declared as dataclass
fields (the render options) use :func:`command_line`, :func:`add_field_options` and
:func:`from_args`, so the argparse default is the field's default and the help shows it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel

from gardien.config.loader import DEFAULT_CONFIG
from gardien.state import DEFAULT_STATE_DIR

T = TypeVar("T")

_OPTION = "gardien.option"
"""The key of an :class:`Option` in a dataclass field's metadata."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One flag: what :meth:`argparse.ArgumentParser.add_argument` takes, declared once."""

    flags: tuple[str, ...]
    help: str
    """May name ``{placeholders}`` that each command fills (see :meth:`add_to`); a command that
    leaves one out fails when it builds its parser, not with a help that shows the braces."""
    dest: str | None = None
    type: Callable[[str], Any] | None = None
    default: Any = None
    action: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    show_default: Callable[[Any], str] | None = None
    """When set, the help ends with ``(default X)``, X being this function of the default: the
    help states the declared default instead of a copy of it."""

    def add_to(
        self,
        parser: argparse.ArgumentParser | argparse._ArgumentGroup,
        *,
        help_values: Mapping[str, object] = MappingProxyType({}),
        **overrides: Any,
    ) -> argparse.Action:
        """Add the flag to ``parser``; ``help_values`` fill the help's placeholders,
        ``overrides`` replace keywords of ``add_argument`` for this command."""
        declared = {
            "dest": self.dest,
            "type": self.type,
            "action": self.action,
            "metavar": self.metavar,
            "choices": self.choices,
        }
        keywords: dict[str, Any] = {k: v for k, v in declared.items() if v is not None}
        keywords["default"] = self.default
        keywords["help"] = self.help_text(help_values)
        keywords.update(overrides)
        return parser.add_argument(*self.flags, **keywords)

    def help_text(self, values: Mapping[str, object] = MappingProxyType({})) -> str:
        text = self.help.format_map(values)
        if self.show_default is not None:
            text = f"{text} (default {self.show_default(self.default)})"
        return text


CONFIG_FILE = Option(
    ("--config.file",),
    dest="config_file",
    type=Path,
    metavar="FILE",
    help=f"the cluster config (default $GARDIEN_CONFIG, else {DEFAULT_CONFIG})",
)
LISTEN_ADDRESS = Option(
    ("--web.listen-address",),
    dest="listen_address",
    metavar="ADDR",
    help="HOST:PORT, or :PORT for every address, to listen on "
    "(default this node's address in the config, on {port_setting}: {port} unless set)",
)
"""Each daemon fills the help with :func:`listen_port_help`."""
WEB_CONFIG_FILE = Option(
    ("--web.config.file",),
    dest="web_config_file",
    type=Path,
    metavar="FILE",
    help="TLS and basic auth, in the Prometheus exporter-toolkit web config format",
)
STATE_DIR = Option(
    ("--state-dir",),
    dest="state_dir",
    type=Path,
    default=DEFAULT_STATE_DIR,
    metavar="DIR",
    help="this node's state: journal, freeze state and the groups its agent holds",
    show_default=str,
)
NODE = Option(
    ("--node",),
    dest="node",
    metavar="NAME",
    help="the node, by its name in the config (default: the node whose address this host has)",
)
OUTPUT = Option(
    ("--output",),
    dest="output",
    choices=("text", "json"),
    default="text",
    help="how to print the result",
    show_default=str,
)
FORCE = Option(
    ("--force",),
    dest="force",
    action="store_true",
    default=False,
    help="do not ask for confirmation",
)
DRY_RUN = Option(
    ("--dry-run",),
    dest="dry_run",
    action="store_true",
    default=False,
    help="print what would be done, do nothing",
)
SKIP_FILE_CHECKS = Option(
    ("--skip-file-checks",),
    dest="skip_file_checks",
    action="store_true",
    default=False,
    help="do not require the files the config names (token, credentials) to exist on this host",
)


def listen_port_help(section: type[BaseModel], setting: str) -> dict[str, object]:
    """The help values of :data:`LISTEN_ADDRESS` for a daemon that listens on the port
    ``setting`` of the config, whose model ``section`` declares the port used when unset."""
    return {"port_setting": setting, "port": section.model_fields["port"].default}


def command_line(option: Option) -> dict[str, Option]:
    """The metadata of a dataclass field set from the command line by ``option``: leave out its
    ``dest`` and ``default``, the field's name and default are used."""
    return {_OPTION: option}


def field_options(options_type: type[Any]) -> list[Option]:
    """The options of the fields declared with :func:`command_line`, with the field's name as
    ``dest`` and its default."""
    found = []
    for field in dataclasses.fields(options_type):
        option = field.metadata.get(_OPTION)
        if option is None:
            continue
        if field.default is dataclasses.MISSING:
            raise TypeError(f"{options_type.__name__}.{field.name}: an option needs a default")
        found.append(dataclasses.replace(option, dest=field.name, default=field.default))
    return found


def add_field_options(parser: argparse.ArgumentParser, options_type: type[Any]) -> None:
    """Add a flag for every field of the dataclass ``options_type`` declared with
    :func:`command_line`.

    A repeatable flag (``action="append"``) starts from no value, so that the flags given replace
    the default instead of adding to it (argparse appends to a default list); its help still
    shows the field's default, which :func:`from_args` falls back to.
    """
    for option in field_options(options_type):
        if option.action == "append":
            option.add_to(parser, default=None)
        else:
            option.add_to(parser)


def from_args(options_type: type[T], args: argparse.Namespace) -> T:
    """An ``options_type`` from parsed arguments: the flags given, the field defaults otherwise."""
    values: dict[str, Any] = {}
    for option in field_options(options_type):
        assert option.dest is not None
        value = getattr(args, option.dest)
        if option.action == "append":
            value = tuple(value) if value is not None else option.default
        values[option.dest] = value
    return options_type(**values)
