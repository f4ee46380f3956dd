"""The Bugzilla backend: :class:`BugzillaBackend` joins the client (HTTP) and the mapping.

Reading
    ``fetch_changed`` asks ``GET /rest/time`` for the database clock (``db_time``, the clock
    that stamps ``last_change_time``), then lists ``GET /rest/bug`` with the configured
    products (and components), ``last_change_time=T``, ``order=changeddate,bug_id``,
    ``limit`` and ``include_fields``, keyset-paged (:meth:`.client.BugzillaClient.scan`).
    ``T`` is the cursor's watermark minus an overlap window; pairs ``(id, last_change_time)``
    already returned are skipped. The new watermark is the ``db_time`` read before the scan.
    Each changed bug then costs two requests: ``/rest/bug/N/history`` and
    ``/rest/bug/N/comment``.

Writing (``apply``)
    An empty diff makes no request. Otherwise the bug is re-read (and its comments, when the
    diff has notes) and one ``PUT /rest/bug/N`` carries only what differs: ``keywords:
    {add, remove}`` (never ``set``: a person's keywords are never rewritten) or the whole
    whiteboard with only the bridge's words changed, the deadline fields whose instant differs,
    and at most one note as ``comment``. ``Bug.update`` takes one comment per call, so each
    further note is its own update, sent only after re-reading the comments for its marker.
    A field Bugzilla accepted without changing (absent from the answer's ``changes``) is read
    back, and reported as a rejected write if it did not stick.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import requests
from pydantic import Field, field_validator

from ...backend import WRITTEN_FIELDS, Backend, Diff, FetchResult, Problem, same_deadline
from ...core.ticket import Ticket
from ...core.zones import iana_zone
from ...errors import (
    BackendAuthError,
    TicketNotFound,
    TicketWriteRejected,
)
from ...hookspecs import hookimpl
from .._http import HttpOptions, base_url, parse_utc, utc_literal
from . import mapping as m
from .client import BugzillaClient

log = logging.getLogger(__name__)

#: the lower bound of the first scan: Bugzilla refuses a search without any criterion
#: (``buglist_parameters_required``) when no product is configured
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
                           "written as local 'YYYY-MM-DD HH:MM:SS' text in that zone, and "
                           "its zone-less values in history are read in it")

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


class BugzillaBackend(Backend):
    """A Bugzilla 5.x tracker: keyset polling, activity as history, add/remove writes."""

    name: ClassVar[str] = "bugzilla"
    config_model: ClassVar[type | None] = BugzillaOptions

    def __init__(self, tracker: Any, session: requests.Session | None = None) -> None:
        super().__init__(tracker)
        opts: BugzillaOptions = self.options
        self.opts: BugzillaOptions = opts
        self.base_url: str = base_url(tracker, "Bugzilla")
        key = self.secret.get_secret_value() if self.secret is not None else None
        self.client = BugzillaClient(self.base_url, key, rest_path=opts.rest_path,
                                     timeout=opts.timeout_seconds, verify=opts.verify_tls,
                                     session=session, tracker=tracker.name)
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
        since, seen = m.parse_cursor(cursor)
        overlap = timedelta(seconds=self.opts.overlap_seconds)
        db_now = self.client.db_time()
        lower = EPOCH if since is None else max(EPOCH, since - overlap)
        listed: dict[int, dict[str, Any]] = {}
        for bug in self.client.scan(self._search_params(), lower, self.opts.page_size):
            bid, ts = int(bug["id"]), str(bug["last_change_time"])
            if bid not in listed or parse_utc(ts) >= parse_utc(listed[bid]["last_change_time"]):
                listed[bid] = bug
        spec = self._spec()
        tickets: list[Ticket] = []
        changed = sorted((parse_utc(b["last_change_time"]), bid) for bid, b in listed.items()
                         if seen.get(bid) != b["last_change_time"])
        for _, bid in changed:
            try:
                history, comments = self.client.history(bid), self.client.comments(bid)
            except TicketNotFound:
                log.info("%s: bug %s vanished while polling (deleted or made private)",
                         self.tracker.name, bid)
                continue
            tickets.append(m.map_bug(listed[bid], history, comments, spec))
        stamps = {bid: str(b["last_change_time"]) for bid, b in listed.items()}
        return FetchResult(tickets, m.make_cursor(db_now, stamps, overlap))

    def fetch_ticket(self, key: str) -> Ticket:
        self._need_key()
        bid = self._bug_id(key)
        bug = self.client.bug(bid, self._include_fields())
        history, comments = self.client.history(bid), self.client.comments(bid)
        return m.map_bug(bug, history, comments, self._spec())

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # not even a read
        self._need_key()
        key = diff.key
        bid = self._bug_id(key)
        write = self.tracker.write
        bug = self.client.bug(bid, self._include_fields())
        body: dict[str, Any] = {}

        if write.labels and (diff.add_labels or diff.remove_labels):
            body.update(m.label_changes(bug, diff, write.labels, self.tracker.name))

        sent_fields: dict[str, tuple[str | None, str]] = {}  # cf -> (wanted text, sent value)
        for norm, value in diff.set_fields.items():
            target = getattr(write, norm, None) if norm in WRITTEN_FIELDS else None
            if not target:
                log.debug("%s: %s is not written to this tracker", self.tracker.name, norm)
                continue
            info = self._field_info(target)
            if info is None:
                raise TicketWriteRejected(self.tracker.name, key, f"Bugzilla has no field "
                                          f"{target!r} (run tracker-bridge check)")
            want = value if value not in (None, "") else None
            if not same_deadline(m.field_text(bug.get(target)), want):
                sent = m.deadline_value(want, info, self._server_zone, key, self.tracker.name)
                body[target] = sent
                sent_fields[target] = (want, sent)

        notes = list(diff.notes) if write.notes else []
        if notes:
            posted = m.posted_keys(self.client.comments(bid))
            notes = [n for n in notes if n.key not in posted]
        if notes:
            first = notes.pop(0)
            body["comment"] = m.comment(first, self.opts.private_notes or first.internal)

        if body:
            answer = self.client.put_bug(bid, body, key)
            if sent_fields:
                self._verify_fields(bid, bug, answer, sent_fields, key)

        for note in notes:
            # Bug.update takes one comment per call; re-read first, so that a note another
            # run (or a lost answer) already posted is not posted twice
            if note.key in m.posted_keys(self.client.comments(bid)):
                continue
            self.client.put_bug(
                bid, {"comment": m.comment(note, self.opts.private_notes or note.internal)}, key)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        self._need_key()
        t = self.tracker
        problems: list[Problem] = []

        params = self.client.parameters()
        if set(params) <= {"maintainer", "requirelogin"}:
            problems.append(Problem(
                "credentials", "Bugzilla answered as the anonymous user: the API key was not "
                "taken. Bugzilla 5.0 reads it only from the api_key parameter (the bridge "
                "sends it so); a proxy dropping query parameters would cause this"))
            return problems  # everything below would only repeat it

        products: list[dict[str, Any]] = []
        if t.projects:
            products = self.client.products(list(t.projects))
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
        # (a real 5.2 lists the state before creation first, with the name null)
        status_names = {v["name"] for v in defs.get("bug_status", {}).get("values") or ()
                        if isinstance(v.get("name"), str)}
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
        for norm in WRITTEN_FIELDS:
            target = getattr(w, norm)
            if not target:
                continue
            info = self._field_info(target)
            # the state line and a human-format deadline are text; an ISO deadline may also
            # go to a date/time field
            text_only = norm == "state" or w.deadline_format == "human"
            what = ("the state line" if norm == "state" else
                    "a deadline in the human format" if text_only else "a deadline")
            if not target.startswith("cf_"):
                problems.append(Problem(f"write.{norm}", f"{target!r}: {what} is written "
                                        "to a custom field (cf_...)" + (
                                            "" if norm == "state" else ": Bugzilla's own "
                                            "deadline field holds a date without a time")))
            elif info is None:
                problems.append(Problem(f"write.{norm}", f"Bugzilla has no custom field "
                                        f"{target!r}"))
            elif info.type not in (m.TEXT_TYPES if text_only else m.DEADLINE_TYPES):
                problems.append(Problem(
                    f"write.{norm}", f"custom field {target!r} has type {info.type}; {what} "
                    "needs a free text (1) or large text (4) field" + (
                        "" if text_only else ", or a date/time (5) one")))
        if w.labels is not None and w.labels not in m.LABEL_TARGETS:
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
        w = self.tracker.write
        return m.include_fields(self.tracker.fields.values(),
                                (getattr(w, n) for n in WRITTEN_FIELDS), w.labels)

    def _search_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"order": "changeddate,bug_id", "limit": self.opts.page_size,
                                  "include_fields": self._include_fields()}
        if self.tracker.projects:
            params["product"] = list(self.tracker.projects)
        if self.opts.components:
            params["component"] = list(self.opts.components)
        return params

    def _field_defs(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._fields is None or refresh:
            self._fields = self.client.field_defs()
        return self._fields

    def _field_info(self, api_name: str) -> m.FieldInfo | None:
        defs = self._field_defs()
        internal = m.INTERNAL_NAMES.get(api_name, api_name)
        d = defs.get(internal) or defs.get(api_name)
        if d is None and not self._fields_refreshed:
            # a custom field created since we cached them: look once per poll
            self._fields_refreshed = True
            defs = self._field_defs(refresh=True)
            d = defs.get(internal) or defs.get(api_name)
        if d is None:
            return None
        return m.field_info(api_name, d)

    def _spec(self) -> m.MappingSpec:
        t = self.tracker
        deadlines = {n: getattr(t.write, n) for n in WRITTEN_FIELDS if getattr(t.write, n)}
        info: dict[str, m.FieldInfo] = {}
        for name in {"status", *t.fields.values(), *deadlines.values()}:
            fi = self._field_info(name)
            if fi is not None:
                info[name] = fi
        return m.MappingSpec(tracker=t.name, base_url=self.base_url, fields=dict(t.fields),
                             deadlines=deadlines,
                             labels=t.write.labels if t.write.labels in m.LABEL_TARGETS
                             else None,
                             write_zone=t.write.zone, field_info=info,
                             project_plans=dict(t.project_plans), plan=t.plan,
                             server_zone=self._server_zone)

    # -- writing ---------------------------------------------------------------------------

    def _verify_fields(self, bid: int, before: Mapping[str, Any], answer: Mapping[str, Any],
                       sent: Mapping[str, tuple[str | None, str]], key: str) -> None:
        """Read back a field Bugzilla did not report as changed, and each date/time field once
        per product (its zone is only seen by reading it back)."""
        changes = m.changed_fields(answer, bid)
        doubtful = []
        for target in sent:
            info = self._field_info(target)
            tag = f"{before.get('product')}/{target}"
            if target not in changes or (info is not None and info.type == m.TYPE_DATETIME
                                         and tag not in self._datetime_verified):
                doubtful.append(target)
        if not doubtful:
            return
        after = self.client.bug(bid, self._include_fields())
        for target in doubtful:
            want, value = sent[target]
            info = self._field_info(target)
            if info is None or not same_deadline(m.field_text(after.get(target)), want):
                hint = (f"; if the server does not run in {self.opts.server_timezone}, set "
                        "options.server_timezone") if info and info.type == m.TYPE_DATETIME \
                    else ""
                raise TicketWriteRejected(
                    self.tracker.name, key,
                    f"Bugzilla accepted {target}={value!r} but the bug shows "
                    f"{after.get(target)!r}{hint}")
            if info.type == m.TYPE_DATETIME:
                self._datetime_verified.add(f"{before.get('product')}/{target}")

    def _check_write(self) -> list[Problem]:
        """A write that changes nothing, on one bug in scope: proves the key may edit bugs.

        ``Bug.update`` with only ``ids`` needs a logged-in user who may edit the bug, and
        changes nothing (``last_change_time`` stays, no mail, no history).
        """
        params = dict(self._search_params(), limit=1, include_fields="id",
                      last_change_time=utc_literal(EPOCH))
        page = self.client.search(params)
        if not page:
            log.info("%s: no bug in scope; the write permission was not tried",
                     self.tracker.name)
            return []
        bid = int(page[0]["id"])
        try:
            with self.client.errors(bid, f"a no-op update of bug {bid}", write=True):
                self.client.put(f"bug/{bid}", {"ids": [bid]})
        except (BackendAuthError, TicketWriteRejected, TicketNotFound) as e:
            return [Problem("credentials", f"the API user cannot edit bug {bid}: {e}. The "
                            "bridge sends the key as the api_key parameter, which every "
                            "Bugzilla 5.x reads")]
        return []


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    """Register the Bugzilla backend (``backend: bugzilla``)."""
    registry.add_backend(BugzillaBackend)
