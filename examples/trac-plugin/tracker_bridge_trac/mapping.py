"""Pure mapping between Trac's ticket data and the bridge's normalized ticket.

Nothing here opens a Trac environment: the backend hands over plain values (a ticket's
field values and its change log), so the rules are tested without Trac.

Trac's change log (``Ticket.get_changelog()``, the ``ticket_change`` table) holds one row
``(time, author, field, oldvalue, newvalue, permanent)`` per field a change touched, and a
``comment`` row for every change, with an empty ``newvalue`` when the change had no comment.
One change made several rows at the same instant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracker_bridge.core.ticket import HistoryEvent, Ticket

#: how Trac separates keywords (its own query splits on blanks and commas)
_KEYWORD_SEP = re.compile(r"[\s,]+")
CURSOR_VERSION = 1


def split_labels(text: str | None) -> tuple[str, ...]:
    """The labels in a keywords-like field, in the order written, without repeats."""
    return tuple(dict.fromkeys(x for x in _KEYWORD_SEP.split(text or "") if x))


def join_labels(labels: Iterable[str]) -> str:
    """The field text for ``labels`` (space-separated, as Trac's own keywords are)."""
    return " ".join(labels)


def new_labels(current: Sequence[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """``(current - remove) | add``: every other label kept in its place, new ones appended
    in sorted order."""
    drop = set(remove)
    out = [x for x in current if x not in drop]
    out += sorted(x for x in set(add) if x not in out)
    return out


def utc(dt: datetime) -> datetime:
    """Trac's aware datetimes (its own ``FixedOffset`` UTC) as ``datetime.UTC``."""
    if dt.tzinfo is None:
        msg = f"naive datetime {dt!r} from Trac"
        raise ValueError(msg)
    return dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Spec:
    """Which Trac field holds what, from the tracker's config."""

    #: normalized field name -> Trac field name (``fields:``)
    fields: Mapping[str, str]
    #: the Trac field holding the labels (``write.labels``), or None
    labels: str | None
    #: normalized deadline name -> Trac field (``write.response_due`` / ``resolution_due``)
    deadlines: Mapping[str, str]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def history(changelog: Iterable[Sequence[Any]], spec: Spec) -> tuple[HistoryEvent, ...]:
    """The normalized history of one ticket from its change-log rows, in time order.

    ``status`` rows become status events, rows of a mapped field field events (under the
    normalized name), rows of the labels field label events (what the change added and
    removed, in the order the field lists them), non-empty ``comment`` rows comments (Trac
    has no private comments: every one is public). Anything else (the deadline fields, the
    owner, comment edits) is left out. Rows of one change keep Trac's order; the sort by time
    is stable.
    """
    by_trac = {trac: norm for norm, trac in spec.fields.items()}
    out: list[HistoryEvent] = []
    for row in changelog:
        when, author, field, old, new = row[0], row[1], row[2], row[3], row[4]
        at = utc(when)
        by = author or None
        if field == "comment":
            if _text(new) is not None:
                out.append(HistoryEvent(at=at, kind="comment", by=by, public=True,
                                        text=str(new)))
        elif field == "status":
            out.append(HistoryEvent(at=at, kind="status", by=by, from_=_text(old),
                                    to=_text(new)))
        elif spec.labels is not None and field == spec.labels:
            before, after = split_labels(old), split_labels(new)
            added = tuple(x for x in after if x not in before)
            removed = tuple(x for x in before if x not in after)
            if added or removed:
                out.append(HistoryEvent(at=at, kind="label", by=by, added=added,
                                        removed=removed))
        elif field in by_trac:
            out.append(HistoryEvent(at=at, kind="field", by=by, field=by_trac[field],
                                    from_=_text(old), to=_text(new)))
    out.sort(key=lambda e: e.at)
    return tuple(out)


def to_ticket(tracker: str, key: str, values: Mapping[str, Any],
              changelog: Iterable[Sequence[Any]], spec: Spec, *, url: str | None = None,
              default_plan: str | None = None) -> Ticket:
    """A normalized ticket from a Trac ticket's values (``Ticket.values`` plus ``time`` and
    ``changetime``) and its change log."""
    fields: dict[str, str | None] = {
        norm: _text(values.get(trac)) for norm, trac in spec.fields.items()}
    for norm, trac in spec.deadlines.items():
        fields[norm] = _text(values.get(trac))
    if not fields.get("plan") and default_plan:
        fields["plan"] = default_plan
    labels = split_labels(values.get(spec.labels)) if spec.labels else ()
    return Ticket(
        tracker=tracker, key=key, url=url,
        created=utc(values["time"]), updated=utc(values["changetime"]),
        reporter=_text(values.get("reporter")), subject=str(values.get("summary") or ""),
        description=str(values.get("description") or ""),
        status=str(values.get("status") or ""), fields=fields, labels=labels,
        history=history(changelog, spec))


# -- the cursor ------------------------------------------------------------------------------

def parse_cursor(cursor: str | None, tracker: str) -> tuple[int | None, dict[int, int]]:
    """``(watermark, {ticket id: changetime already returned})``, times in Trac's integer
    microseconds. ``None`` starts from scratch; a cursor this backend did not write is an
    error naming it (the store hands back what ``fetch_changed`` returned)."""
    if cursor is None:
        return None, {}
    try:
        doc = json.loads(cursor)
        if doc.get("v") != CURSOR_VERSION:
            raise ValueError("unknown version")
        return int(doc["since"]), {int(k): int(v) for k, v in doc["seen"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        msg = f"{tracker}: not a Trac cursor: {cursor[:80]!r}"
        raise ValueError(msg) from None


def make_cursor(since: int | None, listed: Mapping[int, int], overlap_us: int) -> str | None:
    """The watermark (newest ``changetime`` seen) and the ``(id, changetime)`` pairs inside
    the next poll's overlap window, which the next poll skips unless they moved."""
    if since is None:
        return None
    floor = since - overlap_us
    seen = {str(i): t for i, t in sorted(listed.items()) if t >= floor}
    return json.dumps({"v": CURSOR_VERSION, "since": since, "seen": seen},
                      separators=(",", ":"), sort_keys=True)
