"""The normalized ticket: what every tracker plugin produces and the engine reads.

The JSON shape is documented in docs/ticket.md. Plugins map their tracker's
fields onto it; the engine never sees a tracker-specific shape. All instants are
timezone-aware: a naive timestamp is an input error (plugins convert at the edge), and so is
one outside 1970-01-01..2200-01-01 UTC (``durations.MIN_INSTANT``/``MAX_INSTANT``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .durations import instant_problem
from .saferegex import scrub

EventKind = Literal["status", "comment", "field", "label"]
EVENT_KINDS: tuple[str, ...] = ("status", "comment", "field", "label")
#: most labels one label event may name (added and removed together); a tracker's history
#: entry with more is an input error, not something to carry through every evaluation
MAX_EVENT_LABELS = 1000


class TicketError(ValueError):
    """A normalized ticket that does not follow the contract.

    ``where`` names the ticket (``tracker:key``) and the offending path, e.g.
    ``clinic-redmine:42 history[3].at``.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def parse_instant(value: Any, where: str) -> datetime:
    """Parse an ISO 8601 instant that carries an offset; naive values are rejected, and so
    are instants outside 1970-01-01..2200-01-01 UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise TicketError(where, f"{value!r} is not an ISO 8601 timestamp") from None
    else:
        shown = repr(value)
        if len(shown) > 80:  # a whole list or a long text: its beginning is enough
            shown = shown[:77] + "..."
        raise TicketError(where, f"{shown} is not an ISO 8601 timestamp")
    problem = instant_problem(dt)
    if problem is not None:
        raise TicketError(where, f"{value!r} {problem}")
    return dt


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One change in a ticket's life.

    ``kind`` is ``status`` (``from``/``to`` are status names), ``field`` (``field`` names the
    normalized field; ``from``/``to`` its values), ``comment`` (``public`` tells whether the
    customer can see it; ``text`` is its body) or ``label`` (``added``/``removed`` are the
    labels one change of the tracker's labels field added and removed).
    """

    at: datetime
    kind: str
    by: str | None = None
    field: str | None = None
    from_: str | None = None
    to: str | None = None
    public: bool = True
    text: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # a comment's text meets RE2 (markers, redaction): no lone surrogate in it
        if self.text is not None and not self.text.isascii():
            object.__setattr__(self, "text", scrub(self.text))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at.isoformat(), "kind": self.kind}
        if self.kind == "field":
            out["field"] = self.field
        if self.kind in ("status", "field"):
            out["from"] = self.from_
            out["to"] = self.to
        if self.by is not None:
            out["by"] = self.by
        if self.kind == "comment":
            out["public"] = self.public
            out["text"] = self.text or ""
        if self.kind == "label":
            out["added"] = list(self.added)
            out["removed"] = list(self.removed)
        return out


@dataclass(frozen=True, slots=True)
class Ticket:
    """A tracker's ticket in the normalized shape (see docs/ticket.md)."""

    tracker: str
    key: str
    created: datetime
    status: str
    updated: datetime | None = None
    url: str | None = None
    reporter: str | None = None
    subject: str = ""
    description: str = ""
    fields: Mapping[str, str | None] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    history: tuple[HistoryEvent, ...] = ()

    def __post_init__(self) -> None:
        # Text a tracker's JSON hands over may hold a lone surrogate ("\\ud800"), which RE2
        # (overrides, redaction) cannot take: it becomes "?" here, once, for every reader.
        for name in ("subject", "description"):
            value = getattr(self, name)
            if not value.isascii():
                object.__setattr__(self, name, scrub(value))
        if not all(v is None or v.isascii() for v in self.fields.values()):
            object.__setattr__(self, "fields", {
                k: None if v is None else scrub(v) for k, v in self.fields.items()})

    @property
    def ref(self) -> str:
        """``tracker:key``, the name used in every message about this ticket."""
        return f"{self.tracker}:{self.key}"

    # -- (de)serialisation -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ticket:
        """Build a ticket from its JSON form, naming the path of the first error."""
        if not isinstance(data, Mapping):
            raise TicketError("ticket", "must be a JSON object")
        ref = f"{data.get('tracker', '?')}:{data.get('key', '?')}"
        known = {
            "tracker",
            "key",
            "url",
            "created",
            "updated",
            "reporter",
            "subject",
            "description",
            "status",
            "fields",
            "labels",
            "history",
        }
        for k in data:
            if k not in known:
                raise TicketError(f"{ref} {k}", "unknown key")
        for required in ("tracker", "key", "created", "status"):
            if data.get(required) in (None, ""):
                raise TicketError(f"{ref} {required}", "is required")
        fields_raw = data.get("fields") or {}
        if not isinstance(fields_raw, Mapping):
            raise TicketError(f"{ref} fields", "must be an object")
        fields = {str(k): (None if v is None else _as_text(v)) for k, v in fields_raw.items()}
        labels_raw = data.get("labels") or []
        if not isinstance(labels_raw, Sequence) or isinstance(labels_raw, str):
            raise TicketError(f"{ref} labels", "must be a list of strings")
        history_raw = data.get("history") or []
        if not isinstance(history_raw, Sequence) or isinstance(history_raw, str):
            raise TicketError(f"{ref} history", "must be a list")
        events = tuple(
            _event_from_dict(ev, f"{ref} history[{i}]") for i, ev in enumerate(history_raw)
        )
        for i in range(1, len(events)):
            if events[i].at < events[i - 1].at:
                raise TicketError(f"{ref} history[{i}].at", "history is not in time order")
        updated = data.get("updated")
        return cls(
            tracker=str(data["tracker"]),
            key=str(data["key"]),
            url=data.get("url"),
            created=parse_instant(data["created"], f"{ref} created"),
            updated=None if updated is None else parse_instant(updated, f"{ref} updated"),
            reporter=None if data.get("reporter") is None else str(data["reporter"]),
            subject=str(data.get("subject") or ""),
            description=str(data.get("description") or ""),
            status=str(data["status"]),
            fields=fields,
            labels=tuple(str(x) for x in labels_raw),
            history=events,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as docs/ticket.md shows it."""
        return {
            "tracker": self.tracker,
            "key": self.key,
            "url": self.url,
            "created": self.created.isoformat(),
            "updated": None if self.updated is None else self.updated.isoformat(),
            "reporter": self.reporter,
            "subject": self.subject,
            "description": self.description,
            "status": self.status,
            "fields": dict(self.fields),
            "labels": list(self.labels),
            "history": [ev.to_dict() for ev in self.history],
        }


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _event_from_dict(raw: Any, where: str) -> HistoryEvent:
    if not isinstance(raw, Mapping):
        raise TicketError(where, "must be an object")
    kind = raw.get("kind")
    if kind not in EVENT_KINDS:
        raise TicketError(f"{where}.kind", f"{kind!r} is not one of {', '.join(EVENT_KINDS)}")
    at = parse_instant(raw.get("at"), f"{where}.at")
    if kind == "field" and not raw.get("field"):
        raise TicketError(f"{where}.field", "a field event names its field")
    if kind == "status" and raw.get("to") in (None, ""):
        raise TicketError(f"{where}.to", "a status event names the new status")
    public = raw.get("public", True)
    if not isinstance(public, bool):
        raise TicketError(f"{where}.public", "must be true or false")

    def text(key: str) -> str | None:
        v = raw.get(key)
        return None if v is None else _as_text(v)

    if kind == "label":
        added, removed = _label_change(raw, where)
        return HistoryEvent(at=at, kind=kind, by=text("by"), added=added, removed=removed)
    return HistoryEvent(
        at=at,
        kind=kind,
        by=text("by"),
        field=text("field"),
        from_=text("from"),
        to=text("to"),
        public=public,
        text=text("text"),
    )


def _label_list(raw: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TicketError(f"{where}.{key}", "must be a list of labels")
    if len(value) > MAX_EVENT_LABELS:
        raise TicketError(f"{where}.{key}", f"names more than {MAX_EVENT_LABELS} labels")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise TicketError(f"{where}.{key}[{i}]", "must be a non-empty string")
        out.append(item)
    return out


def _label_change(raw: Mapping[str, Any], where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A label event's ``added``/``removed``; ``from``/``to`` label lists are accepted too and
    turned into the labels the change added and removed (in ``to``'s and ``from``'s order)."""
    if "from" in raw or "to" in raw:
        if "added" in raw or "removed" in raw:
            raise TicketError(where, "a label event gives added/removed or from/to, not both")
        before = _label_list(raw, "from", where)
        after = _label_list(raw, "to", where)
        had, has = set(before), set(after)
        added = tuple(dict.fromkeys(x for x in after if x not in had))
        removed = tuple(dict.fromkeys(x for x in before if x not in has))
    else:
        added = tuple(_label_list(raw, "added", where))
        removed = tuple(_label_list(raw, "removed", where))
    if not added and not removed:
        raise TicketError(where, "a label event adds or removes at least one label")
    return added, removed
