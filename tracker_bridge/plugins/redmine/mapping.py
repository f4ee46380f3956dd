"""Redmine JSON <-> the bridge's types, with no I/O: issues to tickets, diffs to PUT bodies.

Everything here is a pure function of its arguments (no HTTP, no clock), testable on the
payloads under ``tests/redmine/payloads``. Names only the server knows (status, priority and
tracker names, a project's categories and versions, custom field ids, the project's
identifier) come in a :class:`Lookups`; :func:`needed_lookups` says which ones an issue needs,
so that the backend reads only those (and each once).

Mapping (tracker config -> normalized ticket)
    ============================  ==========================================================
    ``key``, ``url``              issue id, ``{url}/issues/{id}``
    ``created``/``updated``       ``created_on``/``updated_on`` (UTC)
    ``reporter``                  author's name (journal authors are names too, so the
                                  engine can tell the reporter's comments from others')
    ``status``                    status name
    ``fields[x]``                 ``fields: {x: priority}`` a built-in attribute (its name),
                                  ``fields: {x: "cf:Name"}`` a custom field by name
    ``fields["plan"]``            the mapped plan field, else ``project_plans``/``plan``
    ``fields["response_due"]``..  the current text of the ``write.*`` deadline and state fields
    ``labels``                    every value of the ``write.labels`` multi-value list field
    ``history``                   journals sorted by id: ``status_id`` -> status events,
                                  mapped attributes / custom fields -> field events,
                                  the labels field's values added/removed in one journal
                                  -> one label event,
                                  notes -> comments (private notes: ``public=false``)
    ============================  ==========================================================

Writing
    The labels field is set to ``(current - remove) | add`` (every value the bridge does not
    own is kept, in its order), a deadline field only when it does not already show the
    instant; the first note rides in the same ``PUT`` as the fields (Redmine takes ``notes``
    in an issue update), each further note is its own ``PUT``, each one a public journal note
    ending with ``note_marker(key)``.

The cursor
    JSON ``{"v": 1, "since": <newest updated_on listed>, "seen": {id: updated_on}}``, only
    server timestamps; see :func:`make_cursor` for which pairs are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...backend import Diff, marker_keys, note_marker, same_deadline
from ...core.ticket import HistoryEvent, Ticket
from ...core.verdict import Note
from ...errors import TicketWriteRejected
from .._http import parse_utc, read_seen_cursor, utc_literal

CF_PREFIX = "cf:"
CURSOR_VERSION = 1

#: built-in issue attributes a ``fields:`` entry may name -> the journal detail that tracks it
BUILTIN_ATTRS: Mapping[str, str | None] = {
    "priority": "priority_id",
    "status": "status_id",
    "tracker": "tracker_id",
    "category": "category_id",
    "fixed_version": "fixed_version_id",
    "assigned_to": "assigned_to_id",
    "author": None,
    "project": "project_id",
    "subject": "subject",
    "due_date": "due_date",
    "start_date": "start_date",
    "done_ratio": "done_ratio",
    "estimated_hours": "estimated_hours",
    "is_private": "is_private",
}
#: custom field formats that can hold the bridge's deadline text
TEXT_FORMATS = ("string", "text")

#: the kinds of :class:`Lookups` (what :func:`needed_lookups` returns)
STATUSES, PRIORITIES, TRACKERS, CATEGORIES, VERSIONS, PROJECT = (
    "statuses", "priorities", "trackers", "categories", "versions", "project")
#: journal attribute -> the lookup naming its ids
_ATTR_LOOKUP = {"priority_id": PRIORITIES, "tracker_id": TRACKERS,
                "category_id": CATEGORIES, "fixed_version_id": VERSIONS}


@dataclass(frozen=True)
class MappingSpec:
    """The tracker's config as the mapping reads it (no I/O)."""

    tracker: str
    base_url: str
    #: normalized field -> ``priority`` (an attribute) or ``cf:Name``
    fields: Mapping[str, str]
    #: response_due/resolution_due/state -> ``cf:Name``, for the bridge's fields written here
    deadlines: Mapping[str, str] = field(default_factory=dict)
    #: ``write.labels`` (``cf:Name``), or None
    labels: str | None = None
    project_plans: Mapping[str, str] = field(default_factory=dict)  # identifier -> plan
    plan: str | None = None

    def custom_field_names(self, written_only: bool = False) -> list[str]:
        """Every custom field name the mapping may look up (``written_only``: those a write
        may touch), in config order."""
        targets = [] if written_only else list(self.fields.values())
        targets += self.deadlines.values()
        if self.labels:
            targets.append(self.labels)
        return list(dict.fromkeys(cf_name(t) for t in targets if t.startswith(CF_PREFIX)))


@dataclass(frozen=True)
class Lookups:
    """Names only the server knows, read by the backend before mapping one issue."""

    #: custom field name -> id; a name absent (or None) is matched by name on the issue
    #: (what a non-admin key, which may not read ``/custom_fields.json``, gets)
    cf_ids: Mapping[str, int | None] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)     # id -> name
    priorities: Mapping[str, str] = field(default_factory=dict)
    trackers: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)   # of the issue's project
    versions: Mapping[str, str] = field(default_factory=dict)     # of the issue's project
    #: the identifier of the issue's project (for ``project_plans``)
    project: str | None = None


# -- values -------------------------------------------------------------------------------------

def cf_name(target: str) -> str:
    """``cf:Name`` -> ``Name`` (a bare name is a name already)."""
    return target[len(CF_PREFIX):] if target.startswith(CF_PREFIX) else target


def builtin(target: str) -> str | None:
    """``priority``/``priority_id`` -> ``priority``; None for an unknown attribute."""
    name = target[:-3] if target.endswith("_id") and target[:-3] in BUILTIN_ATTRS else target
    return name if name in BUILTIN_ATTRS else None


def find_cf(issue: Mapping[str, Any], name: str, cf_id: int | None) -> dict[str, Any] | None:
    """The issue's entry for a custom field: by id when known, else by name."""
    for cf in issue.get("custom_fields") or ():
        if (cf_id is not None and int(cf["id"]) == cf_id) or (cf_id is None and
                                                              cf.get("name") == name):
            return dict(cf)
    return None


def cf_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v not in (None, ""))
    return None if value in (None, "") else str(value)


def cf_values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def field_value(issue: Mapping[str, Any], target: str, lookups: Lookups) -> str | None:
    """The text of a mapped attribute or custom field (a multi-value one joined)."""
    if target.startswith(CF_PREFIX):
        name = cf_name(target)
        cf = find_cf(issue, name, lookups.cf_ids.get(name))
        if cf is None:
            return None
        value = cf.get("value")
        if isinstance(value, list):
            vals = [str(v) for v in value if v not in (None, "")]
            return ", ".join(vals) if vals else None
        return cf_text(value)
    attr = builtin(target)
    if attr is None:
        return None
    value = issue.get(attr)
    if isinstance(value, Mapping):
        value = value.get("name")
    if value is None or value == "":
        return None
    return str(value)


def posted_keys(issue: Mapping[str, Any]) -> set[str]:
    """The keys of the bridge's notes in the issue's journals (their markers)."""
    return {k for j in issue.get("journals") or () for k in marker_keys(j.get("notes"))}


# -- issue -> ticket ----------------------------------------------------------------------------

def _cf_id(issue: Mapping[str, Any], name: str, lookups: Lookups) -> int | None:
    """A custom field's id: from the lookups, else from the issue's entry by name."""
    cf_id = lookups.cf_ids.get(name)
    if cf_id is None:
        cf = find_cf(issue, name, None)
        cf_id = int(cf["id"]) if cf is not None else None
    return cf_id


def _tracked(issue: Mapping[str, Any], spec: MappingSpec,
             lookups: Lookups) -> tuple[dict[str, str], dict[str, str]]:
    """Journal detail -> normalized field, for every mapped attribute and custom field."""
    attr_fields: dict[str, str] = {}
    cf_fields: dict[str, str] = {}
    for norm, target in spec.fields.items():
        if target.startswith(CF_PREFIX):
            cf_id = _cf_id(issue, cf_name(target), lookups)
            if cf_id is not None:
                cf_fields[str(cf_id)] = norm
        else:
            attr = BUILTIN_ATTRS.get(builtin(target) or "")
            if attr:
                attr_fields[attr] = norm
    return attr_fields, cf_fields


def _mapped_fields(issue: Mapping[str, Any], spec: MappingSpec,
                   lookups: Lookups) -> dict[str, str | None]:
    return {norm: field_value(issue, target, lookups) for norm, target in spec.fields.items()}


def needed_lookups(issue: Mapping[str, Any], spec: MappingSpec,
                   cf_ids: Mapping[str, int | None]) -> set[str]:
    """Which :class:`Lookups` :func:`to_ticket` reads for this issue (beside ``cf_ids``)."""
    need: set[str] = set()
    lookups = Lookups(cf_ids=cf_ids)
    if spec.project_plans and not _mapped_fields(issue, spec, lookups).get("plan"):
        need.add(PROJECT)
    attr_fields, _ = _tracked(issue, spec, lookups)
    for j in issue.get("journals") or ():
        for d in j.get("details") or ():
            if d.get("property") != "attr":
                continue
            name = str(d.get("name"))
            if name == "status_id":
                need.add(STATUSES)
            elif name in attr_fields and name in _ATTR_LOOKUP and \
                    (d.get("old_value") not in (None, "") or d.get("new_value") not in (None, "")):
                need.add(_ATTR_LOOKUP[name])
    return need


def to_ticket(issue: Mapping[str, Any], spec: MappingSpec, lookups: Lookups) -> Ticket:
    """One issue (``GET /issues/N.json?include=journals``) as a normalized ticket."""
    iid = int(issue["id"])
    fields = _mapped_fields(issue, spec, lookups)
    if not fields.get("plan"):
        plan = spec.project_plans.get(lookups.project, spec.plan) \
            if lookups.project is not None else spec.plan
        if plan:
            fields["plan"] = plan
    for norm, target in spec.deadlines.items():
        fields[norm] = field_value(issue, target, lookups)
    labels: tuple[str, ...] = ()
    if spec.labels:
        name = cf_name(spec.labels)
        cf = find_cf(issue, name, lookups.cf_ids.get(name))
        labels = tuple(cf_values(cf.get("value"))) if cf is not None else ()
    return Ticket(
        tracker=spec.tracker,
        key=str(iid),
        url=f"{spec.base_url}/issues/{iid}",
        created=parse_utc(issue["created_on"]),
        updated=parse_utc(issue["updated_on"]) if issue.get("updated_on") else None,
        reporter=(issue.get("author") or {}).get("name"),
        subject=str(issue.get("subject") or ""),
        description=str(issue.get("description") or ""),
        status=str(issue["status"]["name"]),
        fields=fields,
        labels=labels,
        history=history(issue, spec, lookups),
    )


def history(issue: Mapping[str, Any], spec: MappingSpec,
            lookups: Lookups) -> tuple[HistoryEvent, ...]:
    """The journals as history events, in time order (journal order within one second)."""
    attr_fields, cf_fields = _tracked(issue, spec, lookups)
    multi = {str(cf["id"]) for cf in issue.get("custom_fields") or () if cf.get("multiple")}
    labels_id = _labels_cf_id(issue, spec, lookups)
    events: list[HistoryEvent] = []
    # Journals come newest-first when the API user prefers comments in reverse order.
    for j in sorted(issue.get("journals") or (), key=lambda j: int(j["id"])):
        at = parse_utc(j["created_on"])
        by = (j.get("user") or {}).get("name")
        added: list[str] = []
        removed: list[str] = []
        for d in j.get("details") or ():
            prop, name = d.get("property"), str(d.get("name"))
            old, new = d.get("old_value"), d.get("new_value")
            if prop == "cf" and name == labels_id:
                # a multi-value list journals one detail per value added (old null) or removed
                # (new null); a single-value one, old and new texts
                if old not in (None, "") and old != new:
                    removed.append(str(old))
                if new not in (None, "") and old != new:
                    added.append(str(new))
            elif prop == "attr" and name == "status_id":
                names = lookups.statuses
                events.append(HistoryEvent(
                    at=at, kind="status", by=by,
                    from_=names.get(str(old), old) if old is not None else None,
                    to=names.get(str(new), str(new))))
            elif prop == "attr" and name in attr_fields:
                events.append(HistoryEvent(
                    at=at, kind="field", by=by, field=attr_fields[name],
                    from_=_attr_name(name, old, lookups), to=_attr_name(name, new, lookups)))
            elif prop == "cf" and name in cf_fields and name not in multi:
                events.append(HistoryEvent(
                    at=at, kind="field", by=by, field=cf_fields[name],
                    from_=old if old not in (None, "") else None,
                    to=new if new not in (None, "") else None))
        if added or removed:
            events.append(HistoryEvent(
                at=at, kind="label", by=by, added=tuple(dict.fromkeys(added)),
                removed=tuple(dict.fromkeys(removed))))
        notes = j.get("notes")
        if notes:
            events.append(HistoryEvent(at=at, kind="comment", by=by,
                                       public=not j.get("private_notes"), text=str(notes)))
    events.sort(key=lambda e: e.at)  # stable: journal order kept within one second
    return tuple(events)


def _labels_cf_id(issue: Mapping[str, Any], spec: MappingSpec, lookups: Lookups) -> str | None:
    """The id (as journals write it) of the ``write.labels`` custom field, if any."""
    if not spec.labels:
        return None
    cf_id = _cf_id(issue, cf_name(spec.labels), lookups)
    return None if cf_id is None else str(cf_id)


def _attr_name(attr: str, value: Any, lookups: Lookups) -> str | None:
    if value in (None, ""):
        return None
    v = str(value)
    names: Mapping[str, str] = {
        "priority_id": lookups.priorities, "tracker_id": lookups.trackers,
        "category_id": lookups.categories, "fixed_version_id": lookups.versions,
    }.get(attr, {})
    return names.get(v, v)


# -- diff -> PUT bodies -------------------------------------------------------------------------

def issue_cf(issue: Mapping[str, Any], target: str, cf_ids: Mapping[str, int | None],
             tracker: str, key: str) -> dict[str, Any]:
    """The issue's entry for custom field ``cf:NAME``; refuses a field it does not have."""
    name = cf_name(target)
    cf = find_cf(issue, name, cf_ids.get(name))
    if cf is None:
        raise TicketWriteRejected(
            tracker, key,
            f"custom field {name!r} is not available on this issue (missing, or not "
            "enabled for its tracker or project, or not visible to the API user); "
            "Redmine would silently ignore the write")
    return cf


def custom_field_updates(issue: Mapping[str, Any], diff: Diff, spec: MappingSpec,
                         cf_ids: Mapping[str, int | None]) -> list[dict[str, Any]]:
    """The ``custom_fields`` entries that make ``issue`` (as just read) show the diff.

    Only deadline fields written here (``spec.deadlines``) and not already showing the
    instant; the labels field as ``(current - remove) | add`` when that differs. ``[]`` when
    the issue shows everything already.
    """
    updates: list[dict[str, Any]] = []
    for norm, value in diff.set_fields.items():
        target = spec.deadlines.get(norm)
        if not target:
            continue
        cf = issue_cf(issue, target, cf_ids, spec.tracker, diff.key)
        new = value if value not in (None, "") else None
        if not same_deadline(cf_text(cf.get("value")), new):
            updates.append({"id": cf["id"], "value": new or ""})
    if (diff.add_labels or diff.remove_labels) and spec.labels:
        cf = issue_cf(issue, spec.labels, cf_ids, spec.tracker, diff.key)
        current = cf_values(cf.get("value"))
        wanted = [v for v in current if v not in diff.remove_labels]
        wanted += sorted(set(diff.add_labels) - set(wanted))
        if wanted != current:
            updates.append({"id": cf["id"], "value": wanted})
    return updates


def unposted(notes: Iterable[Note], posted: Iterable[str]) -> list[Note]:
    """The notes not posted yet (their key not among ``posted``); a key repeated in ``notes``
    is posted once."""
    done = set(posted)
    out = []
    for note in notes:
        if note.key in done:
            continue
        out.append(note)
        done.add(note.key)
    return out


def note_text(note: Note) -> str:
    """A note's journal text, ending with its marker."""
    return f"{note.text.rstrip()}\n\n{note_marker(note.key)}"


def note_texts(notes: Iterable[Note], posted: Iterable[str]) -> list[str]:
    """The journal text of each note not posted yet."""
    return [note_text(n) for n in unposted(notes, posted)]


def issue_puts(updates: Sequence[Mapping[str, Any]], notes: Sequence[str],
               private: Sequence[bool] = ()) -> list[dict[str, Any]]:
    """The ``PUT /issues/N.json`` bodies (the ``issue`` object) for field updates and notes.

    The first note rides with the fields (one journal with both; Redmine keeps the field
    changes public when it splits off a private note), each further note is its own ``PUT``:
    a journal holds one note. ``private[i]`` makes note ``i`` a private note (an internal
    note: the patient-data warning). ``[]`` when there is nothing to write.
    """
    flags = [bool(p) for p in private] + [False] * (len(notes) - len(private))
    bodies: list[dict[str, Any]] = []
    first: dict[str, Any] = {}
    if updates:
        first["custom_fields"] = [dict(u) for u in updates]
    rest = list(zip(notes, flags, strict=False))
    if rest:
        text, flag = rest.pop(0)
        first.update(notes=text, private_notes=flag)
    if first:
        bodies.append(first)
    bodies.extend({"notes": text, "private_notes": flag} for text, flag in rest)
    return bodies


def unapplied(issue: Mapping[str, Any],
              updates: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Any]]:
    """The updates the issue (read back after the PUT) does not show, with what it shows
    instead: Redmine answers 204 even when it dropped a field it will not write."""
    values = {int(cf["id"]): cf.get("value") for cf in issue.get("custom_fields") or ()}
    out = []
    for u in updates:
        got, want = values.get(int(u["id"])), u["value"]
        same = (sorted(cf_values(got)) == sorted(want)) if isinstance(want, list) \
            else cf_text(got) == (want or None)
        if not same:
            out.append((u, got))
    return out


def write_site(issue: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(project, tracker, status)`` ids: whether Redmine silently drops a custom field
    depends on exactly these (and the API user's role)."""
    return (int(issue["project"]["id"]), int(issue["tracker"]["id"]),
            int(issue["status"]["id"]))


# -- cursor -------------------------------------------------------------------------------------

def parse_cursor(cursor: str | None) -> tuple[datetime | None, dict[int, str]]:
    """``(watermark, {issue id: updated_on already returned})``; garbage means start over."""
    return read_seen_cursor(cursor, CURSOR_VERSION, what="Redmine")


def make_cursor(since: datetime | None, listed: Mapping[int, str], overlap: timedelta,
                scan_started: datetime | None) -> str | None:
    """The watermark plus the ``(id, updated_on)`` pairs the next poll may skip.

    Only pairs inside the next overlap window matter (older ones are not listed again), and
    only "settled" ones: stamped at least two seconds before the server's clock at the start
    of this scan, so no later edit within the same second can hide behind the same pair.
    """
    if since is None:
        return None
    # the next poll lists from `since - overlap`, which Redmine reads as one second earlier
    # still (see RedmineClient.scan): vouch for that second too, or its issues are re-read
    # every poll
    floor = since - overlap - timedelta(seconds=1)
    settled_before = scan_started - timedelta(seconds=2) if scan_started else None
    seen = {}
    for iid, upd in listed.items():
        u = parse_utc(upd)
        if u >= floor and settled_before is not None and u <= settled_before:
            seen[str(iid)] = upd
    return json.dumps({"v": CURSOR_VERSION, "since": utc_literal(since), "seen": seen},
                      separators=(",", ":"), sort_keys=True)
