"""Why a journal entry was made: a kind and the entry or move it belongs to, kept as columns.

The journal stores the structured parts (``trigger_kind``, ``trigger_parent``,
``trigger_move_key``, ``trigger_by``) for the code to read, and :attr:`Trigger.text` ("move #7",
"undo of move #7", "recovery of #3", "move node2#7", "manual by alice") for people, in ``gardien
history`` and the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class TriggerKind(StrEnum):
    MANUAL = "manual"
    """A move asked by hand (``gardien migrate``)."""
    ALERT = "alert"
    """A move the webhook decided on."""
    API = "api"
    """A local acquire or release asked over the API (by an operator, or a move's undo)."""
    MOVE = "move"
    """A local acquire or release that is a step of this node's move ``parent``."""
    PEER_MOVE = "peer_move"
    """A release another node's move asked for (``move_key``): a move that took the group away."""
    UNDO = "undo"
    """Undoing a step of this node's move ``parent`` (None: giving a source its group back)."""
    RECOVERY = "recovery"
    """Finishing or rolling back the entry ``parent`` a crash interrupted."""


@dataclass(frozen=True)
class Trigger:
    """Why an entry was journaled; :attr:`text` is its readable form, for people only."""

    kind: TriggerKind
    parent: int | None = None
    """The entry of this node's journal this one is part of (a move, an undone or recovered one)."""
    move_key: str | None = None
    """The key of another node's move (``node2#7``, :func:`failover_hook.journal.move_key`)."""
    by: str | None = None
    """The operator who asked for it, when the request named one (the web console names its
    basic-auth user, or ``token``)."""

    @classmethod
    def step_of(cls, move_id: int) -> Trigger:
        return cls(TriggerKind.MOVE, parent=move_id)

    @classmethod
    def undo_of(cls, move_id: int | None = None) -> Trigger:
        return cls(TriggerKind.UNDO, parent=move_id)

    @classmethod
    def recovery_of(cls, entry_id: int) -> Trigger:
        return cls(TriggerKind.RECOVERY, parent=entry_id)

    @classmethod
    def for_peer_move(cls, key: str) -> Trigger:
        return cls(TriggerKind.PEER_MOVE, move_key=key)

    @property
    def text(self) -> str:
        """For people: the words ``gardien history`` shows."""
        if self.kind is TriggerKind.MOVE:
            return f"move #{self.parent}"
        if self.kind is TriggerKind.PEER_MOVE:
            return f"move {self.move_key}"
        if self.kind is TriggerKind.UNDO and self.parent is not None:
            return f"undo of move #{self.parent}"
        if self.kind is TriggerKind.RECOVERY:
            return f"recovery of #{self.parent}"
        return f"{self.kind} by {self.by}" if self.by else str(self.kind)

    def __str__(self) -> str:
        return self.text


API = Trigger(TriggerKind.API)

_LEGACY_STEP = re.compile(r"move #(\d+)")
_LEGACY_UNDO = re.compile(r"undo of move #(\d+)")
_LEGACY_RECOVERY = re.compile(r"recovery of #(\d+)")
_LEGACY_PEER_MOVE = re.compile(r"move ([^#\s]+#\d+)")


def from_legacy_text(text: str) -> Trigger:
    """The trigger a journal written before the trigger columns meant by ``text``.

    Read once, when :class:`failover_hook.journal.Journal` adds the columns to such a journal;
    nothing reads the text after that.  A text of no known form is taken for an API call.
    """
    if found := _LEGACY_STEP.fullmatch(text):
        return Trigger.step_of(int(found.group(1)))
    if found := _LEGACY_UNDO.fullmatch(text):
        return Trigger.undo_of(int(found.group(1)))
    if found := _LEGACY_RECOVERY.fullmatch(text):
        return Trigger.recovery_of(int(found.group(1)))
    if found := _LEGACY_PEER_MOVE.fullmatch(text):
        return Trigger.for_peer_move(found.group(1))
    try:
        return Trigger(TriggerKind(text))
    except ValueError:
        return API
