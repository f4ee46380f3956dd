"""The JIRA backend: :class:`JiraBackend` joins the client (HTTP) and the mapping.

Reading
    ``fetch_changed`` first reads ``GET /myself`` for the sync account's profile time zone (JQL
    date literals are minute-granular wall-clock times *in that zone*), then searches (see
    :mod:`.mapping` for the JQL and :mod:`.client` for the paging). Repeats are dropped on
    ``(id, updated)``. Each changed issue is then read by key, with its changelog and comments.
    Configured field names (``cf:Name`` or ids) are resolved through ``GET /field``, cached,
    and looked up again once per poll for a name not found.

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

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from pydantic import BaseModel, ConfigDict, Field

from ...backend import WRITTEN_FIELDS, Backend, Diff, FetchResult, Problem, note_marker
from ...core.ticket import Ticket
from ...errors import BackendAuthError, BackendError, TicketNotFound, TicketWriteRejected
from ...hookspecs import hookimpl
from .._http import HttpOptions, base_url
from . import mapping as m
from .client import JiraClient
from .mapping import CF_PREFIX, FieldDef, parse_jira_time

log = logging.getLogger(__name__)


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


class JiraBackend(Backend):
    """A Jira Cloud or Data Center tracker: JQL polling in the user's zone, set operations."""

    name: ClassVar[str] = "jira"
    config_model: ClassVar[type | None] = JiraOptions

    def __init__(self, tracker: Any) -> None:
        super().__init__(tracker)
        opts: JiraOptions = self.options
        self.opts: JiraOptions = opts
        self.base_url: str = base_url(tracker, "JIRA")
        self.client = JiraClient(
            tracker.name, self.base_url,
            token=self.secret.get_secret_value() if self.secret is not None else None,
            email=opts.email, cloud={"cloud": True, "datacenter": False}.get(opts.deployment),
            timeout=opts.timeout_seconds, verify=opts.verify_tls)
        self._connected = False
        self._zone: ZoneInfo | None = None
        self._fields: list[FieldDef] | None = None
        self._fields_refreshed: set[str] = set()

    @property
    def session(self) -> requests.Session:
        """The HTTP session (no retrying adapter, so a POST is sent exactly once)."""
        return self.client.session

    @property
    def api(self) -> str:
        """``/rest/api/3`` on Cloud (ADF bodies), ``/rest/api/2`` on Data Center."""
        return self.client.api

    # -- the Backend contract --------------------------------------------------------------------

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        self._connect()
        # read every poll: the account's zone decides what the literal means, and an admin
        # may change it (the advice is UTC) while the bridge runs
        zone = self._search_zone()
        self._fields_refreshed.clear()
        since, seen = m.parse_cursor(cursor)
        overlap = timedelta(seconds=self.opts.overlap_seconds)
        literal = None if since is None else m.jql_literal(since - overlap, zone)
        listed, unstable = self._scan(m.build_jql(self.tracker.projects, literal))

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
        return FetchResult(tickets, m.make_cursor(new_since, seen, returned, overlap))

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
            target = getattr(write, norm, None) if norm in WRITTEN_FIELDS else None
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
            current = self.client.issue_fields(key, wanted)
            body = m.edit_body(current, deadlines, labels_def, diff, write.zone,
                               self.tracker.name)
            if body:
                self.client.edit_issue(key, body, notify=self.opts.notify_users)

        if diff.notes and write.notes:
            # read again right before posting: a note already there (its marker) is never
            # posted twice, whatever the store remembers
            posted = m.posted_keys(self.client.comments(key))
            for note in diff.notes:
                if note.key in posted:
                    continue
                visibility = self.opts.note_visibility
                body = m.comment_body(
                    note.text, note_marker(note.key), cloud=bool(self.client.cloud),
                    visibility=visibility.model_dump() if visibility is not None else None,
                    # an internal note (the patient-data warning) is a Service Management
                    # internal note whatever internal_notes says; note_visibility, when set,
                    # restricts it on plain JIRA
                    internal=self.opts.internal_notes or note.internal)
                self.client.add_comment(key, body, note.key)
                posted.add(note.key)

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
            if self.client.project(p) is None:
                problems.append(Problem("projects", f"project {p!r} does not exist or the "
                                        "sync account cannot browse it"))

        statuses = {str(s.get("name")) for s in self.client.statuses()}
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
        for norm in WRITTEN_FIELDS:
            target = getattr(w, norm)
            if not target:
                continue
            # the state line and a human-format deadline are text; an ISO deadline may also
            # go to a Date Time Picker
            text_only = norm == "state" or w.deadline_format == "human"
            types = ("string",) if text_only else m.DEADLINE_TYPES
            fdef, err = self._resolve(target)
            if err or fdef is None:
                problems.append(Problem(f"write.{norm}", err or "not found"))
            elif not fdef.custom or fdef.type not in types \
                    or fdef.custom_type == m.TEXTAREA_CUSTOM_TYPE:
                what = ("the state line" if norm == "state" else
                        "a deadline in the human format" if text_only else "a deadline")
                use = ("Short text (single line)" if text_only else
                       "Short text (single line) or Date Time Picker")
                problems.append(Problem(
                    f"write.{norm}",
                    f"field {fdef.name!r} ({fdef.custom_type or fdef.type}) cannot hold "
                    f"{what}: use a custom field of type {use}"))
        if w.labels:
            fdef, err = self._resolve(w.labels)
            if err or fdef is None:
                problems.append(Problem("write.labels", err or "not found"))
            elif not m.is_labels_field(fdef):
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
        self.client.close()

    # -- connection and lookups ------------------------------------------------------------------

    def _connect(self) -> None:
        """Learn the deployment (once) and verify the credentials with ``/myself``."""
        if self._connected:
            return
        if self.secret is None:
            raise BackendAuthError(self.tracker.name, "no credentials: configured (give "
                                   "credentials: {env: NAME} with the API token)")
        self.client.learn_deployment()
        self._myself()
        self._connected = True

    def _myself(self) -> Mapping[str, Any]:
        me = self.client.myself()
        zone = me.get("timeZone")
        try:
            self._zone = ZoneInfo(str(zone)) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            self._zone = None
            log.warning("%s: unknown time zone %r in the account's profile", self.tracker.name,
                        zone)
        return me

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
            self._fields = [FieldDef.from_json(d) for d in self.client.fields()]
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

    def _spec(self) -> m.MappingSpec:
        """The mapping's view of the config, every configured field name resolved."""
        t = self.tracker
        mapped = {}
        for norm, target in t.fields.items():
            fdef, _ = self._resolve(target)
            if fdef is not None:
                mapped[norm] = fdef
        deadlines = {norm: self._resolve(getattr(t.write, norm))[0]
                     for norm in WRITTEN_FIELDS if getattr(t.write, norm, None)}
        labels = self._resolve(t.write.labels)[0] if t.write.labels else None
        return m.MappingSpec(tracker=t.name, base_url=self.base_url, mapped=mapped,
                             field_names=tuple(t.fields), deadlines=deadlines, labels=labels,
                             write_zone=t.write.zone, project_plans=dict(t.project_plans),
                             plan=t.plan)

    # -- reading ---------------------------------------------------------------------------------

    def _scan(self, jql: str) -> tuple[dict[str, tuple[str, str]], datetime | None]:
        """``{id: (key, updated)}`` of every matching issue, and where paging was unstable.

        The second value is the oldest ``updated`` an issue had before it was listed again
        with a newer one during this scan (it moved to the end of the order while we paged):
        with offset-like paging an issue behind its old place may have slid onto a page
        already read, so the watermark must not pass that point. ``None`` when stable.
        """
        listed: dict[str, tuple[str, str]] = {}
        unstable: datetime | None = None
        for issue in self.client.search(jql, self.opts.page_size):
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

    def _issue_fields(self) -> list[str]:
        ids = list(m.BASE_FIELDS)
        for target in (*self.tracker.fields.values(), self.tracker.write.response_due,
                       self.tracker.write.resolution_due, self.tracker.write.labels):
            if target:
                fdef, _ = self._resolve(target)
                if fdef is not None:
                    ids.append(fdef.id)
        return list(dict.fromkeys(ids))

    def _get_issue(self, key: str) -> dict[str, Any]:
        return self.client.issue(key, self._issue_fields())

    def _to_ticket(self, issue: Mapping[str, Any]) -> Ticket:
        try:
            return m.map_issue(issue, self._spec())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BackendError(self.tracker.name, f"issue {issue.get('key', '?')}: JIRA's "
                               f"answer has an unexpected shape ({type(e).__name__}: {e})"
                               ) from None


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    """Register the JIRA backend (``backend: jira``)."""
    registry.add_backend(JiraBackend)
