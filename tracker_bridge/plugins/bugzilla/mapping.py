"""Bugzilla JSON <-> the bridge's types, with no I/O: bugs to tickets, diffs to update bodies.

Everything here is a pure function of its arguments (no HTTP, no clock), testable on the
payloads under ``tests/bugzilla/payloads``; :mod:`.backend` reads what these need first.

Mapping (tracker config -> normalized ticket)
    ============================  ==========================================================
    ``key``, ``url``              bug id, ``{url}/show_bug.cgi?id={id}``
    ``created``/``updated``       ``creation_time``/``last_change_time`` (UTC)
    ``reporter``                  ``creator`` (a login, like history ``who`` and comment
                                  ``creator``, so the reporter's own comments are known)
    ``subject``/``description``   ``summary`` / comment ``count`` 0
    ``status``                    ``status`` (``RESOLVED``; the resolution is a field)
    ``fields[x]``                 ``fields: {x: NAME}``, any bug field by its API name
                                  (``priority``, ``severity``, ``component``, ``version``,
                                  ``resolution``, ``cf_*``, ...); lists joined with ``, ``;
                                  ``---`` (Bugzilla's "no value") and ``""`` read as empty
    ``fields["plan"]``            the mapped plan field, else ``project_plans``/``plan`` of
                                  the bug's product
    ``fields["response_due"]``..  the ``write.*`` custom fields: free text as it is; a
                                  date/time field (type 5) in ``write.timezone``, the form
                                  the bridge writes
    ``labels``                    ``keywords`` (``write.labels: keywords``) or the words of
                                  the status whiteboard (``write.labels: whiteboard``)
    ``history``                   ``status`` changes -> status events (the first one's
                                  ``removed`` is the initial status), mapped fields -> field
                                  events, changes of the labels field (``keywords``, or the
                                  words of ``whiteboard``) -> label events, comments after
                                  the description -> comment events (``is_private`` ->
                                  ``public: false``)
    ============================  ==========================================================

    Bugzilla joins two changes of one field by one user within one second into one history
    change, separating the values with a space (``"NEW CONFIRMED"`` -> ``"CONFIRMED
    IN_PROGRESS"``); such a change is split back into its steps using the field's legal
    values.

The cursor
    JSON ``{"v": 1, "since": <db_time before the scan>, "seen": {id: last_change_time}}``:
    only pairs inside the next poll's overlap window, and only settled ones (:data:`SETTLE`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ...backend import Diff, marker_keys, note_marker
from ...core.saferegex import compile_safe, scrub
from ...core.ticket import HistoryEvent, Ticket
from ...core.verdict import Note
from ...errors import TicketWriteRejected
from .._http import parse_utc, read_seen_cursor, utc_literal

CURSOR_VERSION = 1
#: a pair (id, last_change_time) is skipped by the next poll only if it was stamped this long
#: before the database clock at the start of the scan: a second edit within the same second
#: (or one whose transaction started in that second and committed late) gets the same stamp
SETTLE = timedelta(seconds=5)

#: API field names (bug objects, history, updates) -> internal names (``/rest/field/bug``),
#: from ``Bugzilla::Bug::FIELD_MAP`` and ``_bug_to_hash``
INTERNAL_NAMES: Mapping[str, str] = {
    "creation_time": "creation_ts", "description": "longdesc", "id": "bug_id",
    "last_change_time": "delta_ts", "platform": "rep_platform", "severity": "bug_severity",
    "status": "bug_status", "summary": "short_desc", "url": "bug_file_loc",
    "whiteboard": "status_whiteboard", "creator": "reporter", "depends_on": "dependson",
    "blocks": "blocked", "dupe_of": "dup_id", "is_confirmed": "everconfirmed",
}
#: bug fields always read (besides the mapped and written ones)
BASE_FIELDS = ("id", "last_change_time", "creation_time", "summary", "status", "resolution",
               "creator", "product", "component")
#: ``/rest/field/bug`` types (docs: Bug Fields)
TYPE_FREETEXT, TYPE_SELECT, TYPE_MULTI, TYPE_TEXTAREA, TYPE_DATETIME, TYPE_DATE = 1, 2, 3, 4, 5, 9
DEADLINE_TYPES = (TYPE_FREETEXT, TYPE_TEXTAREA, TYPE_DATETIME)
#: the field types a text the bridge writes (the state line, a human-format deadline) fits
TEXT_TYPES = (TYPE_FREETEXT, TYPE_TEXTAREA)
LABEL_TARGETS = ("keywords", "whiteboard")
#: Bugzilla's placeholder for "no value" in drop-down fields and the target milestone
NO_VALUE = "---"


@dataclass(frozen=True)
class FieldInfo:
    """What the mapping needs from one ``/rest/field/bug`` entry."""

    name: str
    type: int
    values: tuple[str, ...] = ()
    is_custom: bool = False


@dataclass(frozen=True)
class MappingSpec:
    """Everything :func:`map_bug` needs besides the bug itself (no I/O)."""

    tracker: str
    base_url: str
    fields: Mapping[str, str]                       # normalized -> API field name
    deadlines: Mapping[str, str]                    # response_due/resolution_due/state -> cf
    labels: str | None                              # "keywords" | "whiteboard" | None
    write_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    field_info: Mapping[str, FieldInfo] = field(default_factory=dict)  # by API name
    project_plans: Mapping[str, str] = field(default_factory=dict)  # product -> plan
    plan: str | None = None                         # the plan of any other product
    #: the zone of the server's database text (``options.server_timezone``): a date/time
    #: field's history values carry no zone
    server_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


def field_info(api_name: str, definition: Mapping[str, Any]) -> FieldInfo:
    """A ``/rest/field/bug`` entry as the mapping's :class:`FieldInfo`."""
    return FieldInfo(name=api_name, type=int(definition.get("type") or 0),
                     values=tuple(str(v["name"]) for v in definition.get("values") or ()
                                  if v.get("name") is not None),
                     is_custom=bool(definition.get("is_custom")))


def include_fields(fields: Iterable[str], deadlines: Iterable[str | None],
                   labels: str | None) -> str:
    """The ``include_fields`` of every bug read: the base fields, mapped and written ones."""
    names = list(BASE_FIELDS)
    extra = [*fields, *deadlines]
    if labels in LABEL_TARGETS:
        extra.append(labels)
    for n in extra:
        if n and n not in names:
            names.append(n)
    return ",".join(names)


# -- bug -> ticket ------------------------------------------------------------------------------


def field_text(value: Any) -> str | None:
    """A bug field's value as the normalized text (lists joined, placeholders empty)."""
    if isinstance(value, list):
        parts = [str(v) for v in value if v not in (None, "", NO_VALUE)]
        return ", ".join(parts) if parts else None
    if value is None or value == "" or value == NO_VALUE:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def whiteboard_words(text: str | None) -> list[str]:
    return (text or "").split()


def deadline_text(value: Any, info: FieldInfo | None, zone: ZoneInfo) -> str | None:
    """A deadline field as the bridge would write it, so that an unchanged one diffs equal."""
    text = field_text(value)
    if text is None or info is None or info.type != TYPE_DATETIME:
        return text
    try:
        return parse_utc(text).astimezone(zone).isoformat()
    except ValueError:
        return text


def history_datetime(text: str, server_zone: ZoneInfo) -> str:
    """A date/time field's value in history as the bug itself reads it (UTC, ``Z``).

    ``/rest/bug`` gives a date/time custom field as ``2026-12-02T08:05:43Z``, but its history
    holds the database text, ``2026-12-02 08:05:43``, in the server's zone with no zone
    named; it is read in ``server_zone`` (``options.server_timezone``, UTC unless set). A
    value with a zone of its own keeps it; an empty or unreadable one is left as it is.
    """
    raw = text.strip()
    if not raw:
        return text
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return text
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=server_zone)
    return utc_literal(dt)


def split_merged(removed: str, added: str,
                 legal: Sequence[str] | None) -> list[tuple[str | None, str | None]]:
    """One history change as the steps it stands for.

    Bugzilla's ``GetBugActivity`` joins changes of one field made by one user in the same
    second with a space: ``NEW -> CONFIRMED`` then ``CONFIRMED -> IN_PROGRESS`` come back as
    ``removed: "NEW CONFIRMED", added: "CONFIRMED IN_PROGRESS"``. With the field's legal
    values (names may contain spaces) the two strings are parsed back into values; a chain
    ``r1->a1, a1->a2, ...`` gives one step per link. Anything that does not parse is one step,
    as it is (a free-text field cannot be split).
    """
    r = _tokens(removed, legal) if legal else None
    a = _tokens(added, legal) if legal else None
    if r and a and len(r) == len(a):
        if all(a[i] == r[i + 1] for i in range(len(r) - 1)):
            return list(zip(r, a, strict=True))
        return [(r[0], a[-1])]
    return [(removed or None, added or None)]


def _tokens(text: str, legal: Sequence[str]) -> list[str] | None:
    if not text:
        return None
    values = set(legal)
    if text in values:
        return [text]
    for v in sorted(values, key=len, reverse=True):
        if v and text.startswith(v + " "):
            rest = _tokens(text[len(v) + 1:], legal)
            if rest is not None:
                return [v, *rest]
    return None


def _none_if_placeholder(v: str | None) -> str | None:
    return None if v in (None, "", NO_VALUE) else v


def map_bug(bug: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
            comments: Sequence[Mapping[str, Any]], spec: MappingSpec) -> Ticket:
    """One Bugzilla bug (a ``/rest/bug`` object, its history and comments) as a ticket."""
    bid = int(bug["id"])
    fields: dict[str, str | None] = {norm: field_text(bug.get(target))
                                     for norm, target in spec.fields.items()}
    if not fields.get("plan"):
        plan = spec.project_plans.get(str(bug.get("product") or ""), spec.plan)
        if plan:
            fields["plan"] = plan
    for norm, target in spec.deadlines.items():
        fields[norm] = deadline_text(bug.get(target), spec.field_info.get(target),
                                     spec.write_zone)
    labels: tuple[str, ...] = ()
    if spec.labels == "keywords":
        labels = tuple(str(k) for k in bug.get("keywords") or ())
    elif spec.labels == "whiteboard":
        labels = tuple(whiteboard_words(bug.get("whiteboard")))

    description = ""
    events: list[HistoryEvent] = []
    for c in sorted(comments, key=lambda c: (int(c.get("count") or 0), int(c.get("id") or 0))):
        if int(c.get("count") or 0) == 0:
            description = str(c.get("text") or "")  # comment 0 is the bug's description
            continue
        events.append(HistoryEvent(
            at=parse_utc(c.get("creation_time") or c["time"]), kind="comment",
            by=c.get("creator"), public=not c.get("is_private"), text=str(c.get("text") or "")))

    tracked = {target: norm for norm, target in spec.fields.items()
               if target != "status" and (spec.field_info.get(target) is None
                                          or spec.field_info[target].type != TYPE_MULTI)}
    status_values = spec.field_info["status"].values if "status" in spec.field_info else ()
    for entry in history:
        at, by = parse_utc(entry["when"]), entry.get("who")
        for ch in entry.get("changes") or ():
            name = ch.get("field_name")
            removed, added = str(ch.get("removed") or ""), str(ch.get("added") or "")
            if name is not None and name == spec.labels:
                events.extend(label_events(at, by, removed, added, spec.labels))
            elif name == "status":
                # split by the legal statuses; without their definitions, by words
                for old, new in split_merged(removed, added, status_values or
                                             _words_of(removed, added)):
                    if new:
                        events.append(HistoryEvent(at=at, kind="status", by=by, from_=old,
                                                   to=new))
            elif name in tracked:
                info = spec.field_info.get(name)
                if info is not None and info.type == TYPE_DATETIME:
                    removed = history_datetime(removed, spec.server_zone)
                    added = history_datetime(added, spec.server_zone)
                legal = info.values if info is not None and info.values else None
                for old, new in split_merged(removed, added, legal):
                    events.append(HistoryEvent(
                        at=at, kind="field", by=by, field=tracked[name],
                        from_=_none_if_placeholder(old), to=_none_if_placeholder(new)))
    events.sort(key=lambda e: e.at)  # stable: Bugzilla's order is kept within one second
    return Ticket(
        tracker=spec.tracker,
        key=str(bid),
        url=f"{spec.base_url}/show_bug.cgi?id={bid}",
        created=parse_utc(bug["creation_time"]),
        updated=parse_utc(bug["last_change_time"]) if bug.get("last_change_time") else None,
        reporter=bug.get("creator"),
        subject=str(bug.get("summary") or ""),
        description=description,
        status=str(bug["status"]),
        fields=fields,
        labels=labels,
        history=tuple(events),
    )


def label_events(at: datetime, by: str | None, removed: str, added: str,
                 target: str) -> list[HistoryEvent]:
    """One history change of the labels field as ``label`` events (none when it changed no
    label).

    A keywords change lists the keywords it removed and added, comma-separated
    (``"sla-high, customer-vip"``). Bugzilla joins the changes of one field by one user within
    one second into one, with a blank between the steps (``_join_activity_entries``; a step
    that is empty is dropped when it comes first): ``set [a, b]`` then ``set [b]`` read
    ``removed "a", added "a, b "``. Keywords hold neither blanks nor commas, so a blank not
    after a comma parts two steps, and the steps are given back one event each (``+a +b``,
    then ``-a``), leading empty steps restored on the shorter side.

    A whiteboard change holds the whole text before and after; its words are the labels, and
    a joined whiteboard change (whose steps cannot be told apart: the text has blanks of its
    own) is one event of the net word change.
    """
    if target == "keywords":
        before, after = _join_steps(removed), _join_steps(added)
        n = max(len(before), len(after))
        before = [""] * (n - len(before)) + before
        after = [""] * (n - len(after)) + after
        steps = [(_LABEL_SPLIT.split(r.strip()) if r.strip() else [],
                  _LABEL_SPLIT.split(a.strip()) if a.strip() else [])
                 for r, a in zip(before, after, strict=True)]
    else:
        steps = [(removed.split(), added.split())]
    events = []
    for gone_raw, came_raw in steps:
        gone = tuple(x for x in dict.fromkeys(gone_raw) if x and x not in came_raw)
        came = tuple(x for x in dict.fromkeys(came_raw) if x and x not in gone_raw)
        if gone or came:
            events.append(HistoryEvent(at=at, kind="label", by=by, added=came, removed=gone))
    return events


def _join_steps(text: str) -> list[str]:
    """A joined keywords history value split at the blanks that part steps (not after a
    comma): ``"a, b "`` -> ``["a, b", ""]``."""
    parts: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(text):
        if ch == " " and (i == 0 or text[i - 1] != ","):
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


#: what separates keywords within one step of a keywords history value
_LABEL_SPLIT = compile_safe(r"[,\s]+")


def _words_of(*texts: str) -> list[str]:
    """Status values when the field definitions are unknown: words (Bugzilla refuses
    spaces in status names)."""
    return sorted({w for t in texts for w in t.split()})


def posted_keys(comments: Iterable[Mapping[str, Any]]) -> set[str]:
    """The keys of the bridge's notes among a bug's comments (their markers)."""
    return {k for c in comments for k in marker_keys(str(c.get("text") or ""))}


# -- diff -> Bug.update bodies ------------------------------------------------------------------


#: a whiteboard as runs of blanks and runs of words (RE2: people write the whiteboard)
_RUNS = compile_safe(r"\s+|\S+")


def edit_whiteboard(text: str, add: Iterable[str], remove: Iterable[str]) -> str:
    """The whiteboard with only the bridge's words changed; other text keeps its form."""
    drop = set(remove)
    kept: list[str] = []
    skip_blank = False
    for run in _RUNS.findall(scrub(text)):
        if run.isspace():
            if not skip_blank:
                kept.append(run)
            skip_blank = False
        elif run in drop:
            # the word with the blank before it; at the very start, with the blank after it
            if kept and kept[-1].isspace():
                kept.pop()
            elif not kept:
                skip_blank = True
        else:
            kept.append(run)
            skip_blank = False
    out = "".join(kept)
    present = set(out.split())
    new = [w for w in sorted(set(add)) if w not in present]
    if new:
        out = f"{out.rstrip()} {' '.join(new)}" if out.strip() else " ".join(new)
    return out


def label_changes(bug: Mapping[str, Any], diff: Diff, target: str,
                  tracker: str) -> dict[str, Any]:
    """The part of the update that changes labels: ``keywords: {add, remove}`` (never
    ``set``) or the whole whiteboard with only the bridge's words changed; ``{}`` when the
    bug already shows them."""
    if target == "keywords":
        current = {str(k) for k in bug.get("keywords") or ()}
        add = sorted(set(diff.add_labels) - current)
        remove = sorted(set(diff.remove_labels) & current)
        ops: dict[str, list[str]] = {}
        if add:
            ops["add"] = add
        if remove:
            ops["remove"] = remove
        return {"keywords": ops} if ops else {}
    if target == "whiteboard":
        old = str(bug.get("whiteboard") or "")
        new = edit_whiteboard(old, diff.add_labels, diff.remove_labels)
        return {"whiteboard": new} if new != old else {}
    raise TicketWriteRejected(tracker, diff.key, f"write.labels {target!r} is not "
                              "'keywords' or 'whiteboard'")


def deadline_value(want: str | None, info: FieldInfo, server_zone: ZoneInfo, key: str,
                   tracker: str) -> str:
    """The diff's ISO text as ``Bug.update`` takes the field: text as is, a date/time field
    as local ``YYYY-MM-DD HH:MM:SS`` in the server's zone, ``""`` to clear."""
    if want is None:
        return ""  # Bugzilla clears a text field and a date/time field with ""
    if info.type != TYPE_DATETIME:
        return want
    try:
        instant = datetime.fromisoformat(want)
    except ValueError:
        raise TicketWriteRejected(tracker, key, f"{want!r} is not a date and "
                                  f"time for the date/time field {info.name!r}") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    # Bug.update takes a date/time custom field as local text, in the server's zone
    return instant.astimezone(server_zone).strftime("%Y-%m-%d %H:%M:%S")


def comment(note: Note, private: bool) -> dict[str, Any]:
    """A note as ``Bug.update``'s ``comment``, ending with its marker."""
    return {"body": f"{note.text.rstrip()}\n\n{note_marker(note.key)}", "is_private": private}


def changed_fields(answer: Mapping[str, Any], bid: int) -> Mapping[str, Any]:
    """The ``changes`` ``Bug.update`` reported for bug ``bid``."""
    changes: Mapping[str, Any] = {}
    for b in answer.get("bugs") or ():
        if int(b.get("id", bid)) == bid:
            changes = b.get("changes") or {}
    return changes


# -- cursor -------------------------------------------------------------------------------------


def parse_cursor(cursor: str | None) -> tuple[datetime | None, dict[int, str]]:
    """``(watermark, {bug id: last_change_time already returned})``; garbage: start over."""
    return read_seen_cursor(cursor, CURSOR_VERSION, what="Bugzilla")


def make_cursor(since: datetime, listed: Mapping[int, str], overlap: timedelta) -> str:
    """The watermark (the database clock before the scan) and the settled pairs inside the
    next poll's overlap window (see :data:`SETTLE`)."""
    floor, settled = since - overlap, since - SETTLE
    seen = {str(i): ts for i, ts in sorted(listed.items()) if floor <= parse_utc(ts) <= settled}
    return json.dumps({"v": CURSOR_VERSION, "since": utc_literal(since), "seen": seen},
                      separators=(",", ":"), sort_keys=True)
