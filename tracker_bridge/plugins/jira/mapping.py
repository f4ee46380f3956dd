"""JIRA JSON <-> the bridge's types, with no I/O: issues to tickets, diffs to request bodies.

Everything here is a pure function of its arguments (no HTTP, no clock), testable on the
payloads under ``tests/jira/payloads``. Field names are resolved by the backend (``GET
/field``) into :class:`FieldDef` values first; :class:`MappingSpec` carries them.

Mapping (tracker config -> normalized ticket)
    ============================  ==========================================================
    ``key``, ``url``              issue key, ``{url}/browse/{key}``
    ``created``/``updated``       ``fields.created``/``fields.updated`` (their own offsets)
    ``reporter``, ``by``          display names (reporter, changelog and comment authors)
    ``status``                    ``fields.status.name``
    ``fields[x]``                 ``fields: {x: priority}`` a field id (``priority``,
                                  ``components``, ``customfield_10010``...), or
                                  ``fields: {x: "cf:Name"}`` a custom field by name
                                  (``GET /field``); objects read as their value/name, lists
                                  joined with ``, ``
    ``fields["plan"]``            the mapped plan field, else ``project_plans``/``plan`` by
                                  project key
    ``fields["response_due"]``..  the current text of the ``write.*`` deadline fields
    ``labels``                    ``fields.labels`` (``write.labels: labels``), or a labels
                                  custom field (``cf:Name``)
    ``history``                   changelog ``status`` items -> status events, mapped fields
                                  -> field events, the labels field's items -> label events
                                  (``fromString``/``toString`` space-separated, what went and
                                  came); comments -> comment events, ``public`` false when the
                                  comment has a ``visibility`` or is a Jira Service Management
                                  internal note (``sd.public.comment``)
    ============================  ==========================================================

Searching
    ``project in (...) AND updated >= "yyyy/MM/dd HH:mm" ORDER BY updated ASC, key ASC``: the
    literal is ``floor_to_minute(W - overlap)`` in the sync account's profile zone (JQL date
    literals are minute-granular wall-clock times in that zone), moved back further when a DST
    fold makes it ambiguous (:func:`jql_literal`).

The cursor
    JSON ``{"v": 1, "since": <newest updated listed>, "seen": {id: updated}}`` with only JIRA's
    own ``updated`` values; repeats are dropped on ``(id, updated)``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ...backend import Diff, marker_keys, same_deadline
from ...core.saferegex import compile_safe, scrub
from ...core.ticket import HistoryEvent, Ticket
from ...errors import TicketWriteRejected
from .._http import read_seen_cursor
from .adf import adf_to_text, text_to_adf

CF_PREFIX = "cf:"
CURSOR_VERSION = 1
#: the JQL date literal the searches use (minute resolution, no zone: the user's zone)
JQL_TIME_FORMAT = "%Y/%m/%d %H:%M"
#: what a JIRA datetime custom field accepts
JIRA_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.000%z"
#: every issue read asks for these fields (plus the mapped ones); never ``*all``
BASE_FIELDS = ("summary", "description", "status", "created", "updated", "reporter",
               "project")
#: the Jira Service Management comment property that marks internal notes
JSM_COMMENT_PROPERTY = "sd.public.comment"
#: custom field types that hold the bridge's deadline text, by ``schema.type``
DEADLINE_TYPES = ("string", "datetime")
LABELS_CUSTOM_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:labels"
TEXTAREA_CUSTOM_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:textarea"
# the marker as JIRA wiki markup writes it literally (a bare [..] is a link there); comment
# text is customer text: RE2, linear whatever it holds
_ESCAPED_MARKER_RE = compile_safe(r"\\\[(tracker-bridge:note=[A-Za-z0-9:._\-]+)\\\]")


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One entry of ``GET /field``: what a configured field name resolves to."""

    id: str
    name: str
    custom: bool
    type: str | None       # schema.type: string, number, datetime, array, option, ...
    items: str | None      # schema.items for arrays
    custom_type: str | None  # schema.custom, e.g. ...customfieldtypes:textfield

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FieldDef:
        schema = d.get("schema") or {}
        return cls(id=str(d["id"]), name=str(d.get("name") or d["id"]),
                   custom=bool(d.get("custom")), type=schema.get("type"),
                   items=schema.get("items"), custom_type=schema.get("custom"))


@dataclass(frozen=True)
class MappingSpec:
    """Everything :func:`map_issue` needs besides the issue: the tracker's config, with every
    configured field name already resolved (an unresolved one is absent, or ``None``)."""

    tracker: str
    base_url: str
    #: normalized field -> its definition, for every ``fields:`` entry that resolves
    mapped: Mapping[str, FieldDef]
    #: every normalized name configured in ``fields:`` (an unresolved one reads as empty)
    field_names: tuple[str, ...] = ()
    #: response_due/resolution_due -> the write field's definition (None: unresolved)
    deadlines: Mapping[str, FieldDef | None] = field(default_factory=dict)
    #: the labels field (``write.labels``); None when not written or unresolved
    labels: FieldDef | None = None
    #: the zone the deadline fields are written in (``write.timezone``)
    write_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    project_plans: Mapping[str, str] = field(default_factory=dict)  # project key -> plan
    plan: str | None = None


# -- time ----------------------------------------------------------------------------------------

def parse_jira_time(text: str) -> datetime:
    """A JIRA timestamp (``2026-01-18T06:27:50.429+0000``) as an aware datetime."""
    dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        msg = f"{text!r} has no UTC offset"
        raise ValueError(msg)
    return dt


def jql_literal(lower: datetime, zone: ZoneInfo) -> str:
    """The JQL literal for "updated at or after ``lower``" for a user in ``zone``.

    JIRA reads ``"yyyy/MM/dd HH:mm"`` as a wall-clock time in the searching user's zone, to the
    minute. The literal is ``lower`` floored to the minute in that zone; when the wall time is
    ambiguous (a DST fold) or skipped (a gap), it is moved back until every reading of it is
    at or before ``lower``, whichever of them JIRA picks: reading a little more is harmless,
    reading too little loses changes.
    """
    wall = lower.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
    for _ in range(4):  # one step suffices for any real zone; never loop forever
        latest = max(wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
        if latest <= lower:
            break
        wall -= timedelta(minutes=math.ceil((latest - lower).total_seconds() / 60))
    return wall.strftime(JQL_TIME_FORMAT)


def jql_string(s: str) -> str:
    """``s`` as a quoted JQL string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_jql(projects: Iterable[str], literal: str | None) -> str:
    """The search of every issue in ``projects`` updated at or after the JQL ``literal``."""
    parts = []
    projects = list(projects)
    if projects:
        parts.append("project in (" + ", ".join(jql_string(p) for p in projects) + ")")
    if literal is not None:
        parts.append(f'updated >= "{literal}"')
    if not parts:
        parts.append('updated >= "1970/01/01 00:00"')  # Cloud refuses unbounded JQL
    return " AND ".join(parts) + " ORDER BY updated ASC, key ASC"


# -- values --------------------------------------------------------------------------------------

def value_text(value: Any) -> str | None:
    """A JIRA field value as text: options by value, users by display name, lists joined."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Mapping):
        if value.get("type") == "doc":
            return adf_to_text(value) or None
        for k in ("value", "name", "displayName", "key", "id"):
            if value.get(k) not in (None, ""):
                return str(value[k])
        return None
    if isinstance(value, list):
        parts = [t for t in (value_text(v) for v in value) if t]
        return ", ".join(parts) if parts else None
    return str(value)


def is_labels_field(fdef: FieldDef) -> bool:
    return fdef.id == "labels" or (fdef.custom_type == LABELS_CUSTOM_TYPE) or \
        (fdef.type == "array" and fdef.items == "string" and not fdef.custom)


def deadline_text(fdef: FieldDef | None, value: Any, zone: ZoneInfo) -> str | None:
    """A deadline field's value as the bridge compares it (a datetime in write.timezone)."""
    if fdef is not None and fdef.type == "datetime" and isinstance(value, str) and value:
        try:
            dt = parse_jira_time(value)
        except ValueError:
            return value
        return dt.astimezone(zone).replace(microsecond=0).isoformat()
    text = value_text(value)
    return text.strip() or None if text else None


def deadline_value(fdef: FieldDef, text: str | None, key: str, tracker: str) -> Any:
    """The diff's ISO text as the field takes it: text as is, a Date Time Picker in JIRA form."""
    if text is None:
        return None
    if fdef.type == "datetime":
        try:
            return parse_jira_time(text).strftime(JIRA_DATETIME_FORMAT)
        except ValueError:
            raise TicketWriteRejected(tracker, key, f"{text!r} is not a timestamp for the "
                                      f"Date Time Picker field {fdef.name!r}") from None
    return text


def _num(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


# -- comments ------------------------------------------------------------------------------------

def jsm_internal(c: Mapping[str, Any]) -> bool:
    """Whether a comment is a Jira Service Management internal note."""
    for p in c.get("properties") or ():
        if p.get("key") == JSM_COMMENT_PROPERTY:
            value = p.get("value")
            if isinstance(value, str):  # some versions store the JSON as text
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            return isinstance(value, Mapping) and bool(value.get("internal"))
    return False


def comment_text(c: Mapping[str, Any]) -> str:
    """A comment's plain text (ADF on v3, wiki text on v2), escaped markers read back."""
    body = c.get("body")
    text = adf_to_text(body) if isinstance(body, Mapping) else str(body or "")
    return _ESCAPED_MARKER_RE.sub(r"[\1]", scrub(text))


def posted_keys(comments: Iterable[Mapping[str, Any]]) -> set[str]:
    """The keys of the bridge's notes among an issue's comments (their markers)."""
    return {k for c in comments for k in marker_keys(comment_text(c))}


def comment_body(text: str, marker: str, *, cloud: bool,
                 visibility: Mapping[str, str] | None = None,
                 internal: bool = False) -> dict[str, Any]:
    """A note as ``POST /issue/{key}/comment`` takes it, ending with its marker."""
    text = text.rstrip()
    body: dict[str, Any]
    if cloud:
        body = {"body": text_to_adf(f"{text}\n\n{marker}")}
    else:
        # wiki markup: a bare [..] is a link; escaped it shows (and reads back) as is
        escaped = marker.replace("[", "\\[").replace("]", "\\]")
        body = {"body": f"{text}\n\n{escaped}"}
    if visibility is not None:
        body["visibility"] = dict(visibility)
    if internal:
        body["properties"] = [{"key": JSM_COMMENT_PROPERTY, "value": {"internal": True}}]
    return body


# -- issue -> ticket -----------------------------------------------------------------------------

def map_issue(issue: Mapping[str, Any], spec: MappingSpec) -> Ticket:
    """One issue (with ``_histories`` and ``_comments``, as the client reads it) as a ticket."""
    f = issue.get("fields") or {}
    key = str(issue["key"])
    fields: dict[str, str | None] = {norm: value_text(f.get(d.id))
                                     for norm, d in spec.mapped.items()}
    for norm in spec.field_names:
        fields.setdefault(norm, None)
    if not fields.get("plan"):
        project = (f.get("project") or {}).get("key")
        plan = spec.project_plans.get(project, spec.plan) if project is not None \
            else spec.plan
        if plan:
            fields["plan"] = plan
    for norm, fdef in spec.deadlines.items():
        fields[norm] = deadline_text(fdef, f.get(fdef.id), spec.write_zone) if fdef else None
    labels: tuple[str, ...] = ()
    if spec.labels is not None:
        labels = tuple(str(x) for x in (f.get(spec.labels.id) or ()))
    return Ticket(
        tracker=spec.tracker,
        key=key,
        url=f"{spec.base_url}/browse/{key}",
        created=parse_jira_time(f["created"]),
        updated=parse_jira_time(f["updated"]) if f.get("updated") else None,
        reporter=(f.get("reporter") or {}).get("displayName"),
        subject=str(f.get("summary") or ""),
        description=value_text(f.get("description")) or "",
        status=str((f.get("status") or {}).get("name") or ""),
        fields=fields,
        labels=labels,
        history=history(issue, spec.mapped, spec.labels),
    )


def label_change(item: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(added, removed)`` of one changelog item of a labels field, in JIRA's order.

    JIRA writes the labels before and after as space-separated ``fromString``/``toString``
    (labels cannot hold blanks; ``from``/``to`` are null).
    """
    before = tuple(dict.fromkeys(str(item.get("fromString") or "").split()))
    after = tuple(dict.fromkeys(str(item.get("toString") or "").split()))
    return (tuple(x for x in after if x not in before),
            tuple(x for x in before if x not in after))


def history(issue: Mapping[str, Any], mapped: Mapping[str, FieldDef],
            labels: FieldDef | None = None) -> tuple[HistoryEvent, ...]:
    """The changelog's status, labels and mapped-field changes and the comments, in time
    order. ``labels`` is the labels field the ticket's labels come from (``write.labels``);
    without one, JIRA's own Labels field."""
    by_id = {d.id: norm for norm, d in mapped.items()}
    # Data Center items may lack fieldId: they name custom fields by their display name
    # (system fields by their id, e.g. "labels", "priority")
    by_name = {d.name: norm for norm, d in mapped.items()}
    label_id = labels.id if labels is not None else "labels"
    label_name = labels.name if labels is not None and labels.custom else label_id
    events: list[HistoryEvent] = []
    histories = sorted(issue.get("_histories") or (),
                       key=lambda h: (parse_jira_time(h["created"]), _num(h.get("id"))))
    for h in histories:
        at = parse_jira_time(h["created"])
        by = (h.get("author") or {}).get("displayName")
        for item in h.get("items") or ():
            fid, fname = item.get("fieldId"), item.get("field")
            old = item.get("fromString") or None
            new = item.get("toString") or None
            if fid == "status" or (fid is None and fname == "status"
                                   and item.get("fieldtype") == "jira"):
                events.append(HistoryEvent(at=at, kind="status", by=by, from_=old,
                                           to=new or str(item.get("to") or "")))
                continue
            if fid == label_id or (fid is None and fname == label_name):
                added, removed = label_change(item)
                if added or removed:
                    events.append(HistoryEvent(at=at, kind="label", by=by, added=added,
                                               removed=removed))
            norm = by_id.get(fid) if fid else (by_id.get(fname) or by_name.get(fname))
            if norm is not None:
                events.append(HistoryEvent(at=at, kind="field", by=by, field=norm,
                                           from_=old, to=new))
    for c in sorted(issue.get("_comments") or (),
                    key=lambda c: (parse_jira_time(c["created"]), _num(c.get("id")))):
        events.append(HistoryEvent(
            at=parse_jira_time(c["created"]), kind="comment",
            by=(c.get("author") or {}).get("displayName"),
            public=not c.get("visibility") and not jsm_internal(c),
            text=comment_text(c)))
    events.sort(key=lambda e: e.at)  # stable: changelog before comments within an instant
    return tuple(events)


# -- diff -> edit body ---------------------------------------------------------------------------

def edit_body(current: Mapping[str, Any], deadlines: Mapping[str, tuple[FieldDef, str | None]],
              labels: FieldDef | None, diff: Diff, zone: ZoneInfo,
              tracker: str) -> dict[str, Any]:
    """The ``PUT /issue/{key}`` body that makes the issue show the diff; ``{}`` when it does.

    ``current`` is the issue's ``fields`` as just read; ``deadlines`` maps each normalized
    deadline to its field and wanted text. Labels are ``update`` ``add``/``remove``
    operations, never a replacement of the set (a person's labels stay untouched).
    """
    fields_body: dict[str, Any] = {}
    for fdef, value in deadlines.values():
        have = deadline_text(fdef, current.get(fdef.id), zone)
        want = value if value not in (None, "") else None
        if not same_deadline(have, want):
            fields_body[fdef.id] = deadline_value(fdef, want, diff.key, tracker)
    ops: list[dict[str, str]] = []
    if labels is not None:
        have_labels = set(current.get(labels.id) or ())
        ops = [{"add": x} for x in sorted(set(diff.add_labels) - have_labels)]
        ops += [{"remove": x} for x in sorted(set(diff.remove_labels) & have_labels)]
    body: dict[str, Any] = {}
    if fields_body:
        body["fields"] = fields_body
    if ops and labels is not None:
        body["update"] = {labels.id: ops}
    return body


# -- cursor --------------------------------------------------------------------------------------

def parse_cursor(cursor: str | None) -> tuple[datetime | None, dict[str, str]]:
    """``(watermark, {issue id: updated already returned})``; garbage means start over."""
    return read_seen_cursor(cursor, CURSOR_VERSION, what="JIRA", parse_time=parse_jira_time,
                            key=str)


def make_cursor(since: datetime | None, seen: Mapping[str, str],
                returned: Mapping[str, str], overlap: timedelta) -> str | None:
    """The watermark plus the ``(id, updated)`` pairs the next poll may skip.

    Only pairs the next poll can list again matter: those at or after ``since - overlap``
    (one minute more, for the literal's flooring).
    """
    if since is None:
        return None
    merged = dict(seen)
    for iid, upd in returned.items():
        if iid not in merged or parse_jira_time(upd) > parse_jira_time(merged[iid]):
            merged[iid] = upd
    floor = since - overlap - timedelta(minutes=1)
    keep = {i: u for i, u in merged.items() if parse_jira_time(u) >= floor}
    return json.dumps({"v": CURSOR_VERSION,
                       "since": since.astimezone(UTC).isoformat(timespec="milliseconds"),
                       "seen": keep}, separators=(",", ":"), sort_keys=True)
