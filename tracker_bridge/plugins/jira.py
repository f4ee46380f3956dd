"""The JIRA backend: Jira Cloud (REST v3) and Jira Data Center (REST v2), over plain requests.

Why not the pycontribs ``jira`` client: its ``ResilientSession`` retries every method,
POST included, on 429/503/connection errors, so a comment whose answer was lost would be
posted twice; it has no method for ``/issue/{key}/changelog``; and it re-reads the issue after
each update. Here every request is sent exactly once (a plain ``requests.Session`` with no
retrying adapter); retrying is the sync layer's job (``tracker_bridge.retry``), and it retries
a write only after re-fetching the ticket, whose comments carry the note markers.

Reading
    ``fetch_changed`` first reads ``GET /myself`` for the sync account's profile time zone (JQL
    date literals are minute-granular wall-clock times *in that zone*), then lists issues with
    ``project in (...) AND updated >= "yyyy/MM/dd HH:mm" ORDER BY updated ASC, key ASC``
    (Cloud: ``GET /rest/api/3/search/jql``, paged by ``nextPageToken`` until it is absent;
    Data Center: ``GET /rest/api/2/search`` by ``startAt``). The literal is
    ``floor_to_minute(W - overlap)`` in that zone, moved back further when a DST fold makes it
    ambiguous. Repeats are dropped on ``(id, updated)``. The cursor holds only JIRA's own
    ``updated`` values. Each changed issue is then read by key: ``GET /issue/{key}`` (Data
    Center: with ``expand=changelog``), ``GET /issue/{key}/changelog`` (Cloud, paged, oldest
    first) and ``GET /issue/{key}/comment`` (paged).

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
                                  -> field events; comments -> comment events, ``public``
                                  false when the comment has a ``visibility`` or is a Jira
                                  Service Management internal note (``sd.public.comment``)
    ============================  ==========================================================

Writing (``apply``)
    An empty diff makes no request. Otherwise the issue's deadline and labels fields are read,
    and one ``PUT /issue/{key}`` carries the deadline fields whose value differs (``fields``)
    and the label changes as ``update.labels`` ``add``/``remove`` operations, never a
    replacement of the set (a person's labels, even one added a moment ago, are untouched).
    Nothing is sent when nothing differs. Notes are comments (ADF on v3, wiki text on v2)
    ending with ``note_marker(key)``; the comments are read first and a note whose marker is
    already there is not posted again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from pydantic import BaseModel, ConfigDict, Field

from ..backend import Backend, Diff, FetchResult, Problem, note_marker
from ..core.ticket import HistoryEvent, Ticket
from ..errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from ..hookspecs import hookimpl
from ._http import HttpOptions, read_seen_cursor
from ._http import retry_after as _retry_after

log = logging.getLogger(__name__)

CF_PREFIX = "cf:"
CURSOR_VERSION = 1
#: the JQL date literal the searches use (minute resolution, no zone: the user's zone)
JQL_TIME_FORMAT = "%Y/%m/%d %H:%M"
#: what a JIRA datetime custom field accepts
JIRA_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.000%z"
#: every issue read asks for these fields (plus the mapped ones); never ``*all``
BASE_FIELDS = ("summary", "description", "status", "created", "updated", "reporter",
               "project")
COMMENT_PAGE = 100
CHANGELOG_PAGE = 100
#: the Jira Service Management comment property that marks internal notes
JSM_COMMENT_PROPERTY = "sd.public.comment"
#: custom field types that hold the bridge's deadline text, by ``schema.type``
DEADLINE_TYPES = ("string", "datetime")
LABELS_CUSTOM_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:labels"
TEXTAREA_CUSTOM_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:textarea"
DEADLINE_FIELDS = ("response_due", "resolution_due")
# the marker as JIRA wiki markup writes it literally (a bare [..] is a link there)
_ESCAPED_MARKER_RE = re.compile(r"\\\[(tracker-bridge:note=[A-Za-z0-9:._\-]+)\\\]")


class NoteVisibility(BaseModel):
    """Restrict the bridge's comments to a project role or a group (JIRA ``visibility``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["role", "group"] = Field(description="role or group")
    value: str = Field(min_length=1, description="the role's or the group's name")


class JiraOptions(HttpOptions):
    """``options:`` of a JIRA tracker (all optional)."""

    deployment: Literal["auto", "cloud", "datacenter"] = Field(
        "auto", description="cloud (REST v3, search/jql) or datacenter (REST v2, search); "
                            "auto asks /rest/api/2/serverInfo once")
    email: str | None = Field(
        None, description="Cloud: the account's e-mail; the credential is then its API "
                          "token, sent as HTTP Basic. Without it the credential is sent as "
                          "a Bearer token (a Data Center personal access token)")
    overlap_seconds: int = Field(
        300, ge=60, le=86400,
        description="how far before the watermark each poll starts again: at least the "
                    "JQL minute, plus search-index lag; repeats are filtered out")
    page_size: int = Field(100, ge=1, le=1000, description="issues per search page")
    notify_users: bool = Field(
        True, description="false sends notifyUsers=false with each edit (needs the "
                          "Administer Projects permission, else JIRA refuses the edit)")
    note_visibility: NoteVisibility | None = Field(
        None, description="post the bridge's notes visible to this role or group only")
    internal_notes: bool = Field(
        False, description="Jira Service Management: post the notes as internal notes "
                           "(comment property sd.public.comment), not shared with customers")


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


# -- Atlassian Document Format -------------------------------------------------------------------

_BLOCKS = {"doc", "paragraph", "heading", "blockquote", "codeBlock", "bulletList",
           "orderedList", "listItem", "panel", "table", "tableRow", "tableHeader",
           "tableCell", "rule", "mediaSingle", "mediaGroup", "expand", "nestedExpand",
           "decisionList", "decisionItem", "taskList", "taskItem"}


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF document: blocks separated by blank lines, hard breaks kept."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping):
        return ""

    def inline(n: Mapping[str, Any]) -> str:
        t = n.get("type")
        if t == "text":
            return str(n.get("text") or "")
        if t == "hardBreak":
            return "\n"
        attrs = n.get("attrs") or {}
        if t in ("mention", "emoji", "status", "date"):
            return str(attrs.get("text") or attrs.get("shortName") or attrs.get("timestamp")
                       or "")
        if t in ("inlineCard", "blockCard", "embedCard"):
            return str(attrs.get("url") or "")
        return "".join(inline(c) for c in n.get("content") or () if isinstance(c, Mapping))

    def blocks(n: Mapping[str, Any]) -> list[str]:
        content = [c for c in n.get("content") or () if isinstance(c, Mapping)]
        if not any(c.get("type") in _BLOCKS for c in content):
            text = inline(n)
            return [text] if text else []
        out: list[str] = []
        for c in content:
            if c.get("type") in _BLOCKS:
                sub = blocks(c)
                if c.get("type") == "listItem":
                    sub = ["- " + "\n".join(sub)] if sub else []
                out.extend(sub)
            else:
                text = inline(c)
                if text:
                    out.append(text)
        if n.get("type") in ("bulletList", "orderedList"):
            return ["\n".join(out)] if out else []
        return out

    return "\n\n".join(blocks(node))


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: a paragraph per blank-line block, hard breaks for lines."""
    paragraphs: list[dict[str, Any]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if not block.strip():
            continue
        content: list[dict[str, Any]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


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


def _error_text(resp: requests.Response) -> str:
    """JIRA's ``ErrorCollection`` as one line (never the request, which has the token)."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip()[:300]
    if not isinstance(body, Mapping):
        return str(body)[:300]
    parts = [str(m) for m in body.get("errorMessages") or ()]
    parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
    if not parts and body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(parts)[:500]


class JiraBackend(Backend):
    """A Jira Cloud or Data Center tracker: JQL polling in the user's zone, set operations."""

    name: ClassVar[str] = "jira"
    config_model: ClassVar[type | None] = JiraOptions

    def __init__(self, tracker: Any) -> None:
        super().__init__(tracker)
        opts: JiraOptions = self.options
        self.opts: JiraOptions = opts
        if not tracker.url:
            raise BackendError(tracker.name, "no url: configured for this JIRA tracker")
        self.base_url: str = str(tracker.url).rstrip("/")
        #: the HTTP session; no retrying adapter, so a POST is sent exactly once
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        self.session.verify = opts.verify_tls
        if self.secret is not None:
            token = self.secret.get_secret_value()
            if opts.email:
                self.session.auth = (opts.email, token)
            else:
                self.session.headers["Authorization"] = f"Bearer {token}"
        self._cloud: bool | None = {"cloud": True, "datacenter": False}.get(opts.deployment)
        self._connected = False
        self._zone: ZoneInfo | None = None
        self._fields: list[FieldDef] | None = None
        self._fields_refreshed: set[str] = set()

    @property
    def api(self) -> str:
        """``/rest/api/3`` on Cloud (ADF bodies), ``/rest/api/2`` on Data Center."""
        return "/rest/api/3" if self._cloud else "/rest/api/2"

    # -- the Backend contract --------------------------------------------------------------------

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        self._connect()
        # read every poll: the account's zone decides what the literal means, and an admin
        # may change it (the advice is UTC) while the bridge runs
        zone = self._search_zone()
        self._fields_refreshed.clear()
        since, seen = _parse_cursor(cursor)
        overlap = timedelta(seconds=self.opts.overlap_seconds)
        literal = None if since is None else jql_literal(since - overlap, zone)
        listed, unstable = self._scan(self._jql(literal))

        def done(iid: str, updated: str) -> bool:
            before = seen.get(iid)
            return before is not None and parse_jira_time(updated) <= parse_jira_time(before)

        changed = sorted((parse_jira_time(u), k, i) for i, (k, u) in listed.items()
                         if not done(i, u))
        tickets: list[Ticket] = []
        #: (id, updated) returned now; the issue as read may be newer than the search's view
        returned = {i: u for i, (_, u) in listed.items()}
        for _, key, iid in changed:
            try:
                issue = self._get_issue(key)
                tickets.append(self._to_ticket(issue))
            except TicketNotFound:
                log.info("%s: issue %s vanished while polling (deleted, moved or hidden)",
                         self.tracker.name, key)
                continue
            upd = (issue.get("fields") or {}).get("updated")
            if upd:
                returned[iid] = max(upd, returned[iid], key=parse_jira_time)

        new_since = since
        if listed:
            newest = max(parse_jira_time(u) for _, u in listed.values())
            if unstable is not None:
                # an issue moved while we paged: an issue behind it may have shifted onto a
                # page already read; the next poll starts where that can have happened
                newest = min(newest, unstable)
            new_since = newest if new_since is None else max(new_since, newest)
        # the watermark comes from the search alone (index lag is what the overlap is for)
        return FetchResult(tickets, _make_cursor(new_since, seen, returned, overlap))

    def fetch_ticket(self, key: str) -> Ticket:
        self._connect()
        return self._to_ticket(self._get_issue(str(key)))

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # not even a read: an empty diff costs nothing
        self._connect()
        key = diff.key
        write = self.tracker.write
        deadlines: dict[str, tuple[FieldDef, str | None]] = {}
        for norm, value in diff.set_fields.items():
            target = getattr(write, norm, None) if norm in DEADLINE_FIELDS else None
            if not target:
                log.debug("%s: %s is not written to this tracker", self.tracker.name, norm)
                continue
            deadlines[norm] = (self._write_field(target, key, f"write.{norm}"), value)
        labels_def = None
        if (diff.add_labels or diff.remove_labels) and write.labels:
            labels_def = self._write_field(write.labels, key, "write.labels")

        if deadlines or labels_def is not None:
            wanted = [d.id for d, _ in deadlines.values()]
            if labels_def is not None:
                wanted.append(labels_def.id)
            current = self._get_json(f"/issue/{quote(key, safe='')}",
                                     {"fields": ",".join(dict.fromkeys(wanted))},
                                     key=key, doing=f"reading issue {key}").get("fields") or {}
            fields_body: dict[str, Any] = {}
            for _norm, (fdef, value) in deadlines.items():
                have = self._deadline_text(fdef, current.get(fdef.id))
                want = value if value not in (None, "") else None
                if not _same_value(fdef, have, want):
                    fields_body[fdef.id] = _deadline_value(fdef, want, key, self.tracker.name)
            ops: list[dict[str, str]] = []
            if labels_def is not None:
                have_labels = set(current.get(labels_def.id) or ())
                ops = [{"add": x} for x in sorted(set(diff.add_labels) - have_labels)]
                ops += [{"remove": x} for x in sorted(set(diff.remove_labels) & have_labels)]
            body: dict[str, Any] = {}
            if fields_body:
                body["fields"] = fields_body
            if ops and labels_def is not None:
                body["update"] = {labels_def.id: ops}
            if body:
                params = None if self.opts.notify_users else {"notifyUsers": "false"}
                self._request("PUT", f"/issue/{quote(key, safe='')}", params=params,
                              json_body=body, key=key, doing=f"writing issue {key}",
                              write=True)

        if diff.notes and write.notes:
            # read again right before posting: a note already there (its marker) is never
            # posted twice, whatever the store remembers
            posted = set()
            for c in self._comments(key):
                posted.update(_markers(self._comment_text(c)))
            for note in diff.notes:
                marker = note_marker(note.key)
                if marker in posted:
                    continue
                self._request("POST", f"/issue/{quote(key, safe='')}/comment",
                              json_body=self._comment_body(note.text, marker), key=key,
                              doing=f"posting note {note.key} on issue {key}", write=True)
                posted.add(marker)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        self._connect()
        t = self.tracker
        problems: list[Problem] = []
        try:
            zone = self._search_zone()
            if zone.key not in ("UTC", "Etc/UTC", "GMT", "Etc/GMT"):
                log.info("%s: the sync account's profile zone is %s (UTC avoids DST folds)",
                         t.name, zone.key)
        except BackendError as e:
            problems.append(Problem("account", str(e).split(": ", 1)[-1]))

        for p in t.projects:
            got = self._get_optional(f"/project/{quote(p, safe='')}", f"reading project {p}")
            if got is None:
                problems.append(Problem("projects", f"project {p!r} does not exist or the "
                                        "sync account cannot browse it"))

        statuses = {str(s.get("name")) for s in self._get_json("/status", None,
                                                                doing="reading /status")}
        for group, names in t.statuses.items():
            for n in names:
                if n not in statuses:
                    problems.append(Problem(
                        f"statuses.{group}",
                        f"JIRA has no status {n!r} (it has: {', '.join(sorted(statuses))})"))

        for norm, target in t.fields.items():
            _, err = self._resolve(target)
            if err:
                problems.append(Problem(f"fields.{norm}", err))

        w = t.write
        for norm in DEADLINE_FIELDS:
            target = getattr(w, norm)
            if not target:
                continue
            fdef, err = self._resolve(target)
            if err or fdef is None:
                problems.append(Problem(f"write.{norm}", err or "not found"))
            elif not fdef.custom or fdef.type not in DEADLINE_TYPES \
                    or fdef.custom_type == TEXTAREA_CUSTOM_TYPE:
                problems.append(Problem(
                    f"write.{norm}",
                    f"field {fdef.name!r} ({fdef.custom_type or fdef.type}) cannot hold a "
                    "deadline: use a custom field of type Short text (single line) or "
                    "Date Time Picker"))
        if w.labels:
            fdef, err = self._resolve(w.labels)
            if err or fdef is None:
                problems.append(Problem("write.labels", err or "not found"))
            elif not _is_labels_field(fdef):
                problems.append(Problem(
                    "write.labels", f"field {fdef.name!r} is not a labels field (use "
                    "labels, or a custom field of type Labels)"))
        # JIRA labels need no admin action: any value is accepted on first use; only
        # whitespace (labels are space-separated) and the length are refused
        bad = sorted(x for x in labels if not x or re.search(r"\s", x) or len(x) > 255)
        if w.labels and bad:
            problems.append(Problem("write.labels", "JIRA refuses labels with spaces or "
                                    "longer than 255 characters: " + ", ".join(map(repr, bad))))
        if w.notes not in (None, "comment"):
            problems.append(Problem("write.notes", f"{w.notes!r}: JIRA notes can only be "
                                    "written as 'comment'"))
        return problems

    def close(self) -> None:
        self.session.close()

    # -- HTTP ------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path if path.startswith('/rest/') else self.api + path}"

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 json_body: Any = None, key: str | None = None, doing: str,
                 write: bool = False, optional: bool = False) -> Any:
        """One HTTP request, never retried here; failures as tracker_bridge.errors types.

        ``key`` names the issue the request is about (404 is then ``TicketNotFound``, and a
        refused ``write`` is ``TicketWriteRejected``); ``optional`` returns None on 404.
        """
        name = self.tracker.name
        try:
            resp = self.session.request(method, self._url(path), params=params,
                                        json=json_body, timeout=self.opts.timeout_seconds)
        except requests.Timeout:
            raise BackendUnavailable(name, f"{doing}: timed out after "
                                     f"{self.opts.timeout_seconds:g} s") from None
        except requests.ConnectionError:
            raise BackendUnavailable(name, f"{doing}: cannot connect to {self.base_url}") \
                from None
        except requests.RequestException as e:
            raise BackendError(name, f"{doing}: {type(e).__name__}") from None
        status = resp.status_code
        if 200 <= status < 300:
            if status == 204 or not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise BackendUnavailable(name, f"{doing}: the answer is not JSON (HTTP "
                                         f"{status}); is the url a JIRA?") from None
        detail = _error_text(resp)
        suffix = f": {detail}" if detail else ""
        if status == 401:
            raise BackendAuthError(name, f"{doing}: JIRA refused the credentials (401); check "
                                   "the API token (and options.email on Cloud)")
        if status == 403:
            reason = resp.headers.get("X-Authentication-Denied-Reason")
            # a 403 on one issue is about that issue (a security level, another project's
            # permissions), not the credentials: suspending the tracker would stop every
            # other ticket. A denied login (Cloud's CAPTCHA lock) is the credentials.
            if key is not None and not reason and write:
                raise TicketWriteRejected(name, key, f"the sync account may not change this "
                                          f"issue (403){suffix}")
            if key is not None and not reason:
                raise TicketNotFound(name, key, f"not visible to the sync account (403)"
                                     f"{suffix}")
            raise BackendAuthError(name, f"{doing}: the sync account is not allowed (403)"
                                   + (f" ({reason})" if reason else "") + suffix)
        if status == 429 or status >= 500:
            raise BackendUnavailable(name, f"{doing}: HTTP {status}{suffix}",
                                     retry_after=_retry_after(resp.headers))
        if status == 404 and optional:
            return None
        if status == 404 and key is not None:
            raise TicketNotFound(name, key, f"no such issue, or the sync account cannot see "
                                 f"it (404){suffix}")
        if write and key is not None and status in (400, 409, 413, 422):
            what = {409: "a conflicting update (409)",
                    413: "too large, or the issue's comment limit is reached (413)"}
            raise TicketWriteRejected(name, key, f"JIRA refused the write: "
                                      f"{what.get(status, f'HTTP {status}')}{suffix}")
        raise BackendError(name, f"{doing}: HTTP {status}{suffix}")

    def _get_json(self, path: str, params: Mapping[str, Any] | None, *,
                  key: str | None = None, doing: str) -> Any:
        return self._request("GET", path, params=params, key=key, doing=doing)

    def _get_optional(self, path: str, doing: str) -> Any | None:
        """GET, or None on 404 (missing, or not visible to the account)."""
        return self._request("GET", path, doing=doing, optional=True)

    # -- connection and lookups ------------------------------------------------------------------

    def _connect(self) -> None:
        """Learn the deployment (once) and verify the credentials with ``/myself``."""
        if self._connected:
            return
        if self.secret is None:
            raise BackendAuthError(self.tracker.name, "no credentials: configured (give "
                                   "credentials: {env: NAME} with the API token)")
        if self._cloud is None:
            info = self._get_json("/rest/api/2/serverInfo", None,
                                  doing="reading /rest/api/2/serverInfo")
            self._cloud = str(info.get("deploymentType") or "").lower() == "cloud"
        self._myself()
        self._connected = True

    def _myself(self) -> Mapping[str, Any]:
        me = self._get_json("/myself", None, doing=f"reading {self.api}/myself")
        zone = me.get("timeZone")
        try:
            self._zone = ZoneInfo(str(zone)) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            self._zone = None
            log.warning("%s: unknown time zone %r in the account's profile", self.tracker.name,
                        zone)
        return dict(me)

    def _search_zone(self) -> ZoneInfo:
        """The sync account's profile time zone, read now: JQL literals are in it."""
        self._myself()
        if self._zone is None:
            raise BackendError(self.tracker.name, "JIRA did not give the sync account's time "
                               "zone (GET /myself has no valid timeZone); JQL times depend on "
                               "it, so polling cannot be done safely")
        return self._zone

    def _field_defs(self, refresh: bool = False) -> list[FieldDef]:
        if self._fields is None or refresh:
            data = self._get_json("/field", None, doing=f"reading {self.api}/field")
            self._fields = [FieldDef.from_json(d) for d in data]
        return self._fields

    def _resolve(self, target: str) -> tuple[FieldDef | None, str | None]:
        """``cf:Name`` or a field id -> its definition, or an error an admin can act on."""
        for attempt in (0, 1):
            defs = self._field_defs(refresh=attempt == 1)
            if target.startswith(CF_PREFIX):
                name = target[len(CF_PREFIX):]
                found = [d for d in defs if d.custom and d.name == name]
                if len(found) > 1:
                    ids = ", ".join(d.id for d in found)
                    return None, (f"{len(found)} custom fields are named {name!r} ({ids}); "
                                  "give the id instead of cf:NAME")
                if found:
                    return found[0], None
                err = f"JIRA has no custom field named {name!r}"
            else:
                by_id = [d for d in defs if d.id == target]
                if by_id:
                    return by_id[0], None
                err = (f"JIRA has no field with id {target!r} (use a field id such as "
                       "priority or customfield_10010, or cf:NAME for a custom field)")
            # created since we cached the list? Look again, once per name per poll.
            if attempt == 0 and target in self._fields_refreshed:
                return None, err
            self._fields_refreshed.add(target)
        return None, err

    def _write_field(self, target: str, key: str, where: str) -> FieldDef:
        fdef, err = self._resolve(target)
        if fdef is None:
            raise TicketWriteRejected(self.tracker.name, key,
                                      f"{where}: {err} (run tracker-bridge check)")
        return fdef

    def _mapped(self) -> dict[str, FieldDef]:
        """Normalized field -> definition, for every ``fields:`` entry that resolves."""
        out = {}
        for norm, target in self.tracker.fields.items():
            fdef, _ = self._resolve(target)
            if fdef is not None:
                out[norm] = fdef
        return out

    # -- reading ---------------------------------------------------------------------------------

    def _jql(self, literal: str | None) -> str:
        parts = []
        if self.tracker.projects:
            parts.append("project in (" + ", ".join(_jql_string(p)
                                                    for p in self.tracker.projects) + ")")
        if literal is not None:
            parts.append(f'updated >= "{literal}"')
        if not parts:
            parts.append('updated >= "1970/01/01 00:00"')  # Cloud refuses unbounded JQL
        return " AND ".join(parts) + " ORDER BY updated ASC, key ASC"

    def _scan(self, jql: str) -> tuple[dict[str, tuple[str, str]], datetime | None]:
        """``{id: (key, updated)}`` of every matching issue, and where paging was unstable.

        The second value is the oldest ``updated`` an issue had before it was listed again
        with a newer one during this scan (it moved to the end of the order while we paged):
        with offset-like paging an issue behind its old place may have slid onto a page
        already read, so the watermark must not pass that point. ``None`` when stable.
        """
        listed: dict[str, tuple[str, str]] = {}
        unstable: datetime | None = None
        for issue in self._search_pages(jql):
            iid, key = str(issue["id"]), str(issue["key"])
            upd = str((issue.get("fields") or {}).get("updated"))
            try:
                parse_jira_time(upd)
            except ValueError:
                raise BackendError(self.tracker.name, f"issue {key}: the search gave "
                                   f"{upd!r} as its updated time, not a timestamp") from None
            if iid in listed and listed[iid][1] != upd:
                old = min(parse_jira_time(listed[iid][1]), parse_jira_time(upd))
                unstable = old if unstable is None else min(unstable, old)
                upd = max(upd, listed[iid][1], key=parse_jira_time)
            listed[iid] = (key, upd)
        return listed, unstable

    def _search_pages(self, jql: str) -> Iterator[Mapping[str, Any]]:
        doing = "searching issues"
        if self._cloud:
            params: dict[str, Any] = {"jql": jql, "maxResults": self.opts.page_size,
                                      "fields": "updated"}
            tokens: set[str] = set()
            while True:
                page = self._get_json("/search/jql", params, doing=doing)
                yield from page.get("issues") or ()
                token = page.get("nextPageToken")
                if not token:  # absent on the last page; a short page means nothing
                    return
                if token in tokens:
                    raise BackendError(self.tracker.name, f"{doing}: JIRA returned the same "
                                       "nextPageToken twice; cannot page safely")
                tokens.add(token)
                params["nextPageToken"] = token
        start = 0
        while True:
            page = self._get_json("/search", {"jql": jql, "startAt": start,
                                              "maxResults": self.opts.page_size,
                                              "fields": "updated"}, doing=doing)
            issues = list(page.get("issues") or ())
            yield from issues
            start += len(issues)  # the server may cap maxResults: count what came
            if not issues or start >= int(page.get("total") or 0):
                return

    def _issue_fields(self) -> list[str]:
        ids = list(BASE_FIELDS)
        for target in (*self.tracker.fields.values(), self.tracker.write.response_due,
                       self.tracker.write.resolution_due, self.tracker.write.labels):
            if target:
                fdef, _ = self._resolve(target)
                if fdef is not None:
                    ids.append(fdef.id)
        return list(dict.fromkeys(ids))

    def _get_issue(self, key: str) -> dict[str, Any]:
        params: dict[str, Any] = {"fields": ",".join(self._issue_fields())}
        if not self._cloud:
            params["expand"] = "changelog"  # Data Center has no /issue/{key}/changelog
        issue = dict(self._get_json(f"/issue/{quote(key, safe='')}", params, key=key,
                                    doing=f"reading issue {key}"))
        real = str(issue["key"])
        if self._cloud:
            issue["_histories"] = list(self._changelog(real))
        else:
            cl = issue.get("changelog") or {}
            histories = list(cl.get("histories") or ())
            if int(cl.get("total") or 0) > len(histories):
                log.warning("%s: issue %s has %s changelog entries, JIRA returned %d (Data "
                            "Center has no paged changelog); older changes are not seen",
                            self.tracker.name, real, cl.get("total"), len(histories))
            issue["_histories"] = histories
        issue["_comments"] = list(self._comments(real))
        return issue

    def _changelog(self, key: str) -> Iterator[Mapping[str, Any]]:
        start = 0
        while True:
            page = self._get_json(f"/issue/{quote(key, safe='')}/changelog",
                                  {"startAt": start, "maxResults": CHANGELOG_PAGE}, key=key,
                                  doing=f"reading the changelog of {key}")
            values = list(page.get("values") or ())
            yield from values
            start += len(values)
            total = page.get("total")
            # isLast is the documented end; total too, so that a server that keeps
            # answering the same page cannot make this loop forever
            if not values or page.get("isLast") is True or \
                    (total is not None and start >= int(total)):
                return

    def _comments(self, key: str) -> Iterator[Mapping[str, Any]]:
        start = 0
        while True:
            page = self._get_json(f"/issue/{quote(key, safe='')}/comment",
                                  {"startAt": start, "maxResults": COMMENT_PAGE,
                                   "orderBy": "created", "expand": "properties"}, key=key,
                                  doing=f"reading the comments of {key}")
            comments = list(page.get("comments") or ())
            yield from comments
            start += len(comments)
            if not comments or start >= int(page.get("total") or 0):
                return

    # -- mapping ---------------------------------------------------------------------------------

    def _deadline_text(self, fdef: FieldDef | None, value: Any) -> str | None:
        """A deadline field's value as the bridge compares it (a datetime in write.timezone)."""
        if fdef is not None and fdef.type == "datetime" and isinstance(value, str) and value:
            try:
                dt = parse_jira_time(value)
            except ValueError:
                return value
            return dt.astimezone(self.tracker.write.zone).replace(microsecond=0).isoformat()
        text = value_text(value)
        return text.strip() or None if text else None

    def _comment_text(self, c: Mapping[str, Any]) -> str:
        body = c.get("body")
        text = adf_to_text(body) if isinstance(body, Mapping) else str(body or "")
        return _ESCAPED_MARKER_RE.sub(r"[\1]", text)

    def _comment_body(self, text: str, marker: str) -> dict[str, Any]:
        text = text.rstrip()
        body: dict[str, Any]
        if self._cloud:
            body = {"body": text_to_adf(f"{text}\n\n{marker}")}
        else:
            # wiki markup: a bare [..] is a link; escaped it shows (and reads back) as is
            escaped = marker.replace("[", "\\[").replace("]", "\\]")
            body = {"body": f"{text}\n\n{escaped}"}
        if self.opts.note_visibility is not None:
            body["visibility"] = self.opts.note_visibility.model_dump()
        if self.opts.internal_notes:
            body["properties"] = [{"key": JSM_COMMENT_PROPERTY, "value": {"internal": True}}]
        return body

    def _to_ticket(self, issue: Mapping[str, Any]) -> Ticket:
        try:
            return self._map(issue)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BackendError(self.tracker.name, f"issue {issue.get('key', '?')}: JIRA's "
                               f"answer has an unexpected shape ({type(e).__name__}: {e})"
                               ) from None

    def _map(self, issue: Mapping[str, Any]) -> Ticket:
        t = self.tracker
        f = issue.get("fields") or {}
        key = str(issue["key"])
        mapped = self._mapped()
        fields: dict[str, str | None] = {norm: value_text(f.get(d.id))
                                         for norm, d in mapped.items()}
        for norm in t.fields:
            fields.setdefault(norm, None)
        if not fields.get("plan"):
            plan = t.plan_for((f.get("project") or {}).get("key"))
            if plan:
                fields["plan"] = plan
        for norm in DEADLINE_FIELDS:
            target = getattr(t.write, norm, None)
            if target:
                fdef, _ = self._resolve(target)
                fields[norm] = self._deadline_text(fdef, f.get(fdef.id)) if fdef else None
        labels: tuple[str, ...] = ()
        if t.write.labels:
            ldef, _ = self._resolve(t.write.labels)
            labels = tuple(str(x) for x in (f.get(ldef.id) or ())) if ldef else ()
        return Ticket(
            tracker=t.name,
            key=key,
            url=f"{self.base_url}/browse/{key}",
            created=parse_jira_time(f["created"]),
            updated=parse_jira_time(f["updated"]) if f.get("updated") else None,
            reporter=(f.get("reporter") or {}).get("displayName"),
            subject=str(f.get("summary") or ""),
            description=value_text(f.get("description")) or "",
            status=str((f.get("status") or {}).get("name") or ""),
            fields=fields,
            labels=labels,
            history=self._history(issue, mapped),
        )

    def _history(self, issue: Mapping[str, Any], mapped: Mapping[str, FieldDef]
                 ) -> tuple[HistoryEvent, ...]:
        by_id = {d.id: norm for norm, d in mapped.items()}
        # Data Center items may lack fieldId: they name custom fields by their display name
        by_name = {d.name: norm for norm, d in mapped.items()}
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
                norm = by_id.get(fid) if fid else (by_id.get(fname) or by_name.get(fname))
                if norm is not None:
                    events.append(HistoryEvent(at=at, kind="field", by=by, field=norm,
                                               from_=old, to=new))
        for c in sorted(issue.get("_comments") or (),
                        key=lambda c: (parse_jira_time(c["created"]), _num(c.get("id")))):
            events.append(HistoryEvent(
                at=parse_jira_time(c["created"]), kind="comment",
                by=(c.get("author") or {}).get("displayName"),
                public=not c.get("visibility") and not _jsm_internal(c),
                text=self._comment_text(c)))
        events.sort(key=lambda e: e.at)  # stable: changelog before comments within an instant
        return tuple(events)


# -- helpers -------------------------------------------------------------------------------------

def _num(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _jql_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_labels_field(fdef: FieldDef) -> bool:
    return fdef.id == "labels" or (fdef.custom_type == LABELS_CUSTOM_TYPE) or \
        (fdef.type == "array" and fdef.items == "string" and not fdef.custom)


def _jsm_internal(c: Mapping[str, Any]) -> bool:
    for p in c.get("properties") or ():
        if p.get("key") == JSM_COMMENT_PROPERTY:
            value = p.get("value")
            if isinstance(value, str):  # some versions store the JSON as text
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            return isinstance(value, Mapping) and bool(value.get("internal"))
    return False


def _markers(text: str) -> set[str]:
    return {note_marker(k) for k in re.findall(r"\[tracker-bridge:note=([A-Za-z0-9:._\-]+)\]",
                                               text)}


def _same_value(fdef: FieldDef, have: str | None, want: str | None) -> bool:
    if have == want:
        return True
    if have is None or want is None:
        return False
    if fdef.type == "datetime":
        with contextlib.suppress(ValueError):
            return parse_jira_time(have) == parse_jira_time(want)
    return False


def _deadline_value(fdef: FieldDef, text: str | None, key: str, tracker: str) -> Any:
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


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, dict[str, str]]:
    """``(watermark, {issue id: updated already returned})``; garbage means start over."""
    return read_seen_cursor(cursor, CURSOR_VERSION, what="JIRA", parse_time=parse_jira_time,
                            key=str)



def _make_cursor(since: datetime | None, seen: Mapping[str, str],
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


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    """Register the JIRA backend (``backend: jira``)."""
    registry.add_backend(JiraBackend)
