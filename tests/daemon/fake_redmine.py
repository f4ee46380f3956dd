"""A small stateful Redmine behind `responses`: the backend's real requests, faults on demand.

Only what the Redmine backend asks for is answered (users/current, issues list and one issue
with journals, PUT of custom fields and notes, projects, and a 403 on custom_fields.json as
for a non-admin key). A PUT changes the stored issue and bumps ``updated_on`` the way Redmine
does. Faults are queued per (method, path): ``"fail"`` answers without applying,
``"apply-then-fail"`` applies the request and then answers with the error (a lost answer).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import responses

URL = "http://redmine.invalid"
CF = {"SLA response due": 11, "SLA resolution due": 12, "SLA labels": 13}
PRIORITIES = {"High": 3, "Low": 1}


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    how: str  # "fail", "apply-then-fail", or "pass" (answer normally: a placeholder)
    status: int | None = None  # an HTTP status, or None with exc
    exc: Exception | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "busy"


class FakeRedmine:
    def __init__(self, key: str, clock: datetime | None = None) -> None:
        self.key = key
        self.now = clock or datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        self.issues: dict[int, dict[str, Any]] = {}
        self.faults: dict[tuple[str, str], list[Fault]] = defaultdict(list)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.note_puts: list[tuple[int, str]] = []

    # -- setup ----------------------------------------------------------------------------------

    def add_issue(self, iid: int, priority: str = "High",
                  created: datetime | None = None) -> None:
        created = created or self.now
        self.issues[iid] = {
            "id": iid, "project": {"id": 1, "name": "Desk"}, "tracker": {"id": 1, "name": "Bug"},
            "status": {"id": 1, "name": "New"},
            "priority": {"id": PRIORITIES[priority], "name": priority},
            "author": {"id": 2, "name": "Pat Reporter"}, "subject": f"issue {iid}",
            "description": "", "created_on": stamp(created), "updated_on": stamp(created),
            "custom_fields": [
                {"id": CF["SLA response due"], "name": "SLA response due", "value": ""},
                {"id": CF["SLA resolution due"], "name": "SLA resolution due", "value": ""},
                {"id": CF["SLA labels"], "name": "SLA labels", "multiple": True, "value": []},
            ],
            "journals": [],
        }

    def fail(self, method: str, path: str, *faults: Fault) -> None:
        self.faults[(method, path)].extend(faults)

    def notes(self, iid: int) -> list[str]:
        return [j["notes"] for j in self.issues[iid]["journals"] if j.get("notes")]

    def cf(self, iid: int, name: str) -> Any:
        return next(c["value"] for c in self.issues[iid]["custom_fields"] if c["name"] == name)

    # -- HTTP -----------------------------------------------------------------------------------

    def install(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(responses.GET, re.compile(rf"{re.escape(URL)}/.*"), self._handle)
        rsps.add_callback(responses.PUT, re.compile(rf"{re.escape(URL)}/.*"), self._handle)

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        u = urlparse(request.url or "")
        path, method = u.path, request.method or "GET"
        self.calls[(method, path)] += 1
        if request.headers.get("X-Redmine-API-Key") != self.key:
            return 401, {}, ""
        queue = self.faults.get((method, path))
        fault = queue.pop(0) if queue else None
        if fault is not None and fault.how == "pass":
            fault = None
        if fault is not None and fault.how == "fail":
            return self._fault(fault)
        result = self._serve(method, path, parse_qs(u.query), request.body)
        if fault is not None:
            return self._fault(fault)
        return result

    def _fault(self, f: Fault) -> tuple[int, dict[str, str], str]:
        if f.exc is not None:
            raise f.exc
        assert f.status is not None
        return f.status, f.headers, f.body

    def _serve(self, method: str, path: str, q: dict[str, list[str]],
               body: Any) -> tuple[int, dict[str, str], str]:
        js = {"Content-Type": "application/json"}
        if path == "/users/current.json":
            return 200, js, json.dumps({"user": {"id": 1, "login": "bridge",
                                                 "api_key": self.key}})
        if path == "/custom_fields.json":
            return 403, {}, ""
        if path == "/projects/1.json":
            return 200, js, json.dumps({"project": {"id": 1, "identifier": "desk",
                                                    "name": "Desk"}})
        if path == "/issues.json":
            issues = sorted(self.issues.values(), key=lambda i: (i["updated_on"], i["id"]))
            flt = (q.get("updated_on") or [""])[0]
            if flt.startswith(">="):
                issues = [i for i in issues if i["updated_on"] >= flt[2:]]
            listed = [{k: v for k, v in i.items() if k != "journals"} for i in issues]
            return 200, js, json.dumps({"issues": listed, "total_count": len(listed),
                                        "offset": 0, "limit": 100})
        m = re.fullmatch(r"/issues/(\d+)\.json", path)
        if m:
            iid = int(m.group(1))
            if iid not in self.issues:
                return 404, {}, ""
            if method == "GET":
                return 200, js, json.dumps({"issue": self.issues[iid]})
            return self._put(iid, json.loads(body or b"{}")["issue"])
        return 404, {}, ""

    def _put(self, iid: int, data: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        issue = self.issues[iid]
        self.now += timedelta(seconds=1)
        for cf in data.get("custom_fields") or ():
            for have in issue["custom_fields"]:
                if have["id"] == cf["id"]:
                    have["value"] = cf["value"]
        if data.get("notes"):
            self.note_puts.append((iid, data["notes"]))
            issue["journals"].append({"id": len(self.note_puts), "user": {"name": "bridge"},
                                      "notes": data["notes"], "private_notes": False,
                                      "created_on": stamp(self.now), "details": []})
        issue["updated_on"] = stamp(self.now)
        return 204, {}, ""
