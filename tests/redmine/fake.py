"""A small stateful Redmine behind `responses`, for counting the backend's requests.

What the Redmine backend asks for, answered the way Redmine 5.0.4 answers it (see
docs/redmine.md): ``/users/current.json``, ``/custom_fields.json`` (403, as for a non-admin
key), ``/projects/N.json``, ``/issues.json`` (``updated_on=>=T``, ``issue_id=1,2,...``,
``limit``, no journals), ``/issues/N.json`` (GET with journals; PUT of custom fields and
``notes``, one journal per PUT, ``updated_on`` moved to the clock), and a ``Date`` header from
the fake's clock on every answer. ``person_edit`` changes an issue as someone in the web UI
would. The real Redmine is in ``server.py``; this fake is for what it cannot show cheaply:
which requests a write makes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import responses

URL = "http://redmine.invalid"
KEY = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
CF = {"SLA response due": 11, "SLA resolution due": 12, "SLA labels": 13}


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeRedmine:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        self.issues: dict[int, dict[str, Any]] = {}
        #: (method, path, query, PUT body) of every request, in order
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, Any] | None]] = []
        self._journal_id = 0

    # -- setup and people -------------------------------------------------------------------

    def add_issue(self, iid: int, labels: list[str] | None = None,
                  updated: datetime | None = None) -> None:
        at = updated or self.now
        self.issues[iid] = {
            "id": iid, "project": {"id": 1, "name": "Desk"}, "tracker": {"id": 1, "name": "Bug"},
            "status": {"id": 1, "name": "New"}, "priority": {"id": 3, "name": "High"},
            "author": {"id": 2, "name": "Pat Reporter"}, "subject": f"issue {iid}",
            "description": "", "created_on": stamp(at - timedelta(hours=1)),
            "updated_on": stamp(at),
            "custom_fields": [
                {"id": CF["SLA response due"], "name": "SLA response due", "value": ""},
                {"id": CF["SLA resolution due"], "name": "SLA resolution due", "value": ""},
                {"id": CF["SLA labels"], "name": "SLA labels", "multiple": True,
                 "value": list(labels or [])},
            ],
            "journals": [],
        }

    def person_edit(self, iid: int, *, labels: list[str] | None = None,
                    notes: str | None = None) -> None:
        """An edit in the web UI: a journal, ``updated_on`` moved to the clock."""
        body: dict[str, Any] = {}
        if labels is not None:
            body["custom_fields"] = [{"id": CF["SLA labels"], "value": labels}]
        if notes is not None:
            body["notes"] = notes
        self._update(iid, body, "Sam Person")

    def cf(self, iid: int, name: str) -> Any:
        return next(c["value"] for c in self.issues[iid]["custom_fields"] if c["name"] == name)

    def notes(self, iid: int) -> list[str]:
        return [j["notes"] for j in self.issues[iid]["journals"] if j.get("notes")]

    # -- what the tests count ---------------------------------------------------------------

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and p == path)

    def issue_reads(self) -> list[int]:
        return [int(p.split("/")[-1].split(".")[0]) for m, p, _, _ in self.requests
                if m == "GET" and re.fullmatch(r"/issues/\d+\.json", p)]

    def relists(self) -> list[list[int]]:
        """The ids asked for by each batched re-read (``issue_id=1,2,...``)."""
        out = []
        for m, p, q, _ in self.requests:
            ids = (q.get("issue_id") or [""])[0]
            if m == "GET" and p == "/issues.json" and ids and not ids.startswith(">="):
                out.append([int(x) for x in ids.split(",")])
        return out

    def puts(self) -> list[tuple[int, dict[str, Any]]]:
        """``(issue id, the PUT's issue object)`` of every PUT."""
        return [(int(p.split("/")[-1].split(".")[0]), body or {})
                for m, p, _, body in self.requests if m == "PUT"]

    # -- HTTP -------------------------------------------------------------------------------

    def install(self, rsps: responses.RequestsMock) -> FakeRedmine:
        for method in (responses.GET, responses.PUT):
            rsps.add_callback(method, re.compile(rf"{re.escape(URL)}/.*"), self._handle)
        return self

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        u = urlparse(request.url or "")
        query = parse_qs(u.query)
        method = request.method or "GET"
        body = json.loads(request.body or b"{}")["issue"] if method == "PUT" else None
        self.requests.append((method, u.path, query, body))
        headers = {"Date": format_datetime(self.now, usegmt=True)}
        if request.headers.get("X-Redmine-API-Key") != KEY:
            return 401, headers, ""
        status, answer = self._serve(method, u.path, query, body or {})
        if answer is not None:
            headers["Content-Type"] = "application/json"
        return status, headers, "" if answer is None else json.dumps(answer)

    def _serve(self, method: str, path: str, q: dict[str, list[str]],
               body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/users/current.json":
            return 200, {"user": {"id": 1, "login": "bridge"}}
        if path == "/custom_fields.json":
            return 403, None
        if path == "/projects/1.json":
            return 200, {"project": {"id": 1, "identifier": "desk", "name": "Desk"}}
        if path == "/issues.json":
            return 200, self._list(q)
        m = re.fullmatch(r"/issues/(\d+)\.json", path)
        if m and int(m.group(1)) in self.issues:
            iid = int(m.group(1))
            if method == "GET":
                return 200, {"issue": self.issues[iid]}
            self._update(iid, body, "Bridge")
            return 204, None
        return 404, None

    def _list(self, q: dict[str, list[str]]) -> dict[str, Any]:
        issues = sorted(self.issues.values(), key=lambda i: (i["updated_on"], i["id"]))
        flt = (q.get("updated_on") or [""])[0]
        if flt.startswith(">="):
            issues = [i for i in issues if i["updated_on"] >= flt[2:]]
        ids = (q.get("issue_id") or [""])[0]
        if ids and not ids.startswith(">="):
            wanted = {int(x) for x in ids.split(",")}
            issues = sorted((i for i in issues if i["id"] in wanted), key=lambda i: i["id"])
        limit = int((q.get("limit") or ["25"])[0])
        listed = [{k: v for k, v in i.items() if k != "journals"} for i in issues[:limit]]
        return {"issues": listed, "total_count": len(issues), "offset": 0, "limit": limit}

    def _update(self, iid: int, body: dict[str, Any], who: str) -> None:
        issue = self.issues[iid]
        self.now += timedelta(seconds=1)
        details = []
        for cf in body.get("custom_fields") or ():
            for have in issue["custom_fields"]:
                if have["id"] == cf["id"] and have["value"] != cf["value"]:
                    details.extend(_cf_details(cf["id"], have["value"], cf["value"]))
                    have["value"] = cf["value"]
        self._journal_id += 1
        issue["journals"].append({
            "id": self._journal_id, "user": {"id": 9, "name": who},
            "notes": body.get("notes") or "", "private_notes": bool(body.get("private_notes")),
            "created_on": stamp(self.now), "details": details})
        issue["updated_on"] = stamp(self.now)


def _cf_details(cf_id: int, old: Any, new: Any) -> list[dict[str, Any]]:
    """The journal details of one custom field change, as Redmine writes them: a multi-value
    field gets one detail per value removed (``new_value`` null) and added (``old_value``
    null), a single-value one a single detail with both."""
    if not isinstance(old, list) and not isinstance(new, list):
        return [{"property": "cf", "name": str(cf_id), "old_value": old, "new_value": new}]
    before, after = list(old or ()), list(new or ())
    return [{"property": "cf", "name": str(cf_id), "old_value": v, "new_value": None}
            for v in before if v not in after] + \
        [{"property": "cf", "name": str(cf_id), "old_value": None, "new_value": v}
         for v in after if v not in before]
