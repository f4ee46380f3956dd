"""Every HTTP call of the JIRA backend: Jira Cloud (REST v3) and Data Center (REST v2).

Why not the pycontribs ``jira`` client: its ``ResilientSession`` retries every method,
POST included, on 429/503/connection errors, so a comment whose answer was lost would be
posted twice; it has no method for ``/issue/{key}/changelog``; and it re-reads the issue after
each update. Here every request is sent exactly once (a plain ``requests.Session`` with no
retrying adapter); retrying is the sync layer's job (``tracker_bridge.retry``), and it retries
a write only after re-fetching the ticket, whose comments carry the note markers.

Paging
    Search: Cloud ``GET /rest/api/3/search/jql``, paged by ``nextPageToken`` until it is absent;
    Data Center ``GET /rest/api/2/search`` by ``startAt``. An issue is read by key with
    ``GET /issue/{key}`` (Data Center: with ``expand=changelog``), ``GET
    /issue/{key}/changelog`` (Cloud, paged, oldest first) and ``GET /issue/{key}/comment``
    (paged).

Errors
    401 ``BackendAuthError``; 403 on one issue ``TicketNotFound`` (read) or
    ``TicketWriteRejected`` (write), else ``BackendAuthError``; 429 and 5xx, timeouts and
    refused connections ``BackendUnavailable`` (with ``Retry-After``/``X-RateLimit-Reset``);
    404 on an issue ``TicketNotFound``; 400/409/413/422 on a write ``TicketWriteRejected``.
    Messages quote JIRA's ``ErrorCollection``, never the request (it has the token).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from ...errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from .._http import retry_after as _retry_after
from .._http import survive_dropped_connections, transport_error

log = logging.getLogger(__name__)

COMMENT_PAGE = 100
CHANGELOG_PAGE = 100


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


def _issue_path(key: str) -> str:
    return f"/issue/{quote(key, safe='')}"


class JiraClient:
    """One JIRA site's REST API, each request sent once, failures as tracker_bridge.errors.

    ``cloud`` decides the API (``/rest/api/3`` with ADF bodies, or ``/rest/api/2``); ``None``
    until :meth:`learn_deployment` asked ``/rest/api/2/serverInfo``.
    """

    def __init__(self, tracker: str, base_url: str, *, token: str | None,
                 email: str | None, cloud: bool | None, timeout: float,
                 verify: bool) -> None:
        self.tracker = tracker
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cloud = cloud
        #: the HTTP session: a read whose kept-alive connection was dropped goes again on a
        #: new connection; a write (POST, PUT) is never sent twice
        self.session = survive_dropped_connections(requests.Session())
        self.session.headers.update({"Accept": "application/json"})
        self.session.verify = verify
        if token is not None:
            if email:
                self.session.auth = (email, token)
            else:
                self.session.headers["Authorization"] = f"Bearer {token}"

    @property
    def api(self) -> str:
        """``/rest/api/3`` on Cloud (ADF bodies), ``/rest/api/2`` on Data Center."""
        return "/rest/api/3" if self.cloud else "/rest/api/2"

    def close(self) -> None:
        self.session.close()

    # -- one request -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path if path.startswith('/rest/') else self.api + path}"

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None, key: str | None = None, doing: str,
                write: bool = False, optional: bool = False) -> Any:
        """One HTTP request, never retried here; failures as tracker_bridge.errors types.

        ``key`` names the issue the request is about (404 is then ``TicketNotFound``, and a
        refused ``write`` is ``TicketWriteRejected``); ``optional`` returns None on 404.
        """
        name = self.tracker
        try:
            resp = self.session.request(method, self._url(path), params=params,
                                        json=json_body, timeout=self.timeout)
        except requests.RequestException as e:
            raise transport_error(name, doing, e, timeout=self.timeout,
                                  base_url=self.base_url) from None
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

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *,
                 key: str | None = None, doing: str) -> Any:
        return self.request("GET", path, params=params, key=key, doing=doing)

    def get_optional(self, path: str, doing: str) -> Any | None:
        """GET, or None on 404 (missing, or not visible to the account)."""
        return self.request("GET", path, doing=doing, optional=True)

    # -- the calls -------------------------------------------------------------------------

    def learn_deployment(self) -> None:
        """Ask ``/rest/api/2/serverInfo`` once whether this is Cloud (unless configured)."""
        if self.cloud is None:
            info = self.get_json("/rest/api/2/serverInfo", doing="reading /rest/api/2/serverInfo")
            self.cloud = str(info.get("deploymentType") or "").lower() == "cloud"

    def myself(self) -> dict[str, Any]:
        return dict(self.get_json("/myself", doing=f"reading {self.api}/myself"))

    def fields(self) -> list[dict[str, Any]]:
        return list(self.get_json("/field", doing=f"reading {self.api}/field"))

    def statuses(self) -> list[dict[str, Any]]:
        return list(self.get_json("/status", doing="reading /status"))

    def project(self, key: str) -> Any | None:
        return self.get_optional(f"/project/{quote(key, safe='')}", f"reading project {key}")

    def search(self, jql: str, page_size: int) -> Iterator[Mapping[str, Any]]:
        """Every issue the JQL matches, with only its ``updated`` field."""
        doing = "searching issues"
        if self.cloud:
            params: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": "updated"}
            tokens: set[str] = set()
            while True:
                page = self.get_json("/search/jql", params, doing=doing)
                yield from page.get("issues") or ()
                token = page.get("nextPageToken")
                if not token:  # absent on the last page; a short page means nothing
                    return
                if token in tokens:
                    raise BackendError(self.tracker, f"{doing}: JIRA returned the same "
                                       "nextPageToken twice; cannot page safely")
                tokens.add(token)
                params["nextPageToken"] = token
        start = 0
        while True:
            page = self.get_json("/search", {"jql": jql, "startAt": start,
                                             "maxResults": page_size,
                                             "fields": "updated"}, doing=doing)
            issues = list(page.get("issues") or ())
            yield from issues
            start += len(issues)  # the server may cap maxResults: count what came
            if not issues or start >= int(page.get("total") or 0):
                return

    def issue(self, key: str, fields: list[str]) -> dict[str, Any]:
        """One issue with ``fields``, its changelog in ``_histories`` and its comments in
        ``_comments`` (Cloud: three requests at least; Data Center: two)."""
        params: dict[str, Any] = {"fields": ",".join(fields)}
        if not self.cloud:
            params["expand"] = "changelog"  # Data Center has no /issue/{key}/changelog
        issue = dict(self.get_json(_issue_path(key), params, key=key,
                                   doing=f"reading issue {key}"))
        real = str(issue["key"])
        if self.cloud:
            issue["_histories"] = list(self.changelog(real))
        else:
            cl = issue.get("changelog") or {}
            histories = list(cl.get("histories") or ())
            if int(cl.get("total") or 0) > len(histories):
                log.warning("%s: issue %s has %s changelog entries, JIRA returned %d (Data "
                            "Center has no paged changelog); older changes are not seen",
                            self.tracker, real, cl.get("total"), len(histories))
            issue["_histories"] = histories
        issue["_comments"] = list(self.comments(real))
        return issue

    def issue_fields(self, key: str, field_ids: list[str]) -> dict[str, Any]:
        """Only these fields of one issue (what a write compares with)."""
        got = self.get_json(_issue_path(key), {"fields": ",".join(dict.fromkeys(field_ids))},
                            key=key, doing=f"reading issue {key}")
        return dict(got.get("fields") or {})

    def changelog(self, key: str) -> Iterator[Mapping[str, Any]]:
        start = 0
        while True:
            page = self.get_json(f"{_issue_path(key)}/changelog",
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

    def comments(self, key: str) -> Iterator[Mapping[str, Any]]:
        start = 0
        while True:
            page = self.get_json(f"{_issue_path(key)}/comment",
                                 {"startAt": start, "maxResults": COMMENT_PAGE,
                                  "orderBy": "created", "expand": "properties"}, key=key,
                                 doing=f"reading the comments of {key}")
            comments = list(page.get("comments") or ())
            yield from comments
            start += len(comments)
            if not comments or start >= int(page.get("total") or 0):
                return

    def edit_issue(self, key: str, body: Mapping[str, Any], *, notify: bool) -> None:
        params = None if notify else {"notifyUsers": "false"}
        self.request("PUT", _issue_path(key), params=params, json_body=body, key=key,
                     doing=f"writing issue {key}", write=True)

    def add_comment(self, key: str, body: Mapping[str, Any], note_key: str) -> None:
        self.request("POST", f"{_issue_path(key)}/comment", json_body=body, key=key,
                     doing=f"posting note {note_key} on issue {key}", write=True)
