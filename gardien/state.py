"""What the node agent (``gardien hook``) and the exporter share on one node: the state folder.

The agent records the groups it holds as empty files ``<state_dir>/held/<group>`` (written after a
successful acquire, removed after a successful release).  For a group that has neither a volume
nor a VIP they are the only sign that it is held here: :mod:`gardien.node.holding` reads them for
the exporter's ``gardien_group_active`` and the agent's status alike.  The journal lives in
``<state_dir>/journal.db``.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/gardien")


def held_dir(state_dir: Path) -> Path:
    return state_dir / "held"


def held_groups(state_dir: Path) -> set[str]:
    folder = held_dir(state_dir)
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def mark_held(state_dir: Path, group: str, held: bool) -> None:
    folder = held_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / group
    if held:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)
