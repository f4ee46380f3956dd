"""The Redmine backend (Redmine 5.x REST API through python-redmine 2.5).

Reading
    ``fetch_changed`` polls ``GET /issues.json`` with ``status_id=*`` (closed issues too),
    ``updated_on=>=T`` in UTC ``Z`` literals and ``sort=updated_on,id``, paging by keyset (each
    page starts at the last page's newest timestamp, never by offset, so an issue edited
    while the scan runs cannot shift another one out of view; a second holding more than a
    page of issues is walked by ``issue_id``). ``T`` is the cursor's watermark minus an overlap
    window (commit lag, clock skew); repeats are removed on ``(id, updated_on)``. The cursor
    holds only server timestamps. Each changed issue is then read with its journals, one
    request per issue (Redmine has no journals on the list endpoint).

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
    ``fields["response_due"]``..  the current text of the ``write.*`` deadline fields
    ``labels``                    every value of the ``write.labels`` multi-value list field
    ``history``                   journals sorted by id: ``status_id`` -> status events,
                                  mapped attributes / custom fields -> field events,
                                  notes -> comments (private notes: ``public=false``)
    ============================  ==========================================================

Writing (``apply``)
    An empty diff makes no request. Otherwise the issue is re-read, the labels field is set to
    ``(current - remove) | add`` (every value the bridge does not own is kept), only deadline
    fields whose text differs are sent, and nothing is PUT when nothing differs: a Redmine PUT
    bumps ``updated_on`` even when it changes nothing. A write Redmine silently ignored
    (a field not enabled for the issue's tracker, or read-only for the role) is detected by
    re-reading and reported. Each note is its own public journal note ending with
    ``note_marker(key)``, and is skipped when a journal already carries that marker.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests
from pydantic import Field
from redminelib import Redmine, engines
from redminelib import exceptions as rex

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
from ._http import HttpOptions, parse_utc, read_seen_cursor, utc_literal
from ._http import retry_after as _retry_after

log = logging.getLogger(__name__)

CF_PREFIX = "cf:"
CURSOR_VERSION = 1
PAGE_LIMIT = 100  # Redmine clamps limit to 100

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


class RedmineOptions(HttpOptions):
    """``options:`` of a Redmine tracker (all optional)."""

    overlap_seconds: int = Field(
        60, ge=2, le=86400,
        description="how far before the watermark each poll starts again (commit lag, "
                    "clock skew between app servers); repeats are filtered out")
    include_subprojects: bool = Field(
        False, description="also read issues of the listed projects' subprojects")


class _StatusError(rex.BaseRedmineError):
    """An HTTP status python-redmine has no class for (429, 502, 503, 504, ...)."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class _Engine(engines.SyncEngine):
    """python-redmine's engine plus a timeout, Retry-After, and the server's Date header.

    python-redmine 2.5.0 does not forward ``timeout`` to requests (fixed after 2.5.0), and it
    turns 429/503 into ``UnknownError`` without the response, losing ``Retry-After``.
    """

    def __init__(self, **options: Any) -> None:
        self.timeout: float = float(options.pop("timeout", 30))
        #: the ``Date`` header of the most recent response (the server's clock)
        self.last_server_date: datetime | None = None
        super().__init__(**options)

    def construct_request_kwargs(self, method: str, headers: Any, params: Any,
                                 data: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = engines.SyncEngine.construct_request_kwargs(
            method, headers, params, data)
        kwargs["timeout"] = self.timeout
        return kwargs

    def process_response(self, response: requests.Response) -> Any:
        date = response.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self.last_server_date = parsedate_to_datetime(date).astimezone(UTC)
        if response.status_code == 429 or 501 <= response.status_code <= 599:
            raise _StatusError(response.status_code, _retry_after(response.headers))
        return super().process_response(response)


class RedmineBackend(Backend):
    """A Redmine 5 tracker: incremental polling, journals as history, careful write-back."""

    name: ClassVar[str] = "redmine"
    config_model: ClassVar[type | None] = RedmineOptions

    def __init__(self, tracker: Any) -> None:
        super().__init__(tracker)
        opts: RedmineOptions = self.options
        self.opts: RedmineOptions = opts
        if not tracker.url:
            raise BackendError(tracker.name, "no url: configured for this Redmine tracker")
        self.base_url: str = str(tracker.url).rstrip("/")
        key = self.secret.get_secret_value() if self.secret is not None else None
        #: the python-redmine client (its ``engine.session`` is a requests.Session)
        self.redmine = Redmine(self.base_url, key=key, engine=_Engine,
                               timeout=opts.timeout_seconds,
                               requests={"verify": opts.verify_tls})
        self._has_key = key is not None
        self._connected = False
        self._statuses: dict[str, str] | None = None      # id -> name
        self._priorities: dict[str, str] | None = None    # id -> name
        self._trackers: dict[str, str] | None = None      # id -> name
        self._cf_defs: dict[str, dict[str, Any]] | None = None  # name -> definition
        self._cf_defs_forbidden = False
        self._cf_refreshed: set[str] = set()  # names looked for again since the last poll
        self._project_ids: dict[str, int] | None = None   # identifier -> id
        self._project_idents: dict[int, str] = {}         # id -> identifier
        self._named: dict[tuple[str, int], dict[str, str]] = {}  # (kind, project) -> id->name
        # (project, tracker, status, custom field) combinations a write was seen to stick in:
        # whether Redmine silently drops a field depends on exactly these (and the API user's
        # role, which does not change under us), so one re-read per combination is enough
        self._writable: set[tuple[int, int, int, int]] = set()

    # -- the Backend contract ------------------------------------------------------------------

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        self._connect()
        self._cf_refreshed.clear()  # custom fields created since the last poll are found
        since, seen = _parse_cursor(cursor)
        overlap = timedelta(seconds=self.opts.overlap_seconds)
        lower = None if since is None else utc_literal(since - overlap)
        self.redmine.engine.last_server_date = None
        scan_started: datetime | None = None
        listed: dict[int, str] = {}
        for project in self._scan_projects():
            for issue in self._scan(project, lower):
                if scan_started is None:
                    # the server's clock at the first page: anything stamped two seconds
                    # before it can no longer change within its own second (see _settled)
                    scan_started = self.redmine.engine.last_server_date
                iid, upd = int(issue["id"]), str(issue["updated_on"])
                if iid not in listed or parse_utc(upd) > parse_utc(listed[iid]):
                    listed[iid] = upd
        changed = sorted((parse_utc(u), i) for i, u in listed.items() if seen.get(i) != u)
        tickets: list[Ticket] = []
        for _, iid in changed:
            try:
                tickets.append(self._to_ticket(self._get_issue(iid)))
            except TicketNotFound:
                log.info("%s: issue %s vanished while polling (deleted or moved)",
                         self.tracker.name, iid)
        new_since = since
        if listed:
            newest = max(parse_utc(u) for u in listed.values())
            new_since = newest if new_since is None else max(new_since, newest)
        return FetchResult(tickets, _make_cursor(new_since, listed, overlap, scan_started))

    def fetch_ticket(self, key: str) -> Ticket:
        self._connect()
        if not str(key).isdigit():
            raise TicketNotFound(self.tracker.name, str(key), "a Redmine key is an issue number")
        return self._to_ticket(self._get_issue(int(key)))

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # not even a read: an empty diff costs nothing
        self._connect()
        key = diff.key
        issue = self._get_issue(int(key))
        write = self.tracker.write
        updates: list[dict[str, Any]] = []

        for norm, value in diff.set_fields.items():
            target = getattr(write, norm, None) if norm in ("response_due", "resolution_due") \
                else None
            if not target:
                log.debug("%s: %s is not written to this tracker", self.tracker.name, norm)
                continue
            cf = self._issue_cf(issue, target, key)
            current = _cf_text(cf.get("value"))
            new = value if value not in (None, "") else None
            if current != new:
                updates.append({"id": cf["id"], "value": new or ""})

        if (diff.add_labels or diff.remove_labels) and write.labels:
            cf = self._issue_cf(issue, write.labels, key)
            current_labels = _cf_values(cf.get("value"))
            wanted = [v for v in current_labels if v not in diff.remove_labels]
            wanted += sorted(set(diff.add_labels) - set(wanted))
            if wanted != current_labels:
                updates.append({"id": cf["id"], "value": wanted})

        if updates:
            self._put(key, custom_fields=updates)
            where = (int(issue["project"]["id"]), int(issue["tracker"]["id"]),
                     int(issue["status"]["id"]))
            unverified = [u for u in updates if (*where, int(u["id"])) not in self._writable]
            if unverified:
                self._verify(key, unverified)
                self._writable.update((*where, int(u["id"])) for u in unverified)

        if diff.notes and write.notes:
            posted = _markers_in(issue)
            for note in diff.notes:
                marker = note_marker(note.key)
                if marker in posted:
                    continue
                text = note.text.rstrip()
                self._put(key, notes=f"{text}\n\n{marker}", private_notes=False)
                posted.add(marker)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        self._connect()
        t = self.tracker
        problems: list[Problem] = []

        for ident in t.projects:
            if self._project_id(ident) is None:
                problems.append(Problem("projects", f"project {ident!r} does not "
                                        "exist or the API user cannot see it"))

        statuses = set(self._status_names().values())
        for group, names in t.statuses.items():
            for n in names:
                if n not in statuses:
                    problems.append(Problem(
                        f"statuses.{group}",
                        f"Redmine has no status {n!r} (it has: {', '.join(sorted(statuses))})"))

        defs = self._custom_field_defs()
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
            elif _builtin(target) is None:
                problems.append(Problem(
                    f"fields.{norm}",
                    f"{target!r} is not a Redmine issue attribute (use one of "
                    f"{', '.join(sorted(BUILTIN_ATTRS))}, or cf:NAME for a custom field)"))

        w = t.write
        for norm in ("response_due", "resolution_due"):
            target = getattr(w, norm)
            if not target:
                continue
            if not target.startswith(CF_PREFIX):
                problems.append(Problem(f"write.{norm}",
                                        f"{target!r}: deadlines are written to a custom field "
                                        "(cf:NAME)"))
                continue
            cf = need_cf(f"write.{norm}", target)
            if cf is not None and cf.get("field_format") not in TEXT_FORMATS:
                problems.append(Problem(
                    f"write.{norm}",
                    f"custom field {cf['name']!r} has format {cf.get('field_format')!r}; "
                    "deadlines are text, use a Text (string) field"))
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
        self.redmine.engine.session.close()

    # -- connection and lookups ----------------------------------------------------------------

    def _connect(self) -> None:
        """Verify the key once: Redmine treats an unknown key as anonymous on public data."""
        if self._connected:
            return
        if not self._has_key:
            raise BackendAuthError(self.tracker.name, "no credentials: configured (give "
                                   "credentials: {env: NAME} with the API key)")
        with self._errors(None, "checking the API key"):
            # The body also holds the key: read only what is needed, never log it.
            self._get("/users/current.json")
        self._connected = True

    @contextlib.contextmanager
    def _errors(self, key: str | None, doing: str) -> Iterator[None]:
        """Turn python-redmine/requests failures into tracker_bridge.errors types."""
        name = self.tracker.name
        try:
            yield
        except rex.AuthError:
            raise BackendAuthError(name, f"{doing}: Redmine refused the API key (401); check "
                                   "the credentials and that the REST API is enabled") from None
        except rex.ForbiddenError:
            # 403 on one issue is about that issue (private, another project's role), not the
            # credentials: suspending the whole tracker over it would stop every other ticket.
            if key is not None and doing.startswith("writing"):
                raise TicketWriteRejected(name, key, "the API user may not edit this issue "
                                          "(403)") from None
            if key is not None:
                raise TicketNotFound(name, key, "not visible to the API user (403)") from None
            raise BackendAuthError(name, f"{doing}: the API user is not allowed (403)") from None
        except rex.ResourceNotFoundError:
            if key is not None:
                raise TicketNotFound(name, key) from None
            raise BackendError(name, f"{doing}: not found (404); check the url") from None
        except rex.ValidationError as e:
            if key is not None:
                raise TicketWriteRejected(name, key, f"Redmine refused the write (422): {e}") \
                    from None
            raise BackendError(name, f"{doing}: Redmine refused the request (422): {e}") \
                from None
        except _StatusError as e:
            raise BackendUnavailable(name, f"{doing}: HTTP {e.status}",
                                     retry_after=e.retry_after) from None
        except rex.ServerError:
            raise BackendUnavailable(name, f"{doing}: server error (HTTP 500)") from None
        except (rex.JSONDecodeError, rex.HTTPProtocolError,
                requests.exceptions.JSONDecodeError) as e:
            # (python-redmine reads a 422's body as JSON without catching: an HTML error
            # page from a proxy lands here too)
            raise BackendUnavailable(name, f"{doing}: unexpected response "
                                     f"({type(e).__name__}); is the url a Redmine?") from None
        except requests.Timeout:
            raise BackendUnavailable(name, f"{doing}: timed out after "
                                     f"{self.opts.timeout_seconds:g} s") from None
        except requests.ConnectionError:
            raise BackendUnavailable(name, f"{doing}: cannot connect to {self.base_url}") \
                from None
        except rex.BaseRedmineError as e:
            raise BackendError(name, f"{doing}: {type(e).__name__} {e}") from None

    def _get(self, path: str, **params: Any) -> Any:
        return self.redmine.engine.request("get", f"{self.base_url}{path}", params=params)

    def _get_optional(self, path: str, doing: str) -> Any | None:
        """GET, or None when Redmine answers 404/403 (missing, or not visible to the user)."""
        with self._errors(None, doing):
            try:
                return self._get(path)
            except (rex.ResourceNotFoundError, rex.ForbiddenError):
                return None

    def _put(self, key: str, **fields: Any) -> None:
        with self._errors(key, f"writing issue {key}"):
            self.redmine.issue.update(int(key), **fields)

    def _get_issue(self, iid: int) -> dict[str, Any]:
        with self._errors(str(iid), f"reading issue {iid}"):
            return dict(self._get(f"/issues/{iid}.json", include="journals")["issue"])

    def _status_names(self) -> dict[str, str]:
        if self._statuses is None:
            with self._errors(None, "reading /issue_statuses.json"):
                data = self._get("/issue_statuses.json")["issue_statuses"]
            self._statuses = {str(s["id"]): str(s["name"]) for s in data}
        return self._statuses

    def _priority_names(self) -> dict[str, str]:
        if self._priorities is None:
            with self._errors(None, "reading /enumerations/issue_priorities.json"):
                data = self._get("/enumerations/issue_priorities.json")["issue_priorities"]
            self._priorities = {str(p["id"]): str(p["name"]) for p in data}
        return self._priorities

    def _tracker_names(self) -> dict[str, str]:
        if self._trackers is None:
            with self._errors(None, "reading /trackers.json"):
                data = self._get("/trackers.json")["trackers"]
            self._trackers = {str(p["id"]): str(p["name"]) for p in data}
        return self._trackers

    def _project_named(self, kind: str, project_id: int) -> dict[str, str]:
        """Category or version names of one project (ids in journals are per project)."""
        k = (kind, project_id)
        if k not in self._named:
            path, container = {"category": ("issue_categories", "issue_categories"),
                               "version": ("versions", "versions")}[kind]
            got = self._get_optional(f"/projects/{project_id}/{path}.json",
                                     f"reading project {project_id} {path}")
            data = got[container] if got else []  # not readable: history shows the ids
            self._named[k] = {str(d["id"]): str(d["name"]) for d in data}
        return self._named[k]

    def _custom_field_defs(self, refresh: bool = False) -> dict[str, dict[str, Any]] | None:
        """Issue custom fields by name (admin only: None when the API user may not read them)."""
        if self._cf_defs is None or refresh:
            if self._cf_defs_forbidden and not refresh:
                return None
            try:
                with self._errors(None, "reading /custom_fields.json"):
                    data = self._get("/custom_fields.json")["custom_fields"]
            except BackendAuthError:
                self._cf_defs_forbidden = True
                return None
            self._cf_defs = {str(cf["name"]): cf for cf in data
                             if cf.get("customized_type") == "issue"}
        return self._cf_defs

    def _cf_id(self, name: str) -> int | None:
        defs = self._custom_field_defs()
        if defs is not None and name not in defs and name not in self._cf_refreshed:
            # created since we cached them? Look once per poll, not once per issue.
            self._cf_refreshed.add(name)
            defs = self._custom_field_defs(refresh=True)
        if defs is None or name not in defs:
            return None
        return int(defs[name]["id"])

    def _project_id(self, ident: str) -> int | None:
        if self._project_ids is None:
            self._project_ids = {}
        if ident not in self._project_ids:
            got = self._get_optional(f"/projects/{ident}.json", f"reading project {ident!r}")
            if got is None:
                return None
            p = got["project"]
            self._project_ids[ident] = int(p["id"])
            self._project_idents[int(p["id"])] = str(p["identifier"])
        return self._project_ids[ident]

    def _project_ident(self, pid: int) -> str | None:
        if pid not in self._project_idents:
            got = self._get_optional(f"/projects/{pid}.json", f"reading project {pid}")
            if got is None:
                return None
            self._project_idents[pid] = str(got["project"]["identifier"])
        return self._project_idents[pid]

    # -- incremental scan ----------------------------------------------------------------------

    def _scan_projects(self) -> list[str | None]:
        if not self.tracker.projects:
            return [None]  # every project the API user can see
        out: list[str | None] = []
        for ident in self.tracker.projects:
            if self._project_id(ident) is None:
                raise BackendError(self.tracker.name, f"project {ident!r} does not exist or "
                                   "the API user cannot see it (run tracker-bridge check)")
            out.append(ident)
        return out

    def _list(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._errors(None, "listing issues"):
            data = self._get("/issues.json", **params)
        return list(data["issues"])

    def _scan(self, project: str | None, lower: str | None) -> Iterator[dict[str, Any]]:
        """Every issue with ``updated_on >= lower``, by keyset on (updated_on, id).

        What Redmine 5 really does with ``updated_on=>=T``: ``updated_on > T - 1s`` on
        timestamps stored with microseconds and shown truncated to the second. So a filter at
        second S also returns what was stamped inside second S-1, and ``><A|B`` is
        ``(A - 1s, B.000000]``. The scan is written for that reading:

        - each page starts at the previous page's newest second (inclusive), so issues that
          move to the end of the order while we scan are met again later instead of shifting
          an unseen issue past a page boundary (offset paging loses it);
        - when a full page does not get past that second (more than a page stamped within two
          seconds: a bulk edit), the window ``><S-1|S+1`` (real ``(S-2s, S+1s]``, which holds
          both crowded seconds) is walked by issue id, sorted by id, and the scan resumes at
          ``>=S+2`` (real ``> S+1s``): the two ranges meet, nothing falls between them.
        """
        base: dict[str, Any] = {"status_id": "*", "sort": "updated_on,id",
                                "limit": PAGE_LIMIT, "offset": 0}
        if project is not None:
            base["project_id"] = project
            if not self.opts.include_subprojects:
                base["subproject_id"] = "!*"
        t = lower
        while True:
            params = dict(base)
            if t is not None:
                params["updated_on"] = f">={t}"
            page = self._list(params)
            yield from page
            if len(page) < PAGE_LIMIT:
                return
            last = parse_utc(page[-1]["updated_on"])
            if t is not None and last <= parse_utc(t):
                # the same request again would return the same page: walk the crowd by id
                one = timedelta(seconds=1)
                window = f"><{utc_literal(last - one)}|{utc_literal(last + one)}"
                yield from self._walk_by_id(base, window)
                t = utc_literal(last + 2 * one)
            else:
                t = utc_literal(last)

    def _walk_by_id(self, base: Mapping[str, Any], window: str) -> Iterator[dict[str, Any]]:
        """Every issue in an ``updated_on`` window, paged by id (ids only grow: it ends)."""
        after_id = 0
        while True:
            params = dict(base, sort="id", updated_on=window, issue_id=f">={after_id + 1}")
            page = self._list(params)
            yield from page
            if len(page) < PAGE_LIMIT:
                return
            after_id = int(page[-1]["id"])

    # -- mapping -------------------------------------------------------------------------------

    def _issue_cf(self, issue: Mapping[str, Any], target: str, key: str) -> dict[str, Any]:
        """The issue's entry for custom field ``cf:NAME``; refuses fields it does not have."""
        name = target[len(CF_PREFIX):] if target.startswith(CF_PREFIX) else target
        cf = _find_cf(issue, name, self._cf_id(name))
        if cf is None:
            raise TicketWriteRejected(
                self.tracker.name, key,
                f"custom field {name!r} is not available on this issue (missing, or not "
                "enabled for its tracker or project, or not visible to the API user); "
                "Redmine would silently ignore the write")
        return cf

    def _verify(self, key: str, updates: list[dict[str, Any]]) -> None:
        """Re-read: Redmine answers 204 even when it dropped a field it will not write."""
        issue = self._get_issue(int(key))
        values = {int(cf["id"]): cf.get("value") for cf in issue.get("custom_fields") or ()}
        for u in updates:
            got, want = values.get(int(u["id"])), u["value"]
            same = (sorted(_cf_values(got)) == sorted(want)) if isinstance(want, list) \
                else _cf_text(got) == (want or None)
            if not same:
                raise TicketWriteRejected(
                    self.tracker.name, key,
                    f"Redmine accepted the write but custom field {u['id']} kept {got!r} "
                    "(read-only for the API user's role, or disabled by the workflow)")

    def _field_value(self, issue: Mapping[str, Any], target: str) -> str | None:
        if target.startswith(CF_PREFIX):
            name = target[len(CF_PREFIX):]
            cf = _find_cf(issue, name, self._cf_id(name))
            if cf is None:
                return None
            value = cf.get("value")
            if isinstance(value, list):
                vals = [str(v) for v in value if v not in (None, "")]
                return ", ".join(vals) if vals else None
            return _cf_text(value)
        attr = _builtin(target)
        if attr is None:
            return None
        value = issue.get(attr)
        if isinstance(value, Mapping):
            value = value.get("name")
        if value is None or value == "":
            return None
        return str(value)

    def _to_ticket(self, issue: Mapping[str, Any]) -> Ticket:
        t = self.tracker
        iid = int(issue["id"])
        project_id = int(issue["project"]["id"])
        fields: dict[str, str | None] = {}
        for norm, target in t.fields.items():
            fields[norm] = self._field_value(issue, target)
        if not fields.get("plan"):
            plan = t.plan_for(self._project_ident(project_id))
            if plan:
                fields["plan"] = plan
        for norm in ("response_due", "resolution_due"):
            target = getattr(t.write, norm, None)
            if target:
                fields[norm] = self._field_value(issue, target)
        labels: tuple[str, ...] = ()
        if t.write.labels:
            name = t.write.labels[len(CF_PREFIX):] if t.write.labels.startswith(CF_PREFIX) \
                else t.write.labels
            cf = _find_cf(issue, name, self._cf_id(name))
            labels = tuple(_cf_values(cf.get("value"))) if cf is not None else ()
        return Ticket(
            tracker=t.name,
            key=str(iid),
            url=f"{self.base_url}/issues/{iid}",
            created=parse_utc(issue["created_on"]),
            updated=parse_utc(issue["updated_on"]) if issue.get("updated_on") else None,
            reporter=(issue.get("author") or {}).get("name"),
            subject=str(issue.get("subject") or ""),
            description=str(issue.get("description") or ""),
            status=str(issue["status"]["name"]),
            fields=fields,
            labels=labels,
            history=self._history(issue, project_id),
        )

    def _history(self, issue: Mapping[str, Any], project_id: int) -> tuple[HistoryEvent, ...]:
        # journal detail -> normalized field, for every mapped field the journals can show
        attr_fields: dict[str, str] = {}
        cf_fields: dict[str, str] = {}
        for norm, target in self.tracker.fields.items():
            if target.startswith(CF_PREFIX):
                cf_id = self._cf_id(target[len(CF_PREFIX):])
                if cf_id is None:
                    cf = _find_cf(issue, target[len(CF_PREFIX):], None)
                    cf_id = int(cf["id"]) if cf is not None else None
                if cf_id is not None:
                    cf_fields[str(cf_id)] = norm
            else:
                attr = BUILTIN_ATTRS.get(_builtin(target) or "")
                if attr:
                    attr_fields[attr] = norm
        multi = {str(cf["id"]) for cf in issue.get("custom_fields") or () if cf.get("multiple")}

        events: list[HistoryEvent] = []
        # Journals come newest-first when the API user prefers comments in reverse order.
        for j in sorted(issue.get("journals") or (), key=lambda j: int(j["id"])):
            at = parse_utc(j["created_on"])
            by = (j.get("user") or {}).get("name")
            for d in j.get("details") or ():
                prop, name = d.get("property"), str(d.get("name"))
                old, new = d.get("old_value"), d.get("new_value")
                if prop == "attr" and name == "status_id":
                    names = self._status_names()
                    events.append(HistoryEvent(
                        at=at, kind="status", by=by,
                        from_=names.get(str(old), old) if old is not None else None,
                        to=names.get(str(new), str(new))))
                elif prop == "attr" and name in attr_fields:
                    events.append(HistoryEvent(
                        at=at, kind="field", by=by, field=attr_fields[name],
                        from_=self._attr_name(name, old, project_id),
                        to=self._attr_name(name, new, project_id)))
                elif prop == "cf" and name in cf_fields and name not in multi:
                    events.append(HistoryEvent(
                        at=at, kind="field", by=by, field=cf_fields[name],
                        from_=old if old not in (None, "") else None,
                        to=new if new not in (None, "") else None))
            notes = j.get("notes")
            if notes:
                events.append(HistoryEvent(at=at, kind="comment", by=by,
                                           public=not j.get("private_notes"), text=str(notes)))
        events.sort(key=lambda e: e.at)  # stable: journal order kept within one second
        return tuple(events)

    def _attr_name(self, attr: str, value: Any, project_id: int) -> str | None:
        if value in (None, ""):
            return None
        v = str(value)
        if attr == "priority_id":
            return self._priority_names().get(v, v)
        if attr == "tracker_id":
            return self._tracker_names().get(v, v)
        if attr == "category_id":
            return self._project_named("category", project_id).get(v, v)
        if attr == "fixed_version_id":
            return self._project_named("version", project_id).get(v, v)
        return v


# -- helpers -----------------------------------------------------------------------------------

def _builtin(target: str) -> str | None:
    """``priority``/``priority_id`` -> ``priority``; None for an unknown attribute."""
    name = target[:-3] if target.endswith("_id") and target[:-3] in BUILTIN_ATTRS else target
    return name if name in BUILTIN_ATTRS else None


def _find_cf(issue: Mapping[str, Any], name: str, cf_id: int | None) -> dict[str, Any] | None:
    for cf in issue.get("custom_fields") or ():
        if (cf_id is not None and int(cf["id"]) == cf_id) or (cf_id is None and
                                                              cf.get("name") == name):
            return dict(cf)
    return None


def _cf_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v not in (None, ""))
    return None if value in (None, "") else str(value)


def _cf_values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def _markers_in(issue: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for j in issue.get("journals") or ():
        notes = j.get("notes") or ""
        start = 0
        while (i := notes.find("[tracker-bridge:note=", start)) >= 0:
            end = notes.find("]", i)
            if end < 0:
                break
            out.add(notes[i:end + 1])
            start = end + 1
    return out


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, dict[int, str]]:
    """``(watermark, {issue id: updated_on already returned})``; garbage means start over."""
    return read_seen_cursor(cursor, CURSOR_VERSION, what="Redmine")


def _make_cursor(since: datetime | None, listed: Mapping[int, str], overlap: timedelta,
                 scan_started: datetime | None) -> str | None:
    """The watermark plus the ``(id, updated_on)`` pairs the next poll may skip.

    Only pairs inside the next overlap window matter (older ones are not listed again), and
    only "settled" ones: stamped at least two seconds before the server's clock at the start
    of this scan, so no later edit within the same second can hide behind the same pair.
    """
    if since is None:
        return None
    # the next poll lists from `since - overlap`, which Redmine reads as one second earlier
    # still (see _scan): vouch for that second too, or its issues are re-read every poll
    floor = since - overlap - timedelta(seconds=1)
    settled_before = scan_started - timedelta(seconds=2) if scan_started else None
    seen = {}
    for iid, upd in listed.items():
        u = parse_utc(upd)
        if u >= floor and settled_before is not None and u <= settled_before:
            seen[str(iid)] = upd
    return json.dumps({"v": CURSOR_VERSION, "since": utc_literal(since), "seen": seen},
                      separators=(",", ":"), sort_keys=True)


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    """Register the Redmine backend (``backend: redmine``)."""
    registry.add_backend(RedmineBackend)
