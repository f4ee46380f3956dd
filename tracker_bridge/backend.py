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
  "retry later" from "fix your credentials" from "this one ticket was refused";
  ``fetch_ticket`` of a key that does not exist (or is no longer visible) raises
  :class:`tracker_bridge.errors.TicketNotFound`.
- A fetched ticket shows what the bridge wrote last time, so that the sync layer can diff:
  ``ticket.labels`` holds the values of the labels field (``write.labels`` in the tracker's
  config: the bridge's and everyone else's), and ``ticket.fields["response_due"]`` /
  ``ticket.fields["resolution_due"]`` / ``ticket.fields["state"]`` hold the current text of
  the fields named by ``write.response_due`` / ``write.resolution_due`` / ``write.state``
  (``None`` when empty).
- ``ticket.tracker`` is the tracker's configured ``name``; ``fields["plan"]`` falls back to
  ``TrackerConfig.plan_for(project)`` when the tracker's plan field is empty or unmapped.

Construction: the bridge calls ``BackendClass.from_config(tracker)`` with the validated
:class:`tracker_bridge.config.TrackerConfig`; the default builds ``cls(tracker)``, which keeps
``self.tracker``, the validated ``self.options`` and the resolved ``self.secret``
(a :class:`pydantic.SecretStr` or ``None``; call ``get_secret_value()`` only where it is sent).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .core.marker import NOTE_MARKER_RE as NOTE_MARKER_RE  # re-exported for plugins and tests
from .core.marker import marker_keys as marker_keys
from .core.marker import note_marker as note_marker
from .core.ticket import Ticket
from .core.verdict import Note

if TYPE_CHECKING:
    from pydantic import SecretStr

    from .config import TrackerConfig

#: the bridge-owned normalized deadline fields: ``write.response_due`` / ``write.resolution_due``
#: name where each is written, ``Ticket.fields`` carries their current text, and a
#: ``Diff.set_fields`` key is always one of them
DEADLINE_FIELDS: tuple[str, ...] = ("response_due", "resolution_due")

#: the bridge-owned one-line SLA state a person reads in the tracker (``write.state``), e.g.
#: ``response met · resolution due Tue 15 Dec 17:30 GMT``; plain text, compared as text
STATE_FIELD = "state"

#: every bridge-owned normalized field: ``Ticket.fields`` carries their current text and a
#: ``Diff.set_fields`` key is always one of them (``write.<name>`` names where each goes)
WRITTEN_FIELDS: tuple[str, ...] = (*DEADLINE_FIELDS, STATE_FIELD)


def same_deadline(have: str | None, want: str | None) -> bool:
    """Whether a deadline field showing ``have`` already holds ``want`` (ISO 8601 text).

    Blank is empty. The same instant written in another offset (a person, or the tracker
    reformatting it, e.g. a date/time field given back in UTC) counts as the same: rewriting
    it would be a write that changes nothing. Text that is not a timestamp compares as text
    (surrounding blanks ignored): a deadline written in the human format
    (``write.deadline_format: human``) and the ``state`` line are the same only when their
    words are. The one comparison the sync layer's diff and every backend's write use.
    """
    have = (have or "").strip() or None
    want = (want or "").strip() or None
    if have == want:
        return True
    if have is None or want is None:
        return False
    try:
        a = datetime.fromisoformat(have.replace("Z", "+00:00"))
        b = datetime.fromisoformat(want.replace("Z", "+00:00"))
    except ValueError:
        return False
    return a.tzinfo is not None and b.tzinfo is not None and a == b


def posted_note_keys(ticket: Ticket) -> set[str]:
    """The keys of the bridge's notes already on the ticket, read from its comments."""
    keys: set[str] = set()
    for ev in ticket.history:
        if ev.kind == "comment" and ev.text:
            keys.update(marker_keys(ev.text))
    return keys


@dataclass(frozen=True, slots=True)
class Diff:
    """What the sync layer wants changed on one ticket; empty means write nothing.

    ``set_fields`` maps a bridge-owned normalized field (``response_due``,
    ``resolution_due``, ``state``: :data:`WRITTEN_FIELDS`) to its new text value, ``None`` to
    clear it.
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
    #: values an admin must add for the setup to work (e.g. missing list values of the labels
    #: field); ``check`` prints them as a list to copy
    missing_values: tuple[str, ...] = ()

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

    def __init__(self, tracker: TrackerConfig) -> None:
        self.tracker = tracker
        #: ``options:`` validated by ``config_model`` (a model instance), else the raw mapping
        self.options: Any = tracker.validated_options
        model = type(self).config_model
        if model is not None and not isinstance(self.options, model):
            # a tracker config built in code rather than loaded (tests, embedding)
            self.options = model.model_validate(self.options or {})  # type: ignore[attr-defined]
        #: the resolved ``credentials:`` secret, or ``None`` when the tracker has none
        self.secret: SecretStr | None = tracker.secret

    @classmethod
    def from_config(cls, tracker: TrackerConfig) -> Backend:
        """Build the backend for one configured tracker (override for a different signature)."""
        return cls(tracker)

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


class Registry:
    """What ``tracker_bridge_register`` hook implementations add their backends to.

    A name can be registered once; a second backend with the same name is an error naming
    both plugins, so that a typo in a plugin cannot silently replace a built-in backend.
    """

    def __init__(self) -> None:
        self._backends: dict[str, type[Backend]] = {}
        self._origins: dict[str, str] = {}
        #: the plugin whose hook is running; set by ``manager.collect_registry``
        self.current_plugin: str = "?"

    def add_backend(self, cls: type[Backend]) -> None:
        """Register a :class:`Backend` subclass under its ``name``."""
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            msg = f"plugin {self.current_plugin}: add_backend({cls!r}) needs a Backend subclass"
            raise TypeError(msg)
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            msg = f"plugin {self.current_plugin}: backend {cls.__qualname__} has no name"
            raise TypeError(msg)
        if name in self._backends and self._backends[name] is not cls:
            msg = (f"backend {name!r} is registered twice: by plugin {self._origins[name]} and "
                   f"by plugin {self.current_plugin}")
            raise ValueError(msg)
        self._backends[name] = cls
        self._origins[name] = self.current_plugin

    @property
    def backends(self) -> Mapping[str, type[Backend]]:
        """Every registered backend class by name."""
        return dict(self._backends)

    def origin(self, name: str) -> str:
        """The plugin that registered backend ``name``."""
        return self._origins[name]

    def get(self, name: str) -> type[Backend] | None:
        return self._backends.get(name)
