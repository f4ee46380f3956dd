"""The Bugzilla backend (Bugzilla 5.0 REST API, ``/rest/...``, through plain ``requests``).

Why not python-bugzilla: its constructor already calls ``/rest/version``, it has no call for
``/rest/time`` (the database clock the cursor needs) nor for the full ``/rest/field/bug``
definitions without its private backend, its only timeout knob is a process-wide environment
variable, and it wraps search results in ``Bug`` objects we would only unwrap. What it would
add (``api_key`` as a parameter, the ``{"error": true}`` body, the key scrubbed from messages)
is done here in a few lines and tested.

Reading
    ``fetch_changed`` asks ``GET /rest/time`` for the database clock (``db_time``, the clock
    that stamps ``last_change_time``), then lists ``GET /rest/bug`` with the configured
    products (and components), ``last_change_time=T`` (inclusive, UTC ``Z``),
    ``order=changeddate,bug_id``, ``limit`` and ``include_fields``. Pages are keyset
    restarts: each page starts again at the previous page's newest ``last_change_time``
    (never a growing offset, which skips a bug when one ahead of it is edited during the scan);
    a page that lies entirely inside one second continues with the advanced-search clause
    ``f1=bug_id&o1=greaterthan&v1=N``. ``T`` is the cursor's watermark minus an overlap window;
    pairs ``(id, last_change_time)`` already returned are skipped. The new watermark is the
    ``db_time`` read before the scan. Each changed bug then costs two requests:
    ``/rest/bug/N/history`` and ``/rest/bug/N/comment``.

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
                                  events, comments after the description -> comment events
                                  (``is_private`` -> ``public: false``)
    ============================  ==========================================================

    Bugzilla joins two changes of one field by one user within one second into one history
    change, separating the values with a space (``"NEW CONFIRMED"`` -> ``"CONFIRMED
    IN_PROGRESS"``); such a change is split back into its steps using the field's legal
    values.

Writing (``apply``)
    An empty diff makes no request. Otherwise the bug is re-read (and its comments, when the
    diff has notes) and one ``PUT /rest/bug/N`` carries only what differs: ``keywords:
    {add, remove}`` (never ``set``: a person's keywords are never rewritten) or the whole
    whiteboard with only the bridge's words changed, the deadline fields whose instant differs,
    and at most one note as ``comment``. ``Bug.update`` takes one comment per call, so each
    further note is its own update, sent only after re-reading the comments for its marker.
    A field Bugzilla accepted without changing (absent from the answer's ``changes``) is read
    back, and reported as a rejected write if it did not stick.

Errors
    The body ``{"error": true, "code": N, "message": ...}`` decides, not the HTTP status alone:
    codes 300-307 and 410 raise ``BackendAuthError``; on one bug, 100/101 (and 102, "not
    visible to you") raise ``TicketNotFound``, and any other refusal ``TicketWriteRejected``;
    5xx, 429, timeouts and refused connections raise ``BackendUnavailable``. The API key is
    sent as the ``api_key`` parameter (Bugzilla 5.0 reads no header; with only the header
    5.2 silently serves an anonymous user) and is scrubbed from every message and from
    urllib3's debug log, which prints request URLs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import requests
from pydantic import Field, field_validator

from ..backend import Backend, Diff, FetchResult, Problem, note_marker
from ..config import iana_zone
from ..core.ticket import HistoryEvent, Ticket
from ..core.verdict import NOTE_MARKER_RE
from ..errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from ..hookspecs import hookimpl
from ._http import HttpOptions, parse_utc, read_seen_cursor, utc_literal
from ._http import retry_after as _retry_after

log = logging.getLogger(__name__)

CURSOR_VERSION = 1
#: the lower bound of the first scan: Bugzilla refuses a search without any criterion
#: (``buglist_parameters_required``) when no product is configured
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: a pair (id, last_change_time) is skipped by the next poll only if it was stamped this long
#: before the database clock at the start of the scan: a second edit within the same second
#: (or one whose transaction started in that second and committed late) gets the same stamp
SETTLE = timedelta(seconds=5)

#: Bugzilla's error codes that mean "who you are" failed (WebService/Constants.pm, 5.0)
AUTH_CODES = frozenset({300, 301, 302, 303, 305, 306, 307, 410})
#: codes that mean "no such bug" or "not one you may see"
MISSING_CODES = frozenset({100, 101, 102})

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
LABEL_TARGETS = ("keywords", "whiteboard")
#: Bugzilla's placeholder for "no value" in drop-down fields and the target milestone
NO_VALUE = "---"


class BugzillaOptions(HttpOptions):
    """``options:`` of a Bugzilla tracker (all optional)."""

    overlap_seconds: int = Field(
        60, ge=2, le=86400,
        description="how far before the watermark each poll starts again (transaction "
                    "commit lag, clock steps); repeats are filtered out")
    page_size: int = Field(
        100, ge=2, le=10000,
        description="bugs per search request; keep it at or below the server's "
                    "max_search_results (10000 by default): Bugzilla silently returns fewer")
    components: list[str] = Field(
        default_factory=list, description="only bugs in these components of the products")
    rest_path: str = Field("rest", description="'rest', or 'rest.cgi' when the server does "
                                               "not rewrite /rest/ URLs")
    private_notes: bool = Field(
        False, description="post the bridge's notes as private comments (the API user must "
                           "be in the insider group)")
    server_timezone: str = Field(
        "UTC", description="the zone Bugzilla's server runs in: a date/time custom field is "
                           "written as local 'YYYY-MM-DD HH:MM:SS' text in that zone")

    @field_validator("server_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return iana_zone(v, "Europe/Berlin")

    @field_validator("rest_path")
    @classmethod
    def _path(cls, v: str) -> str:
        v = v.strip("/")
        if v not in ("rest", "rest.cgi"):
            msg = "use 'rest' or 'rest.cgi'"
            raise ValueError(msg)
        return v


# -- the HTTP client ------------------------------------------------------------------------------


class _RedactKey(logging.Filter):
    """Masks ``api_key=...`` in log records: urllib3 logs every request URL at DEBUG level."""

    _re = re.compile(r"((?:Bugzilla_)?api_key=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._scrub(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._scrub(v) for k, v in record.args.items()}
        record.msg = self._scrub(record.msg)
        return True

    def _scrub(self, value: Any) -> Any:
        return self._re.sub(r"\1***", value) if isinstance(value, str) else value


def _install_log_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactKey) for f in target.filters):
        target.addFilter(_RedactKey())


@dataclass
class BugzillaError(Exception):
    """Bugzilla's ``{"error": true}`` answer (or an HTTP failure without one)."""

    status: int
    code: int | None
    message: str
    retry_after: float | None = None


class BugzillaClient:
    """The REST calls the backend makes, with the key as a parameter and errors decoded.

    Raises :class:`BugzillaError` for an answer Bugzilla refused and the ``requests``
    exceptions for transport failures; :class:`BugzillaBackend` turns both into
    ``tracker_bridge.errors`` types (it knows which bug a call was about).
    """

    def __init__(self, base_url: str, api_key: str | None, *, rest_path: str = "rest",
                 timeout: float = 30, verify: bool = True,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.rest_url = f"{self.base_url}/{rest_path}"
        self._key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.verify = verify
        self.session.headers.update({"Accept": "application/json"})
        _install_log_redaction()

    def scrub(self, text: str) -> str:
        """``text`` without the API key (a message may quote a URL)."""
        return text.replace(self._key, "***") if self._key else text

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        query: dict[str, Any] = dict(params or {})
        if self._key:
            # Bugzilla 5.0 reads the key only from a parameter; 5.1+ also from a header, but
            # a 5.2 seen here answered header-only requests as the anonymous user
            query["api_key"] = self._key
        response = self.session.request(method, f"{self.rest_url}/{path.lstrip('/')}",
                                        params=query, json=body, timeout=self.timeout)
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("error"):
            raise BugzillaError(response.status_code, _int(data.get("code")),
                                self.scrub(str(data.get("message") or "").strip()),
                                _retry_after(response.headers))
        if response.status_code >= 400 or not isinstance(data, dict):
            what = f"HTTP {response.status_code}" if response.status_code >= 400 else \
                f"HTTP {response.status_code} with a body that is not a JSON object"
            raise BugzillaError(response.status_code, None, what, _retry_after(response.headers))
        return data

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params)

    def put(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, None, body)

    def close(self) -> None:
        self.session.close()


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


# -- time ---------------------------------------------------------------------------------------


# -- pure mapping -------------------------------------------------------------------------------


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
    deadlines: Mapping[str, str]                    # response_due/resolution_due -> cf name
    labels: str | None                              # "keywords" | "whiteboard" | None
    write_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    field_info: Mapping[str, FieldInfo] = field(default_factory=dict)  # by API name
    project_plans: Mapping[str, str] = field(default_factory=dict)  # product -> plan
    plan: str | None = None                         # the plan of any other product


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


def _same_deadline(current: Any, want: str | None) -> bool:
    """Whether a deadline field already holds ``want`` (the same instant in any form counts:
    Bugzilla gives date/time fields back in UTC)."""
    have = field_text(current)
    if have is None or want is None:
        return have is None and want is None
    if have == want:
        return True
    try:
        a = datetime.fromisoformat(have.strip().replace("Z", "+00:00"))
        b = datetime.fromisoformat(want)
    except ValueError:
        return False
    return a.tzinfo is not None and b.tzinfo is not None and a == b


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
            if name == "status":
                # split by the legal statuses; without their definitions, by words
                for old, new in split_merged(removed, added, status_values or
                                             _words_of(removed, added)):
                    if new:
                        events.append(HistoryEvent(at=at, kind="status", by=by, from_=old,
                                                   to=new))
            elif name in tracked:
                info = spec.field_info.get(name)
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


def _words_of(*texts: str) -> list[str]:
    """Status values when the field definitions are unknown: words (Bugzilla refuses
    spaces in status names)."""
    return sorted({w for t in texts for w in t.split()})


# -- cursor -------------------------------------------------------------------------------------


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, dict[int, str]]:
    """``(watermark, {bug id: last_change_time already returned})``; garbage: start over."""
    return read_seen_cursor(cursor, CURSOR_VERSION, what="Bugzilla")



def _make_cursor(since: datetime, listed: Mapping[int, str], overlap: timedelta) -> str:
    """The watermark (the database clock before the scan) and the settled pairs inside the
    next poll's overlap window (see :data:`SETTLE`)."""
    floor, settled = since - overlap, since - SETTLE
    seen = {str(i): ts for i, ts in sorted(listed.items()) if floor <= parse_utc(ts) <= settled}
    return json.dumps({"v": CURSOR_VERSION, "since": utc_literal(since), "seen": seen},
                      separators=(",", ":"), sort_keys=True)


# -- the backend --------------------------------------------------------------------------------


class BugzillaBackend(Backend):
    """A Bugzilla 5.x tracker: keyset polling, activity as history, add/remove writes."""

    name: ClassVar[str] = "bugzilla"
    config_model: ClassVar[type | None] = BugzillaOptions

    def __init__(self, tracker: Any, session: requests.Session | None = None) -> None:
        super().__init__(tracker)
        opts: BugzillaOptions = self.options
        self.opts: BugzillaOptions = opts
        if not tracker.url:
            raise BackendError(tracker.name, "no url: configured for this Bugzilla tracker")
        self.base_url: str = str(tracker.url).rstrip("/")
        key = self.secret.get_secret_value() if self.secret is not None else None
        self.client = BugzillaClient(self.base_url, key, rest_path=opts.rest_path,
                                     timeout=opts.timeout_seconds, verify=opts.verify_tls,
                                     session=session)
        self._has_key = bool(key)
        self._server_zone = ZoneInfo(opts.server_timezone)
        self._fields: dict[str, dict[str, Any]] | None = None   # internal name -> definition
        self._fields_refreshed = False
        # (bug's product, field) pairs whose date/time write was read back and matched: a
        # server zone other than server_timezone would otherwise rewrite the field forever
        self._datetime_verified: set[str] = set()

    # -- the Backend contract --------------------------------------------------------------

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        self._need_key()
        self._fields_refreshed = False
        since, seen = _parse_cursor(cursor)
        overlap = timedelta(seconds=self.opts.overlap_seconds)
        with self._errors(None, "reading the server time (/rest/time)"):
            db_now = parse_utc(self.client.get("time")["db_time"])
        lower = EPOCH if since is None else max(EPOCH, since - overlap)
        listed: dict[int, dict[str, Any]] = {}
        for bug in self._scan(lower):
            bid, ts = int(bug["id"]), str(bug["last_change_time"])
            if bid not in listed or parse_utc(ts) >= parse_utc(listed[bid]["last_change_time"]):
                listed[bid] = bug
        spec = self._spec()
        tickets: list[Ticket] = []
        changed = sorted((parse_utc(b["last_change_time"]), bid) for bid, b in listed.items()
                         if seen.get(bid) != b["last_change_time"])
        for _, bid in changed:
            try:
                history, comments = self._history_and_comments(bid)
            except TicketNotFound:
                log.info("%s: bug %s vanished while polling (deleted or made private)",
                         self.tracker.name, bid)
                continue
            tickets.append(map_bug(listed[bid], history, comments, spec))
        stamps = {bid: str(b["last_change_time"]) for bid, b in listed.items()}
        return FetchResult(tickets, _make_cursor(db_now, stamps, overlap))

    def fetch_ticket(self, key: str) -> Ticket:
        self._need_key()
        bid = self._bug_id(key)
        bug = self._get_bug(bid)
        history, comments = self._history_and_comments(bid)
        return map_bug(bug, history, comments, self._spec())

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # not even a read
        self._need_key()
        key = diff.key
        bid = self._bug_id(key)
        write = self.tracker.write
        bug = self._get_bug(bid)
        body: dict[str, Any] = {}

        if write.labels and (diff.add_labels or diff.remove_labels):
            body.update(self._label_changes(bug, diff, write.labels, key))

        sent_fields: dict[str, tuple[str | None, str]] = {}  # cf -> (wanted text, sent value)
        for norm, value in diff.set_fields.items():
            target = getattr(write, norm, None) if norm in ("response_due", "resolution_due") \
                else None
            if not target:
                log.debug("%s: %s is not written to this tracker", self.tracker.name, norm)
                continue
            info = self._field_info(target)
            if info is None:
                raise TicketWriteRejected(self.tracker.name, key, f"Bugzilla has no field "
                                          f"{target!r} (run tracker-bridge check)")
            want = value if value not in (None, "") else None
            if not _same_deadline(bug.get(target), want):
                sent = self._deadline_value(want, info, key)
                body[target] = sent
                sent_fields[target] = (want, sent)

        notes = list(diff.notes) if write.notes else []
        posted: set[str] = set()
        if notes:
            posted = self._posted_markers(bid)
            notes = [n for n in notes if note_marker(n.key) not in posted]
        if notes:
            body["comment"] = self._comment(notes.pop(0))

        if body:
            answer = self._put(bid, body, key)
            if sent_fields:
                self._verify_fields(bid, bug, answer, sent_fields, key)

        for note in notes:
            # Bug.update takes one comment per call; re-read first, so that a note another
            # run (or a lost answer) already posted is not posted twice
            if note_marker(note.key) in self._posted_markers(bid):
                continue
            self._put(bid, {"comment": self._comment(note)}, key)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        self._need_key()
        t = self.tracker
        problems: list[Problem] = []

        with self._errors(None, "reading /rest/parameters"):
            params = self.client.get("parameters").get("parameters") or {}
        if set(params) <= {"maintainer", "requirelogin"}:
            problems.append(Problem(
                "credentials", "Bugzilla answered as the anonymous user: the API key was not "
                "taken. Bugzilla 5.0 reads it only from the api_key parameter (the bridge "
                "sends it so); a proxy dropping query parameters would cause this"))
            return problems  # everything below would only repeat it

        products: list[dict[str, Any]] = []
        if t.projects:
            with self._errors(None, "reading /rest/product"):
                products = list(self.client.get(
                    "product", names=list(t.projects),
                    include_fields="name,components.name").get("products") or ())
            have = {str(p.get("name")) for p in products}
            for name in t.projects:
                if name not in have:
                    problems.append(Problem("projects", f"Bugzilla has no product {name!r}, "
                                            "or the API user cannot see it"))
        for comp in self.opts.components:
            if products and not any(comp == c.get("name") for p in products
                                    for c in p.get("components") or ()):
                problems.append(Problem("options.components", f"no configured product has "
                                        f"a component {comp!r}"))

        defs = self._field_defs(refresh=True)
        status_names = {v["name"] for v in defs.get("bug_status", {}).get("values") or ()}
        for group, names in t.statuses.items():
            for n in names:
                if n not in status_names:
                    problems.append(Problem(
                        f"statuses.{group}", f"Bugzilla has no status {n!r} (it has: "
                        f"{', '.join(sorted(status_names))})"))
        for norm, target in t.fields.items():
            if self._field_info(target) is None:
                problems.append(Problem(f"fields.{norm}", f"Bugzilla has no bug field "
                                        f"{target!r} (use API names: priority, severity, "
                                        "component, version, cf_..., as in /rest/bug)"))

        w = t.write
        for norm in ("response_due", "resolution_due"):
            target = getattr(w, norm)
            if not target:
                continue
            info = self._field_info(target)
            if not target.startswith("cf_"):
                problems.append(Problem(f"write.{norm}", f"{target!r}: deadlines are written "
                                        "to a custom field (cf_...): Bugzilla's own deadline "
                                        "field holds a date without a time"))
            elif info is None:
                problems.append(Problem(f"write.{norm}", f"Bugzilla has no custom field "
                                        f"{target!r}"))
            elif info.type not in DEADLINE_TYPES:
                problems.append(Problem(
                    f"write.{norm}", f"custom field {target!r} has type {info.type}; deadlines "
                    "need a free text (1), large text (4) or date/time (5) field"))
        if w.labels is not None and w.labels not in LABEL_TARGETS:
            problems.append(Problem("write.labels", f"{w.labels!r}: Bugzilla labels are "
                                    "'keywords' or 'whiteboard'"))
        elif w.labels == "keywords":
            have_kw = {str(v.get("name")) for v in defs.get("keywords", {}).get("values") or ()}
            missing = tuple(sorted({str(x) for x in labels} - have_kw))
            if missing:
                problems.append(Problem(
                    "write.labels", f"Bugzilla lacks {len(missing)} keyword(s) the policy can "
                    "write; an administrator creates them (Administration > Keywords): "
                    + ", ".join(missing), missing_values=missing))
        elif w.labels == "whiteboard" and str(params.get("usestatuswhiteboard", "1")) == "0":
            problems.append(Problem("write.labels", "the status whiteboard is switched off "
                                    "(parameter usestatuswhiteboard)"))
        if w.notes not in (None, "comment"):
            problems.append(Problem("write.notes", f"{w.notes!r}: Bugzilla notes can only be "
                                    "written as 'comment'"))
        if any((w.labels, w.response_due, w.resolution_due, w.notes)):
            problems.extend(self._check_write())
        return problems

    def close(self) -> None:
        self.client.close()

    # -- reading ---------------------------------------------------------------------------

    def _need_key(self) -> None:
        if not self._has_key:
            raise BackendAuthError(self.tracker.name, "no credentials: configured (give "
                                   "credentials: {env: NAME} with the API key)")

    def _bug_id(self, key: str) -> int:
        if not str(key).isdigit():
            raise TicketNotFound(self.tracker.name, str(key), "a Bugzilla key is a bug number")
        return int(key)

    def _include_fields(self) -> str:
        names = list(BASE_FIELDS)
        w = self.tracker.write
        extra = [*self.tracker.fields.values(), w.response_due, w.resolution_due]
        if w.labels in LABEL_TARGETS:
            extra.append(w.labels)
        for n in extra:
            if n and n not in names:
                names.append(n)
        return ",".join(names)

    def _search_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"order": "changeddate,bug_id", "limit": self.opts.page_size,
                                  "include_fields": self._include_fields()}
        if self.tracker.projects:
            params["product"] = list(self.tracker.projects)
        if self.opts.components:
            params["component"] = list(self.opts.components)
        return params

    def _list(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._errors(None, "searching bugs"):
            return list(self.client.get("bug", **params).get("bugs") or ())

    def _scan(self, lower: datetime) -> Iterator[dict[str, Any]]:
        """Every bug with ``last_change_time >= lower``, by keyset on (time, id)."""
        base = self._search_params()
        limit = self.opts.page_size
        t = lower
        while True:
            page = self._list(dict(base, last_change_time=utc_literal(t)))
            yield from page
            if len(page) < limit:
                return
            first = parse_utc(page[0]["last_change_time"])
            last = parse_utc(page[-1]["last_change_time"])
            if first == last:
                yield from self._scan_second(base, last, int(page[-1]["id"]))
                t = last + timedelta(seconds=1)
            elif last <= t:
                # cannot happen when Bugzilla honours the order; never loop forever on it
                raise BackendError(self.tracker.name, "Bugzilla did not sort bugs by "
                                   "last_change_time; cannot page safely")
            else:
                t = last  # restart inclusive: bugs sharing `last` are listed again (deduped)

    def _scan_second(self, base: Mapping[str, Any], second: datetime,
                     after_id: int) -> Iterator[dict[str, Any]]:
        """The bugs stamped exactly ``second`` with an id above ``after_id``, by id keyset."""
        limit = self.opts.page_size
        while True:
            page = self._list(dict(base, last_change_time=utc_literal(second),
                                   f1="bug_id", o1="greaterthan", v1=after_id))
            same = [b for b in page if parse_utc(b["last_change_time"]) == second]
            if any(int(b["id"]) <= after_id for b in page):
                raise BackendError(self.tracker.name, "Bugzilla ignored the bug_id search "
                                   "clause (f1/o1/v1); cannot page through one second")
            yield from same
            if len(page) < limit or len(same) < len(page):
                return
            after_id = int(page[-1]["id"])

    def _get_bug(self, bid: int) -> dict[str, Any]:
        with self._errors(bid, f"reading bug {bid}"):
            bugs = self.client.get(f"bug/{bid}", include_fields=self._include_fields())
        found = [b for b in bugs.get("bugs") or () if int(b.get("id", -1)) == bid]
        if not found:
            raise TicketNotFound(self.tracker.name, str(bid))
        return found[0]

    def _history_and_comments(self, bid: int
                              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self._errors(bid, f"reading the history of bug {bid}"):
            hist = self.client.get(f"bug/{bid}/history")
        history: list[dict[str, Any]] = []
        for b in hist.get("bugs") or ():
            if int(b.get("id", bid)) == bid:
                history.extend(b.get("history") or ())
        return history, self._comments(bid)

    def _comments(self, bid: int) -> list[dict[str, Any]]:
        with self._errors(bid, f"reading the comments of bug {bid}"):
            data = self.client.get(f"bug/{bid}/comment")
        entry = (data.get("bugs") or {}).get(str(bid)) or {}
        return list(entry.get("comments") or ())

    def _posted_markers(self, bid: int) -> set[str]:
        found: set[str] = set()
        for c in self._comments(bid):
            found.update(note_marker(k) for k in NOTE_MARKER_RE.findall(str(c.get("text") or "")))
        return found

    def _field_defs(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._fields is None or refresh:
            with self._errors(None, "reading the bug fields (/rest/field/bug)"):
                data = self.client.get("field/bug")
            self._fields = {str(f["name"]): f for f in data.get("fields") or ()}
        return self._fields

    def _field_info(self, api_name: str) -> FieldInfo | None:
        defs = self._field_defs()
        internal = INTERNAL_NAMES.get(api_name, api_name)
        d = defs.get(internal) or defs.get(api_name)
        if d is None and not self._fields_refreshed:
            # a custom field created since we cached them: look once per poll
            self._fields_refreshed = True
            defs = self._field_defs(refresh=True)
            d = defs.get(internal) or defs.get(api_name)
        if d is None:
            return None
        return FieldInfo(name=api_name, type=int(d.get("type") or 0),
                         values=tuple(str(v["name"]) for v in d.get("values") or ()
                                      if v.get("name") is not None),
                         is_custom=bool(d.get("is_custom")))

    def _spec(self) -> MappingSpec:
        t = self.tracker
        deadlines = {n: getattr(t.write, n) for n in ("response_due", "resolution_due")
                     if getattr(t.write, n)}
        info: dict[str, FieldInfo] = {}
        for name in {"status", *t.fields.values(), *deadlines.values()}:
            fi = self._field_info(name)
            if fi is not None:
                info[name] = fi
        return MappingSpec(tracker=t.name, base_url=self.base_url, fields=dict(t.fields),
                           deadlines=deadlines,
                           labels=t.write.labels if t.write.labels in LABEL_TARGETS else None,
                           write_zone=t.write.zone, field_info=info,
                           project_plans=dict(t.project_plans), plan=t.plan)

    # -- writing ---------------------------------------------------------------------------

    def _label_changes(self, bug: Mapping[str, Any], diff: Diff, target: str,
                       key: str) -> dict[str, Any]:
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
        raise TicketWriteRejected(self.tracker.name, key, f"write.labels {target!r} is not "
                                  "'keywords' or 'whiteboard'")

    def _deadline_value(self, want: str | None, info: FieldInfo, key: str) -> str:
        if want is None:
            return ""  # Bugzilla clears a text field and a date/time field with ""
        if info.type != TYPE_DATETIME:
            return want
        try:
            instant = datetime.fromisoformat(want)
        except ValueError:
            raise TicketWriteRejected(self.tracker.name, key, f"{want!r} is not a date and "
                                      f"time for the date/time field {info.name!r}") from None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        # Bug.update takes a date/time custom field as local text, in the server's zone
        return instant.astimezone(self._server_zone).strftime("%Y-%m-%d %H:%M:%S")

    def _comment(self, note: Any) -> dict[str, Any]:
        return {"body": f"{note.text.rstrip()}\n\n{note_marker(note.key)}",
                "is_private": self.opts.private_notes}

    def _put(self, bid: int, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        with self._errors(bid, f"writing bug {key}", write=True):
            return self.client.put(f"bug/{bid}", {"ids": [bid], **body})

    def _verify_fields(self, bid: int, before: Mapping[str, Any], answer: Mapping[str, Any],
                       sent: Mapping[str, tuple[str | None, str]], key: str) -> None:
        """Read back a field Bugzilla did not report as changed, and each date/time field once
        per product (its zone is only seen by reading it back)."""
        changes: Mapping[str, Any] = {}
        for b in answer.get("bugs") or ():
            if int(b.get("id", bid)) == bid:
                changes = b.get("changes") or {}
        doubtful = []
        for target in sent:
            info = self._field_info(target)
            tag = f"{before.get('product')}/{target}"
            if target not in changes or (info is not None and info.type == TYPE_DATETIME
                                         and tag not in self._datetime_verified):
                doubtful.append(target)
        if not doubtful:
            return
        after = self._get_bug(bid)
        for target in doubtful:
            want, value = sent[target]
            info = self._field_info(target)
            if info is None or not _same_deadline(after.get(target), want):
                hint = (f"; if the server does not run in {self.opts.server_timezone}, set "
                        "options.server_timezone") if info and info.type == TYPE_DATETIME \
                    else ""
                raise TicketWriteRejected(
                    self.tracker.name, key,
                    f"Bugzilla accepted {target}={value!r} but the bug shows "
                    f"{after.get(target)!r}{hint}")
            if info.type == TYPE_DATETIME:
                self._datetime_verified.add(f"{before.get('product')}/{target}")

    def _check_write(self) -> list[Problem]:
        """A write that changes nothing, on one bug in scope: proves the key may edit bugs.

        ``Bug.update`` with only ``ids`` needs a logged-in user who may edit the bug, and
        changes nothing (``last_change_time`` stays, no mail, no history).
        """
        params = dict(self._search_params(), limit=1, include_fields="id",
                      last_change_time=utc_literal(EPOCH))
        page = self._list(params)
        if not page:
            log.info("%s: no bug in scope; the write permission was not tried",
                     self.tracker.name)
            return []
        bid = int(page[0]["id"])
        try:
            with self._errors(bid, f"a no-op update of bug {bid}", write=True):
                self.client.put(f"bug/{bid}", {"ids": [bid]})
        except (BackendAuthError, TicketWriteRejected, TicketNotFound) as e:
            return [Problem("credentials", f"the API user cannot edit bug {bid}: {e}. The "
                            "bridge sends the key as the api_key parameter, which every "
                            "Bugzilla 5.x reads")]
        return []

    # -- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, bid: int | None, doing: str, write: bool = False) -> Iterator[None]:
        """Turn a Bugzilla refusal or a transport failure into tracker_bridge.errors."""
        name = self.tracker.name
        try:
            yield
        except BugzillaError as e:
            what = f"{doing}: Bugzilla error {e.code}: {e.message}" if e.code is not None \
                else f"{doing}: {e.message}"
            what = self.client.scrub(what)
            if e.status == 429 or e.status >= 500:
                raise BackendUnavailable(name, what, retry_after=e.retry_after) from None
            if e.code in AUTH_CODES or (e.status == 401 and bid is None):
                raise BackendAuthError(name, f"{what} (check the API key and that the "
                                       "user may use the REST API)") from None
            if bid is not None and e.code in MISSING_CODES:
                raise TicketNotFound(name, str(bid), e.message or "no such bug") from None
            if bid is not None and e.code is None and e.status == 404:
                raise TicketNotFound(name, str(bid), "no such bug (HTTP 404)") from None
            if bid is not None and write:
                raise TicketWriteRejected(name, str(bid), self.client.scrub(
                    f"Bugzilla refused the write (error {e.code}): {e.message}")) from None
            raise BackendError(name, what) from None
        except requests.Timeout:
            raise BackendUnavailable(name, f"{doing}: timed out after "
                                     f"{self.opts.timeout_seconds:g} s") from None
        except requests.ConnectionError:
            raise BackendUnavailable(name, f"{doing}: cannot connect to {self.base_url}") \
                from None
        except requests.RequestException as e:
            raise BackendError(name, f"{doing}: {type(e).__name__}") from None


def edit_whiteboard(text: str, add: Iterable[str], remove: Iterable[str]) -> str:
    """The whiteboard with only the bridge's words changed; other text keeps its form."""
    out = text
    for word in sorted(set(remove)):
        pat = re.escape(word)
        # the word with the blank before it; at the very start, with the blank after it
        out = re.sub(rf"\s+{pat}(?=\s|$)", "", out)
        out = re.sub(rf"^{pat}(?:\s+|$)", "", out)
    present = set(out.split())
    new = [w for w in sorted(set(add)) if w not in present]
    if new:
        out = f"{out.rstrip()} {' '.join(new)}" if out.strip() else " ".join(new)
    return out


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    """Register the Bugzilla backend (``backend: bugzilla``)."""
    registry.add_backend(BugzillaBackend)
