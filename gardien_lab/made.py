"""What one lab instance made, recorded in its state folder as it makes it: ``lab down`` removes
these and nothing else.

* network namespaces: name, inode, and the random tag set on their loopback
  (:func:`gardien_lab.netns.add_netns`), so that a namespace of the same name made by someone
  else, even one reusing the inode, is told apart;
* holders (the machines' "power"): pid and start time, so that a reused pid is never taken for one;
* loop devices: device and the image they were attached to.

The record is one JSON file, rewritten whole (write, then rename) after each thing made: a crash of
``lab up`` loses at most the thing it was making, which ``down`` then reports as not its own.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gardien_lab.netns import Holder, netns_inode, netns_tag


@dataclass(frozen=True)
class MadeNetns:
    inode: int
    tag: str


@dataclass
class Made:
    """The record of one lab instance (see the module's docstring)."""

    netns: dict[str, MadeNetns] = field(default_factory=dict)
    holders: dict[str, Holder] = field(default_factory=dict)
    """By machine."""
    loops: dict[str, str] = field(default_factory=dict)
    """Image path by loop device."""


def new_tag(lab_name: str) -> str:
    return f"gardien-lab:{lab_name}:{secrets.token_hex(6)}"


def is_ours(name: str, made: MadeNetns) -> bool:
    """The namespace ``name`` that exists now is the one recorded as made."""
    return netns_inode(name) == made.inode and netns_tag(name) == made.tag


def path(lab_dir: Path) -> Path:
    return lab_dir / "made.json"


def load(lab_dir: Path) -> Made:
    try:
        data = json.loads(path(lab_dir).read_text())
    except (OSError, ValueError):
        return Made()
    return Made(
        netns={n: MadeNetns(**v) for n, v in data.get("netns", {}).items()},
        holders={m: Holder(**v) for m, v in data.get("holders", {}).items()},
        loops=dict(data.get("loops", {})),
    )


def save(lab_dir: Path, made: Made) -> None:
    lab_dir.mkdir(parents=True, exist_ok=True)
    temporary = path(lab_dir).with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(made), indent=1) + "\n")
    os.replace(temporary, path(lab_dir))
