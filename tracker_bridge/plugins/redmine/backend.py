"""The Redmine backend: :class:`RedmineBackend` joins the client (HTTP) and the mapping.

Reading
    ``fetch_changed`` scans ``GET /issues.json`` from the cursor's watermark minus an overlap
    window (commit lag, clock skew; see :meth:`.client.RedmineClient.scan` for the paging);
    repeats are removed on ``(id, updated_on)``. The cursor holds only server timestamps.
    Each changed issue is then read with its journals, one request per issue (Redmine has no
    journals on the list endpoint), and mapped (:mod:`.mapping`) after the names it needs
    were looked up.

Writing (``apply``)
    An empty diff makes no request. Otherwise the issue is re-read: the issues this backend
    read with their journals since the last poll are re-read together, up to a page of them in
    one ``GET /issues.json?issue_id=1,2,...`` (their custom fields and ``updated_on``, no
    journals), and an issue gets a full ``GET`` with its journals only when the diff has notes
    and its ``updated_on`` moved since it was read (or was too fresh to vouch for its journals,
    see :data:`SETTLE_SECONDS`). A batched re-read is used for at most
    :data:`REREAD_MAX_AGE_SECONDS`. The labels field is set to ``(current - remove) | add``
    (every value the bridge does not own is kept), only deadline fields whose instant differs
    are sent, and nothing is PUT when nothing differs: a Redmine PUT bumps ``updated_on`` even
    when it changes nothing. The first note rides in the same ``PUT`` as the fields; each
    further note is its own public journal note; each ends with ``note_marker(key)`` and is
    skipped when a journal already carries that marker. A write Redmine silently ignored (a
    field not enabled for the issue's tracker, or read-only for the role) is detected by
    re-reading and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import requests
from pydantic import Field
from redminelib import Redmine

from ...backend import WRITTEN_FIELDS, Backend, Diff, FetchResult, Problem
from ...core.ticket import Ticket
from ...errors import BackendAuthError, BackendError, TicketNotFound, TicketWriteRejected
from ...hookspecs import hookimpl
from .._http import HttpOptions, base_url, parse_utc, utc_literal
from . import mapping as m
from .client import PAGE_LIMIT, RedmineClient
from .mapping import CF_PREFIX

log = logging.getLogger(__name__)

#: an issue's journals, as read, vouch for its notes only if its ``updated_on`` was this much
#: older than the server's clock (``Date``) when it was read: Redmine shows ``updated_on`` to
#: the second, so a later note within the same second would not move it (the cursor's rule)
SETTLE_SECONDS = 2
#: a batched re-read stands in for reading an issue right before its PUT for at most this
#: long; then the next write re-reads again. Within it, a person's edit of the labels field
#: made after the re-read and before the bridge's PUT is overwritten (Redmine's API has no
#: conditional write); writing a page of issues takes a few seconds, so a batch is normally
#: used up long before this, which only catches a cycle that stalled between two writes
REREAD_MAX_AGE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Read:
    """What a full read of an issue (with journals) showed, kept until the next poll."""

    updated_on: str
    #: its ``updated_on`` was settled when read: its journals are complete for that stamp
    settled: bool
    #: the keys of the bridge's notes in its journals
    posted: frozenset[str]


class RedmineOptions(HttpOptions):
    """``options:`` of a Redmine tracker (all optional)."""

    overlap_seconds: int = Field(
        60, ge=2, le=86400,
        description="how far before the watermark each poll starts again (commit lag, "
                    "clock skew between app servers); repeats are filtered out")
    include_subprojects: bool = Field(
        False, description="also read issues of the listed projects' subprojects")


class RedmineBackend(Backend):
    """A Redmine 5 tracker: incremental polling, journals as history, careful write-back."""

    name: ClassVar[str] = "redmine"
    config_model: ClassVar[type | None] = RedmineOptions

    def __init__(self, tracker: Any) -> None:
        super().__init__(tracker)
        opts: RedmineOptions = self.options
        self.opts: RedmineOptions = opts
        self.base_url: str = base_url(tracker, "Redmine")
        key = self.secret.get_secret_value() if self.secret is not None else None
        self.client = RedmineClient(tracker.name, self.base_url, key,
                                    timeout=opts.timeout_seconds, verify=opts.verify_tls)
        self._has_key = key is not None
        self._connected = False
        self._cf_refreshed: set[str] = set()  # names looked for again since the last poll
        # (project, tracker, status, custom field) combinations a write was seen to stick in:
        # whether Redmine silently drops a field depends on exactly these (and the API user's
        # role, which does not change under us), so one re-read per combination is enough
        self._writable: set[tuple[int, int, int, int]] = set()
        #: issues read with their journals since the last poll, by id: a write to one of them
        #: re-reads it in a batch instead of one GET each
        self._read: dict[int, _Read] = {}
        #: the last batched re-read (listed issues by id) and when it started (``_clock``)
        self._relisted: dict[int, dict[str, Any]] = {}
        self._relisted_at: float | None = None
        #: monotonic seconds, for the age of a batched re-read (replaceable in tests)
        self._clock: Callable[[], float] = time.monotonic

    @property
    def redmine(self) -> Redmine:
        """The python-redmine client (its ``engine.session`` is a requests.Session)."""
        return self.client.redmine

    @property
    def session(self) -> requests.Session:
        return self.client.session

    # -- the Backend contract ------------------------------------------------------------------

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        self._connect()
        self._cf_refreshed.clear()  # custom fields created since the last poll are found
        self._read.clear()
        self._relisted.clear()
        since, seen = m.parse_cursor(cursor)
        overlap = timedelta(seconds=self.opts.overlap_seconds)
        lower = None if since is None else utc_literal(since - overlap)
        self.client.forget_server_date()
        scan_started: datetime | None = None
        listed: dict[int, str] = {}
        for project in self._scan_projects():
            for issue in self.client.scan(project, lower, self.opts.include_subprojects):
                if scan_started is None:
                    # the server's clock at the first page: anything stamped two seconds
                    # before it can no longer change within its own second (see make_cursor)
                    scan_started = self.client.last_server_date
                iid, upd = int(issue["id"]), str(issue["updated_on"])
                if iid not in listed or parse_utc(upd) > parse_utc(listed[iid]):
                    listed[iid] = upd
        changed = sorted((parse_utc(u), i) for i, u in listed.items() if seen.get(i) != u)
        tickets: list[Ticket] = []
        for _, iid in changed:
            try:
                tickets.append(self._to_ticket(self._read_issue(iid)))
            except TicketNotFound:
                log.info("%s: issue %s vanished while polling (deleted or moved)",
                         self.tracker.name, iid)
        new_since = since
        if listed:
            newest = max(parse_utc(u) for u in listed.values())
            new_since = newest if new_since is None else max(new_since, newest)
        return FetchResult(tickets, m.make_cursor(new_since, listed, overlap, scan_started))

    def fetch_ticket(self, key: str) -> Ticket:
        self._connect()
        if not str(key).isdigit():
            raise TicketNotFound(self.tracker.name, str(key), "a Redmine key is an issue number")
        return self._to_ticket(self._read_issue(int(key)))

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # not even a read: an empty diff costs nothing
        self._connect()
        key = diff.key
        spec = self._spec()
        for norm in diff.set_fields:
            if norm not in spec.deadlines:
                log.debug("%s: %s is not written to this tracker", self.tracker.name, norm)
        with_notes = bool(diff.notes and self.tracker.write.notes)
        issue, posted = self._write_base(int(key), journals=with_notes)
        updates = m.custom_field_updates(issue, diff, spec,
                                         self._cf_ids(spec, written_only=True))
        todo = m.unposted(diff.notes, posted) if with_notes else []
        notes = [m.note_text(n) for n in todo]
        for i, body in enumerate(m.issue_puts(updates, notes, [n.internal for n in todo])):
            self.client.put_issue(key, body)
            if i == 0 and updates:
                self._verify(key, issue, updates)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        self._connect()
        t = self.tracker
        problems: list[Problem] = []

        for ident in t.projects:
            if self.client.project_id(ident) is None:
                problems.append(Problem("projects", f"project {ident!r} does not "
                                        "exist or the API user cannot see it"))

        statuses = set(self.client.statuses().values())
        for group, names in t.statuses.items():
            for n in names:
                if n not in statuses:
                    problems.append(Problem(
                        f"statuses.{group}",
                        f"Redmine has no status {n!r} (it has: {', '.join(sorted(statuses))})"))

        defs = self.client.custom_field_defs()
        if defs is None:
            problems.append(Problem("custom fields", "the API user may not read "
                                    "/custom_fields.json (an administrator's key is needed to "
                                    "verify custom fields); they were not checked"))

        def need_cf(path: str, target: str) -> dict[str, Any] | None:
            if defs is None:
                return None
            cf = defs.get(target[len(CF_PREFIX):])
            if cf is None:
                problems.append(Problem(path, f"Redmine has no issue custom "
                                        f"field named {target[len(CF_PREFIX):]!r}"))
            return cf

        for norm, target in t.fields.items():
            if target.startswith(CF_PREFIX):
                need_cf(f"fields.{norm}", target)
            elif m.builtin(target) is None:
                problems.append(Problem(
                    f"fields.{norm}",
                    f"{target!r} is not a Redmine issue attribute (use one of "
                    f"{', '.join(sorted(m.BUILTIN_ATTRS))}, or cf:NAME for a custom field)"))

        w = t.write
        for norm in WRITTEN_FIELDS:
            target = getattr(w, norm)
            if not target:
                continue
            what = "the state line is" if norm == "state" else "deadlines are"
            if not target.startswith(CF_PREFIX):
                problems.append(Problem(f"write.{norm}",
                                        f"{target!r}: {what} written to a custom field "
                                        "(cf:NAME)"))
                continue
            cf = need_cf(f"write.{norm}", target)
            if cf is not None and cf.get("field_format") not in m.TEXT_FORMATS:
                problems.append(Problem(
                    f"write.{norm}",
                    f"custom field {cf['name']!r} has format {cf.get('field_format')!r}; "
                    f"{what} text, use a Text (string) field"))
        if w.labels:
            if not w.labels.startswith(CF_PREFIX):
                problems.append(Problem("write.labels", f"{w.labels!r}: labels are "
                                        "written to a multi-value list custom field (cf:NAME)"))
            else:
                cf = need_cf("write.labels", w.labels)
                if cf is not None:
                    if cf.get("field_format") != "list" or not cf.get("multiple"):
                        problems.append(Problem(
                            "write.labels",
                            f"custom field {cf['name']!r} must be a List field with "
                            "'Multiple values' ticked"))
                    possible = {str(p.get("value")) for p in cf.get("possible_values") or ()}
                    missing = tuple(sorted({str(x) for x in labels} - possible))
                    if missing:
                        problems.append(Problem(
                            "write.labels",
                            f"custom field {cf['name']!r} lacks {len(missing)} of the "
                            "labels the policy can write; an administrator adds them to its "
                            "possible values (Administration > Custom fields), one per line: "
                            + ", ".join(missing),
                            missing_values=missing))
        if w.notes not in (None, "journal"):
            problems.append(Problem("write.notes",
                                    f"{w.notes!r}: Redmine notes can only be written as "
                                    "'journal' (journal notes)"))
        return problems

    def close(self) -> None:
        self.client.close()

    # -- connection and lookups ----------------------------------------------------------------

    def _connect(self) -> None:
        """Verify the key once: Redmine treats an unknown key as anonymous on public data."""
        if self._connected:
            return
        if not self._has_key:
            raise BackendAuthError(self.tracker.name, "no credentials: configured (give "
                                   "credentials: {env: NAME} with the API key)")
        self.client.check_key()
        self._connected = True

    def _cf_id(self, name: str) -> int | None:
        defs = self.client.custom_field_defs()
        if defs is not None and name not in defs and name not in self._cf_refreshed:
            # created since we cached them? Look once per poll, not once per issue.
            self._cf_refreshed.add(name)
            defs = self.client.custom_field_defs(refresh=True)
        if defs is None or name not in defs:
            return None
        return int(defs[name]["id"])

    def _cf_ids(self, spec: m.MappingSpec, written_only: bool = False) -> dict[str, int | None]:
        return {name: self._cf_id(name) for name in spec.custom_field_names(written_only)}

    def _spec(self) -> m.MappingSpec:
        t = self.tracker
        return m.MappingSpec(
            tracker=t.name, base_url=self.base_url, fields=dict(t.fields),
            deadlines={n: getattr(t.write, n) for n in WRITTEN_FIELDS if getattr(t.write, n)},
            labels=t.write.labels or None, project_plans=dict(t.project_plans), plan=t.plan)

    def _lookups(self, issue: Mapping[str, Any], spec: m.MappingSpec) -> m.Lookups:
        """Read (once, cached) the names the mapping needs for this issue."""
        cf_ids = self._cf_ids(spec)
        need = m.needed_lookups(issue, spec, cf_ids)
        pid = int(issue["project"]["id"])
        c = self.client
        return m.Lookups(
            cf_ids=cf_ids,
            statuses=c.statuses() if m.STATUSES in need else {},
            priorities=c.priorities() if m.PRIORITIES in need else {},
            trackers=c.trackers() if m.TRACKERS in need else {},
            categories=c.project_named("category", pid) if m.CATEGORIES in need else {},
            versions=c.project_named("version", pid) if m.VERSIONS in need else {},
            project=c.project_ident(pid) if m.PROJECT in need else None)

    def _to_ticket(self, issue: Mapping[str, Any]) -> Ticket:
        spec = self._spec()
        return m.to_ticket(issue, spec, self._lookups(issue, spec))

    # -- writing -------------------------------------------------------------------------------

    def _read_issue(self, iid: int) -> dict[str, Any]:
        """One issue with its journals; remembered until the next poll for :meth:`apply`."""
        issue = self.client.issue(iid)
        server_now = self.client.last_server_date
        updated_on = str(issue.get("updated_on") or "")
        settled = False
        if server_now is not None and updated_on:
            settled = parse_utc(updated_on) <= server_now - timedelta(seconds=SETTLE_SECONDS)
        self._read[iid] = _Read(updated_on, settled, frozenset(m.posted_keys(issue)))
        self._relisted.pop(iid, None)  # listed before this read: no longer a re-read
        return issue

    def _write_base(self, iid: int, *, journals: bool) -> tuple[dict[str, Any], set[str]]:
        """The issue as it is now, and the keys of the bridge's notes on it.

        An issue read since the last poll is re-read in a batch (its custom fields and
        ``updated_on``); its notes are taken from that read when ``updated_on`` has not moved.
        Otherwise, or when ``journals`` are needed and cannot be vouched for, one full GET.
        """
        read = self._read.pop(iid, None)
        if read is not None and (read.settled or not journals):
            listed = self._relisted_issue(iid)
            if listed is not None and (not journals
                                       or str(listed.get("updated_on")) == read.updated_on):
                return listed, set(read.posted)
        issue = self.client.issue(iid)
        return issue, m.posted_keys(issue)

    def _relisted_issue(self, iid: int) -> dict[str, Any] | None:
        """``iid`` from a batched re-read no older than :data:`REREAD_MAX_AGE_SECONDS`; a new
        batch holds it and the next issues read since the poll (a write goes by issue id,
        as the sync layer writes), up to a page. None when Redmine no longer lists it."""
        started = self._clock()
        if iid not in self._relisted or self._relisted_at is None \
                or started - self._relisted_at > REREAD_MAX_AGE_SECONDS:
            later = sorted(i for i in self._read if i > iid)
            self._relisted = self.client.issues_by_id([iid, *later[:PAGE_LIMIT - 1]])
            self._relisted_at = started
        return self._relisted.pop(iid, None)

    def _verify(self, key: str, issue: Mapping[str, Any],
                updates: list[dict[str, Any]]) -> None:
        """Read back, once per (project, tracker, status, field): Redmine answers 204 even
        when it dropped a field it will not write."""
        where = m.write_site(issue)
        unverified = [u for u in updates if (*where, int(u["id"])) not in self._writable]
        if not unverified:
            return
        for u, got in m.unapplied(self.client.issue(int(key)), unverified):
            raise TicketWriteRejected(
                self.tracker.name, key,
                f"Redmine accepted the write but custom field {u['id']} kept {got!r} "
                "(read-only for the API user's role, or disabled by the workflow)")
        self._writable.update((*where, int(u["id"])) for u in unverified)

    # -- incremental scan ----------------------------------------------------------------------

    def _scan_projects(self) -> list[str | None]:
        if not self.tracker.projects:
            return [None]  # every project the API user can see
        out: list[str | None] = []
        for ident in self.tracker.projects:
            if self.client.project_id(ident) is None:
                raise BackendError(self.tracker.name, f"project {ident!r} does not exist or "
                                   "the API user cannot see it (run tracker-bridge check)")
            out.append(ident)
        return out


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    """Register the Redmine backend (``backend: redmine``)."""
    registry.add_backend(RedmineBackend)
