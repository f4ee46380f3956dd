"""The engine's verdict on one ticket: desired state, never commands.

The sync layer diffs a verdict against what the tracker shows and writes only the
difference: the deadline fields, the labels under the policy's prefix, and notes, each
note carrying a stable key so that it is posted at most once per ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass
from datetime import datetime, timedelta
from typing import Any

# the note marker lives in marker.py; re-exported here, where it was first defined
from .marker import NOTE_MARKER_RE as NOTE_MARKER_RE
from .marker import note_marker as note_marker

#: metric states, see docs/semantics.md, "States" (``no_target``: the target is ``none``;
#: ``not_started``: a clock that starts at an event that has not happened yet, e.g. the
#: periodic update before the first response)
STATES = ("running", "at_risk", "paused", "met", "breached", "no_target", "not_started")


#: the metrics that start again and again, whose verdict lists ``occurrences``
RECURRING = ("update", "tier_response", "escalation_response")


def seconds(td: timedelta | None) -> int | float | None:
    """A timedelta as seconds for JSON: an int when whole, else a float."""
    if td is None:
        return None
    s = td.total_seconds()
    return int(s) if s == int(s) else s


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _frozen(self: object, name: str, value: object = None) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _made(obj: Any, value: str, make: str) -> Any:
    """A lazily made slot (``Note.text``, ``Verdict.reasons``): the stored value, or the
    maker's result, stored and the maker dropped. The maker is read before the value: a
    racing reader clears the maker only after storing the value."""
    maker = getattr(obj, make)
    done = getattr(obj, value)
    if done is None:
        assert maker is not None
        done = maker()
        object.__setattr__(obj, value, done)
        object.__setattr__(obj, make, None)
    return done


class Note:
    """A note the engine wants on the ticket.

    ``key`` is stable across cycles (``breach:resolution``, ``tier:L3``, ``level:manager``,
    ``kb``): the sync layer posts a note once per (ticket, key) and marks it with the key.

    ``Note(key, text)`` holds its text; the engine makes its notes with :meth:`later`, whose
    text is written on first read (a KB note runs redaction over the whole ticket: a sync
    cycle that finds the note posted already never reads it). Either way a note is frozen
    and compares, hashes and prints by ``(key, text)``, like the dataclass it was.

    ``internal``: the note is for support staff only (the patient-data note): a backend posts
    it private where its tracker can (docs/plugins.md), else as it posts every note.
    """

    __slots__ = ("_make", "_text", "internal", "key")
    __match_args__ = ("key", "text")
    key: str
    internal: bool

    def __init__(self, key: str, text: str, internal: bool = False) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_make", None)
        object.__setattr__(self, "internal", internal)

    @classmethod
    def later(cls, key: str, make: Callable[[], str], internal: bool = False) -> Note:
        """A note whose text ``make()`` writes the first time it is read (``make`` must be
        pure: it may run more than once when threads race to read the text)."""
        note = cls.__new__(cls)
        object.__setattr__(note, "key", key)
        object.__setattr__(note, "_text", None)
        object.__setattr__(note, "_make", make)
        object.__setattr__(note, "internal", internal)
        return note

    @property
    def text(self) -> str:
        return _made(self, "_text", "_make")

    __setattr__ = _frozen
    __delattr__ = _frozen

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Note)
            return (self.key, self.text, self.internal) == (
                other.key, other.text, other.internal)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.key, self.text))

    def __repr__(self) -> str:
        internal = ", internal=True" if self.internal else ""
        return f"Note(key={self.key!r}, text={self.text!r}{internal})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Note, (self.key, self.text, self.internal))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "text": self.text}
        if self.internal:
            out["internal"] = True
        return out


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One run of a metric that starts again and again (``update``: each gap between two
    updates; ``tier_response``: each tier entry; ``escalation_response``: each request)."""

    started_at: datetime
    #: when it stopped (answered, superseded or the ticket resolved); None: still open
    ended_at: datetime | None
    elapsed: timedelta
    breached: bool
    #: the tier, for ``tier_response``
    tier: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "elapsed_s": seconds(self.elapsed),
            "breached": self.breached,
        }
        if self.tier is not None:
            out["tier"] = self.tier
        return out


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    """One SLA metric's state at ``now``.

    The metrics that start again and again (``update``, ``tier_response``,
    ``escalation_response``) report their current occurrence and list every one of them in
    ``occurrences``; the others leave it empty."""

    name: str
    state: str
    elapsed: timedelta
    target: timedelta | None
    due: datetime | None
    remaining: timedelta | None
    calendar: str
    #: when the clock stopped (first response, resolution), if it has
    stopped_at: datetime | None = None
    occurrences: tuple[Occurrence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            "state": self.state,
            "elapsed_s": seconds(self.elapsed),
            "target_s": seconds(self.target),
            "due": iso(self.due),
            "remaining_s": seconds(self.remaining),
            "calendar": self.calendar,
            "stopped_at": iso(self.stopped_at),
        }
        if self.occurrences or self.name in RECURRING:
            out["occurrences"] = [o.to_dict() for o in self.occurrences]
        return out


def metric_verdict(
    name: str, state: str, elapsed: timedelta, target: timedelta | None, due: datetime | None,
    remaining: timedelta | None, calendar: str, stopped_at: datetime | None,
) -> MetricVerdict:
    """``MetricVerdict(...)`` with every field given, by position: the engine's (each slot
    set through its descriptor, a third cheaper than the dataclass's object.__setattr__)."""
    m = _new_metric(MetricVerdict)
    _set_m_name(m, name)
    _set_m_state(m, state)
    _set_m_elapsed(m, elapsed)
    _set_m_target(m, target)
    _set_m_due(m, due)
    _set_m_remaining(m, remaining)
    _set_m_calendar(m, calendar)
    _set_m_stopped_at(m, stopped_at)
    _set_m_occurrences(m, ())
    return m


_new_metric = object.__new__
_set_m_name = MetricVerdict.name.__set__  # type: ignore[attr-defined]
_set_m_state = MetricVerdict.state.__set__  # type: ignore[attr-defined]
_set_m_elapsed = MetricVerdict.elapsed.__set__  # type: ignore[attr-defined]
_set_m_target = MetricVerdict.target.__set__  # type: ignore[attr-defined]
_set_m_due = MetricVerdict.due.__set__  # type: ignore[attr-defined]
_set_m_remaining = MetricVerdict.remaining.__set__  # type: ignore[attr-defined]
_set_m_calendar = MetricVerdict.calendar.__set__  # type: ignore[attr-defined]
_set_m_stopped_at = MetricVerdict.__dict__["stopped_at"].__set__
_set_m_occurrences = MetricVerdict.__dict__["occurrences"].__set__


_VERDICT_FIELDS = (
    "ticket", "now", "class_", "class_rule", "plan", "metrics", "tier", "escalate_to", "level",
    "level_index", "labels", "label_prefix", "notes", "next_change", "warnings", "reasons",
    "stopped_at",
)


class Verdict:
    """Everything the engine decided about one ticket at one instant.

    Built and compared like the frozen dataclass it was (same fields, same order, equality
    and repr over every field), with one difference: the engine hands over ``reasons`` as a
    function (:meth:`explained_later`), run the first time ``reasons`` is read, since only
    ``explain`` reads them.
    """

    __slots__ = (
        "_explain", "_reasons", "class_", "class_rule", "escalate_to", "label_prefix", "labels",
        "level", "level_index", "metrics", "next_change", "notes", "now", "plan", "stopped_at",
        "ticket", "tier", "warnings",
    )
    __match_args__ = _VERDICT_FIELDS

    ticket: str
    now: datetime
    class_: str
    class_rule: str
    plan: str
    metrics: dict[str, MetricVerdict]
    tier: str | None
    escalate_to: str | None
    level: str | None
    level_index: int | None
    labels: frozenset[str]
    label_prefix: str
    notes: tuple[Note, ...]
    #: the earliest instant after ``now`` at which the verdict changes with no tracker event
    #: (a metric turning at-risk or breached, a tier's time or an escalation level running out)
    next_change: datetime | None
    warnings: tuple[str, ...]
    #: when the ticket last entered a resolved or closed status, if it is there at ``now``
    stopped_at: datetime | None

    def __init__(
        self,
        ticket: str,
        now: datetime,
        class_: str,
        class_rule: str,
        plan: str,
        metrics: dict[str, MetricVerdict],
        tier: str | None,
        escalate_to: str | None,
        level: str | None,
        level_index: int | None,
        labels: frozenset[str],
        label_prefix: str,
        notes: tuple[Note, ...],
        next_change: datetime | None = None,
        warnings: tuple[str, ...] = (),
        reasons: tuple[str, ...] = (),
        stopped_at: datetime | None = None,
    ) -> None:
        # each slot set through its descriptor: frozen, and a third cheaper than
        # object.__setattr__ (a verdict is built per ticket per cycle)
        _set_ticket(self, ticket)
        _set_now(self, now)
        _set_class_(self, class_)
        _set_class_rule(self, class_rule)
        _set_plan(self, plan)
        _set_metrics(self, metrics)
        _set_tier(self, tier)
        _set_escalate_to(self, escalate_to)
        _set_level(self, level)
        _set_level_index(self, level_index)
        _set_labels(self, labels)
        _set_label_prefix(self, label_prefix)
        _set_notes(self, notes)
        _set_next_change(self, next_change)
        _set_warnings(self, warnings)
        _set_reasons(self, reasons)
        _set_explain(self, None)
        _set_stopped_at(self, stopped_at)

    @classmethod
    def explained_later(
        cls, explain: Callable[[], tuple[str, ...]], /, *args: Any, **fields: Any
    ) -> Verdict:
        """A verdict whose ``reasons`` are ``explain()``, run on first read (pure, like
        :meth:`Note.later`); ``args`` and ``fields`` are the other fields, as for the
        constructor (without ``reasons``)."""
        verdict = cls(*args, **fields)
        _set_reasons(verdict, None)
        _set_explain(verdict, explain)
        return verdict

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasoning in words, for ``explain``."""
        return _made(self, "_reasons", "_explain")

    __setattr__ = _frozen
    __delattr__ = _frozen

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _VERDICT_FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Verdict)
            return self._fields() == other._fields()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in _VERDICT_FIELDS)
        return f"Verdict({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Verdict, self._fields())

    @property
    def deadlines(self) -> dict[str, datetime | None]:
        """The deadline fields the bridge stamps on the ticket: ``response_due``, ``resolution_due``
        (the other metrics' due instants are in ``metrics`` only)."""
        return {f"{name}_due": m.due for name, m in self.metrics.items()
                if name in ("response", "resolution")}

    def to_dict(self, *, note_texts: bool = True) -> dict[str, Any]:
        """The verdict as JSON (docs/ticket.md); ``note_texts=False`` gives each note's key
        only, without making its text (the state store keeps no more)."""
        return {
            "ticket": self.ticket,
            "now": iso(self.now),
            "class": self.class_,
            "class_rule": self.class_rule,
            "plan": self.plan,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "tier": self.tier,
            "escalate_to": self.escalate_to,
            "level": self.level,
            "level_index": self.level_index,
            "labels": sorted(self.labels),
            "notes": [n.to_dict() if note_texts else {"key": n.key} for n in self.notes],
            "deadlines": {k: iso(v) for k, v in self.deadlines.items()},
            "next_change": iso(self.next_change),
            "warnings": list(self.warnings),
        }


#: the slot setters of Verdict (see Verdict.__init__)
_set_ticket = Verdict.ticket.__set__  # type: ignore[attr-defined]
_set_now = Verdict.now.__set__  # type: ignore[attr-defined]
_set_class_ = Verdict.class_.__set__  # type: ignore[attr-defined]
_set_class_rule = Verdict.class_rule.__set__  # type: ignore[attr-defined]
_set_plan = Verdict.plan.__set__  # type: ignore[attr-defined]
_set_metrics = Verdict.metrics.__set__  # type: ignore[attr-defined]
_set_tier = Verdict.tier.__set__  # type: ignore[attr-defined]
_set_escalate_to = Verdict.escalate_to.__set__  # type: ignore[attr-defined]
_set_level = Verdict.level.__set__  # type: ignore[attr-defined]
_set_level_index = Verdict.level_index.__set__  # type: ignore[attr-defined]
_set_labels = Verdict.labels.__set__  # type: ignore[attr-defined]
_set_label_prefix = Verdict.label_prefix.__set__  # type: ignore[attr-defined]
_set_notes = Verdict.notes.__set__  # type: ignore[attr-defined]
_set_next_change = Verdict.next_change.__set__  # type: ignore[attr-defined]
_set_warnings = Verdict.warnings.__set__  # type: ignore[attr-defined]
_set_reasons = Verdict.__dict__["_reasons"].__set__
_set_explain = Verdict.__dict__["_explain"].__set__
_set_stopped_at = Verdict.stopped_at.__set__  # type: ignore[attr-defined]
