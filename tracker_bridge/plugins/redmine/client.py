"""Every HTTP call of the Redmine backend (Redmine 5.x REST API through python-redmine 2.5).

Paging
    :meth:`RedmineClient.scan` lists ``GET /issues.json`` with ``status_id=*`` (closed issues
    too), ``updated_on=>=T`` in UTC ``Z`` literals and ``sort=updated_on,id``, paging by keyset
    (each page starts at the last page's newest timestamp, never by offset, so an issue edited
    while the scan runs cannot shift another one out of view; a second holding more than a
    page of issues is walked by ``issue_id``). :meth:`RedmineClient.issues_by_id` lists given
    issues (``issue_id=1,2,...``), up to a page of them in one request.

Errors
    401 and 403 raise ``BackendAuthError`` (403 on one issue: ``TicketNotFound``, or
    ``TicketWriteRejected`` on a write); refused connections, timeouts, 500, 429 and other 5xx
    raise ``BackendUnavailable`` (with ``retry_after`` from a ``Retry-After`` header); 422
    raises ``TicketWriteRejected`` naming the issue; 404 on an issue raises
    ``TicketNotFound``. Messages never contain the key (it is sent as the
    ``X-Redmine-API-Key`` header only; ``/users/current.json`` returns it in its body, which is
    never logged).

Lookups (statuses, priorities, trackers, a project's categories and versions, custom field
definitions, projects) are read once and cached here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from redminelib import Redmine, engines
from redminelib import exceptions as rex

from ...errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from .._http import parse_utc, survive_dropped_connections, transport_error, utc_literal
from .._http import retry_after as _retry_after

PAGE_LIMIT = 100  # Redmine clamps limit to 100


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


class RedmineClient:
    """One Redmine's REST API: requests, paging, cached lookups, errors as tracker_bridge's."""

    def __init__(self, tracker: str, base_url: str, key: str | None, *, timeout: float,
                 verify: bool) -> None:
        self.tracker = tracker
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        #: the python-redmine client (its ``engine.session`` is a requests.Session)
        self.redmine = Redmine(self.base_url, key=key, engine=_Engine, timeout=timeout,
                               requests={"verify": verify})
        # a kept-alive connection a proxy or the server dropped: reads go again on a new one
        survive_dropped_connections(self.redmine.engine.session)
        self._statuses: dict[str, str] | None = None      # id -> name
        self._priorities: dict[str, str] | None = None    # id -> name
        self._trackers: dict[str, str] | None = None      # id -> name
        self._cf_defs: dict[str, dict[str, Any]] | None = None  # name -> definition
        self._cf_defs_forbidden = False
        self._project_ids: dict[str, int] = {}            # identifier -> id
        self._project_idents: dict[int, str] = {}         # id -> identifier
        self._named: dict[tuple[str, int], dict[str, str]] = {}  # (kind, project) -> id->name

    @property
    def session(self) -> requests.Session:
        return self.redmine.engine.session

    @property
    def last_server_date(self) -> datetime | None:
        """The server's clock (``Date`` header) at the most recent response."""
        return self.redmine.engine.last_server_date

    def forget_server_date(self) -> None:
        self.redmine.engine.last_server_date = None

    def close(self) -> None:
        self.session.close()

    # -- requests and errors ---------------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, key: str | None, doing: str) -> Iterator[None]:
        """Turn python-redmine/requests failures into tracker_bridge.errors types."""
        name = self.tracker
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
        except (requests.Timeout, requests.ConnectionError) as e:
            raise transport_error(name, doing, e, timeout=self.timeout,
                                  base_url=self.base_url) from None
        except rex.BaseRedmineError as e:
            raise BackendError(name, f"{doing}: {type(e).__name__} {e}") from None

    def get(self, path: str, **params: Any) -> Any:
        """``GET`` a path below the base URL (errors are python-redmine's: use :meth:`errors`)."""
        return self.redmine.engine.request("get", f"{self.base_url}{path}", params=params)

    def get_optional(self, path: str, doing: str) -> Any | None:
        """GET, or None when Redmine answers 404/403 (missing, or not visible to the user)."""
        with self.errors(None, doing):
            try:
                return self.get(path)
            except (rex.ResourceNotFoundError, rex.ForbiddenError):
                return None

    def check_key(self) -> None:
        """``GET /users/current.json``: 401 for an unknown key (``/issues.json`` would answer
        it as the anonymous user). The body holds the key too: it is never logged."""
        with self.errors(None, "checking the API key"):
            self.get("/users/current.json")

    # -- issues ----------------------------------------------------------------------------

    def issue(self, iid: int) -> dict[str, Any]:
        """One issue with its journals."""
        with self.errors(str(iid), f"reading issue {iid}"):
            return dict(self.get(f"/issues/{iid}.json", include="journals")["issue"])

    def put_issue(self, key: str, body: Mapping[str, Any]) -> None:
        """``PUT /issues/N.json`` with ``body`` as the ``issue`` object."""
        with self.errors(key, f"writing issue {key}"):
            self.redmine.issue.update(int(key), **body)

    def list_issues(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.errors(None, "listing issues"):
            data = self.get("/issues.json", **params)
        return list(data["issues"])

    def issues_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The listed form (no journals) of up to a page of issues, by id, in one request;
        an issue not listed is deleted, moved out of sight or not visible."""
        wanted = sorted(set(ids))[:PAGE_LIMIT]
        if not wanted:
            return {}
        page = self.list_issues({"issue_id": ",".join(map(str, wanted)), "status_id": "*",
                                 "sort": "id", "limit": PAGE_LIMIT})
        keep = set(wanted)
        return {int(i["id"]): i for i in page if int(i["id"]) in keep}

    def scan(self, project: str | None, lower: str | None,
             include_subprojects: bool) -> Iterator[dict[str, Any]]:
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
            if not include_subprojects:
                base["subproject_id"] = "!*"
        t = lower
        while True:
            params = dict(base)
            if t is not None:
                params["updated_on"] = f">={t}"
            page = self.list_issues(params)
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
            page = self.list_issues(params)
            yield from page
            if len(page) < PAGE_LIMIT:
                return
            after_id = int(page[-1]["id"])

    # -- lookups (cached) ------------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        """Issue status names by id."""
        if self._statuses is None:
            with self.errors(None, "reading /issue_statuses.json"):
                data = self.get("/issue_statuses.json")["issue_statuses"]
            self._statuses = {str(s["id"]): str(s["name"]) for s in data}
        return self._statuses

    def priorities(self) -> dict[str, str]:
        if self._priorities is None:
            with self.errors(None, "reading /enumerations/issue_priorities.json"):
                data = self.get("/enumerations/issue_priorities.json")["issue_priorities"]
            self._priorities = {str(p["id"]): str(p["name"]) for p in data}
        return self._priorities

    def trackers(self) -> dict[str, str]:
        if self._trackers is None:
            with self.errors(None, "reading /trackers.json"):
                data = self.get("/trackers.json")["trackers"]
            self._trackers = {str(p["id"]): str(p["name"]) for p in data}
        return self._trackers

    def project_named(self, kind: str, project_id: int) -> dict[str, str]:
        """Category or version names of one project (ids in journals are per project)."""
        k = (kind, project_id)
        if k not in self._named:
            path, container = {"category": ("issue_categories", "issue_categories"),
                               "version": ("versions", "versions")}[kind]
            got = self.get_optional(f"/projects/{project_id}/{path}.json",
                                    f"reading project {project_id} {path}")
            data = got[container] if got else []  # not readable: history shows the ids
            self._named[k] = {str(d["id"]): str(d["name"]) for d in data}
        return self._named[k]

    def custom_field_defs(self, refresh: bool = False) -> dict[str, dict[str, Any]] | None:
        """Issue custom fields by name (admin only: None when the API user may not read them)."""
        if self._cf_defs is None or refresh:
            if self._cf_defs_forbidden and not refresh:
                return None
            try:
                with self.errors(None, "reading /custom_fields.json"):
                    data = self.get("/custom_fields.json")["custom_fields"]
            except BackendAuthError:
                self._cf_defs_forbidden = True
                return None
            self._cf_defs = {str(cf["name"]): cf for cf in data
                             if cf.get("customized_type") == "issue"}
        return self._cf_defs

    def project_id(self, ident: str) -> int | None:
        """A project's id from its identifier; None when it does not exist or is not visible."""
        if ident not in self._project_ids:
            got = self.get_optional(f"/projects/{ident}.json", f"reading project {ident!r}")
            if got is None:
                return None
            p = got["project"]
            self._project_ids[ident] = int(p["id"])
            self._project_idents[int(p["id"])] = str(p["identifier"])
        return self._project_ids[ident]

    def project_ident(self, pid: int) -> str | None:
        """A project's identifier from its id; None when it is not visible."""
        if pid not in self._project_idents:
            got = self.get_optional(f"/projects/{pid}.json", f"reading project {pid}")
            if got is None:
                return None
            self._project_idents[pid] = str(got["project"]["identifier"])
        return self._project_idents[pid]
