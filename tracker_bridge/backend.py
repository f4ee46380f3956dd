"""The public contract between the sync daemon and a tracker backend.

A backend is a class registered through the ``tracker_bridge_register`` hook (see
``hookspecs.py``). It turns the tracker's issues into normalized tickets
(:class:`tracker_bridge.core.ticket.Ticket`) and applies a :class:`Diff` computed by the sync
layer. It owns nothing of the policy: it never decides what to write, only how.

Rules every backend follows (``tracker_bridge.testing.BackendContract`` checks them):

- ``fetch_changed`` is incremental: given the cursor it returned last time, it returns every
  ticket changed since, at least once (repeats are fine, losses are not), and a new cursor
  derived from the tracker's own timestamps, never the local clock.
- ``apply`` writes only what the diff names. It never removes or edits a label, field or
  comment the bridge does not own, and each note it posts carries ``note_marker(key)`` so
  that ``posted_note_keys`` finds it again even when the state store is lost.
- Errors are raised as :mod:`tracker_bridge.errors` types, so the daemon can tell
  "retry later" from "fix your credentials" from "this one ticket was refused".
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .core.ticket import Ticket
from .core.verdict import Note

NOTE_MARKER_RE = re.compile(r"\[tracker-bridge:note=([A-Za-z0-9:._\-]+)\]")


def note_marker(key: str) -> str:
    """The marker appended to every note the bridge posts, e.g. ``[tracker-bridge:note=kb]``."""
    return f"[tracker-bridge:note={key}]"


def posted_note_keys(ticket: Ticket) -> set[str]:
    """The keys of the bridge's notes already on the ticket, read from its comments."""
    keys: set[str] = set()
    for ev in ticket.history:
        if ev.kind == "comment" and ev.text:
            keys.update(NOTE_MARKER_RE.findall(ev.text))
    return keys


@dataclass(frozen=True, slots=True)
class Diff:
    """What the sync layer wants changed on one ticket; empty means write nothing.

    ``set_fields`` maps a bridge-owned normalized field (``response_due``,
    ``resolution_due``) to its new text value, ``None`` to clear it.
    """

    key: str
    set_fields: Mapping[str, str | None] = field(default_factory=dict)
    add_labels: frozenset[str] = frozenset()
    remove_labels: frozenset[str] = frozenset()
    notes: tuple[Note, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set_fields or self.add_labels or self.remove_labels or self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "set_fields": dict(self.set_fields),
            "add_labels": sorted(self.add_labels),
            "remove_labels": sorted(self.remove_labels),
            "notes": [n.to_dict() for n in self.notes],
        }


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One incremental read: the changed tickets and the cursor to pass next time."""

    tickets: list[Ticket]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Problem:
    """Something ``check`` found wrong with a tracker's setup, in words an admin can act on."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class Backend(abc.ABC):
    """Base class of every tracker backend.

    Subclasses set ``name`` (the ``backend:`` value in the config), and may set
    ``config_model`` to a pydantic model validating their own section of a tracker's config.
    """

    #: the value of ``backend:`` in a tracker's config that selects this class
    name: ClassVar[str]
    #: pydantic model of backend-specific options (``options:`` in the tracker config)
    config_model: ClassVar[type | None] = None

    @abc.abstractmethod
    def fetch_changed(self, cursor: str | None) -> FetchResult:
        """Every ticket changed since ``cursor`` (all tickets in scope when ``None``)."""

    @abc.abstractmethod
    def fetch_ticket(self, key: str) -> Ticket:
        """One ticket by its key, with its full history."""

    @abc.abstractmethod
    def apply(self, diff: Diff) -> None:
        """Write the diff to the tracker. Must be safe to repeat (see module docstring)."""

    def check(self, labels: Iterable[str]) -> list[Problem]:
        """Connect and verify that every mapped status, field and custom field exists.

        ``labels`` is every label the policy can ask for, so a backend whose labels live in
        a list field can say which values an admin must add. The default checks nothing.
        """
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""
