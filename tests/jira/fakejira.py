"""A small stateful JIRA behind ``responses``: issues in a dict, JQL times in the user's zone.

No JIRA can run here, so the contract suite and the write tests run against this fake. It
follows the shapes of Atlassian's OpenAPI file for the Jira Cloud platform REST API v3 (the
examples under tests/jira/payloads/ come from it) and the behaviour docs/jira.md
describes, choosing the pessimistic reading wherever JIRA's behaviour is unverified:

- ``updated >= "yyyy/MM/dd HH:mm"`` is read as a wall-clock time in the *searching user's*
  zone (``/myself`` -> ``timeZone``), to the minute; an ambiguous wall time (DST fold) is read
  as its *later* instant, a skipped one (DST gap) like Java does (shifted forward);
- ``nextPageToken`` behaves like an offset (an issue edited while someone pages moves to the
  end and shifts the others);
- returned timestamps are in the "system default user time zone" (``server_zone``), with
  milliseconds and a ``+hhmm`` offset, like real JIRA;
- every PUT moves ``updated``, even one that changes nothing (unverified on JIRA: assumed);
- a comment body on v3 must be ADF; on v2 (Data Center mode) a string;
- the Data Center mode has ``/rest/api/2/search`` (startAt/total), no ``/changelog``, and the
  changelog embedded with ``expand=changelog``; with ``field_ids=False`` its changelog items
  carry no ``fieldId`` (older Server/Data Center versions), naming a custom field only by its
  display name;
- a change of a labels field is one changelog item whose ``fromString``/``toString`` are the
  labels before and after, space-separated, with ``from``/``to`` null (as Atlassian's
  changelog example and real JIRA write it).

People act on it through :meth:`FakeJira.create`, :meth:`comment`, :meth:`set_labels`,
:meth:`transition` and :meth:`set_field`, never through the backend.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import responses

BASE = "https://example.atlassian.net"
EMAIL = "sync-bot@example.com"
TOKEN = "fake-api-token-0123456789"

#: field definitions in the shape of GET /field (the OpenAPI example's entries, plus custom
#: fields shaped like real ones: schema.custom names the custom field type)
SYSTEM_FIELDS = [
    {"id": "summary", "key": "summary", "name": "Summary", "custom": False,
     "schema": {"type": "string", "system": "summary"}},
    {"id": "description", "key": "description", "name": "Description", "custom": False,
     "schema": {"type": "string", "system": "description"}},
    {"id": "status", "key": "status", "name": "Status", "custom": False,
     "schema": {"type": "status", "system": "status"}},
    {"id": "priority", "key": "priority", "name": "Priority", "custom": False,
     "schema": {"type": "priority", "system": "priority"}},
    {"id": "labels", "key": "labels", "name": "Labels", "custom": False,
     "schema": {"type": "array", "items": "string", "system": "labels"}},
    {"id": "created", "key": "created", "name": "Created", "custom": False,
     "schema": {"type": "datetime", "system": "created"}},
    {"id": "updated", "key": "updated", "name": "Updated", "custom": False,
     "schema": {"type": "datetime", "system": "updated"}},
    {"id": "reporter", "key": "reporter", "name": "Reporter", "custom": False,
     "schema": {"type": "user", "system": "reporter"}},
    {"id": "project", "key": "project", "name": "Project", "custom": False,
     "schema": {"type": "project", "system": "project"}},
    {"id": "components", "key": "components", "name": "Components", "custom": False,
     "schema": {"type": "array", "items": "component", "system": "components"}},
]
_CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
CUSTOM_FIELDS = [
    {"id": "customfield_10050", "key": "customfield_10050", "name": "SLA response due",
     "custom": True, "schema": {"type": "string", "custom": _CF + "textfield",
                                "customId": 10050}},
    {"id": "customfield_10051", "key": "customfield_10051", "name": "SLA resolution due",
     "custom": True, "schema": {"type": "string", "custom": _CF + "textfield",
                                "customId": 10051}},
    {"id": "customfield_10052", "key": "customfield_10052", "name": "Impact", "custom": True,
     "schema": {"type": "option", "custom": _CF + "select", "customId": 10052}},
    {"id": "customfield_10053", "key": "customfield_10053", "name": "Support plan",
     "custom": True, "schema": {"type": "option", "custom": _CF + "select",
                                "customId": 10053}},
    {"id": "customfield_10054", "key": "customfield_10054", "name": "SLA due (picker)",
     "custom": True, "schema": {"type": "datetime", "custom": _CF + "datetime",
                                "customId": 10054}},
    {"id": "customfield_10055", "key": "customfield_10055", "name": "Notes for agents",
     "custom": True, "schema": {"type": "string", "custom": _CF + "textarea",
                                "customId": 10055}},
]
STATUSES = {"1": "Open", "3": "In Progress", "10001": "Waiting for customer",
            "5": "Resolved", "6": "Closed"}
PRIORITIES = {"2": "High", "3": "Medium", "4": "Low"}

_JQL_RE = re.compile(
    r'^(?:project in \((?P<projects>[^)]*)\))?(?: AND )?'
    r'(?:updated >= "(?P<lit>\d{4}/\d\d/\d\d \d\d:\d\d)")? ORDER BY updated ASC, key ASC$')


def jira_time(dt: datetime, zone: ZoneInfo) -> str:
    """``2026-01-18T17:27:50.429+1100``: JIRA's form, in ``zone``."""
    local = dt.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + \
        local.strftime("%z")


def read_literal(lit: str, zone: ZoneInfo) -> datetime:
    """How the fake reads a JQL literal: the later instant of an ambiguous wall time."""
    wall = datetime.strptime(lit, "%Y/%m/%d %H:%M")
    a, b = (wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
    # a gap: fold=0 uses the offset before the jump, i.e. shifted forward as Java does
    return max(a, b)


class FakeJira:
    """A JIRA Cloud (or Data Center, ``cloud=False``) tracker with a controllable clock."""

    def __init__(self, *, cloud: bool = True, user_zone: str | None = "America/New_York",
                 server_zone: str = "Australia/Sydney",
                 start: datetime = datetime(2026, 1, 18, 6, 0, tzinfo=UTC),
                 tick: timedelta = timedelta(seconds=7, milliseconds=429),
                 projects: Sequence[str] = ("SD",), field_ids: bool = True) -> None:
        self.cloud = cloud
        #: whether changelog items carry ``fieldId`` (False: older Data Center)
        self.field_ids = field_ids
        self.api = "/rest/api/3" if cloud else "/rest/api/2"
        self.user_zone = user_zone
        self.server_zone = ZoneInfo(server_zone)
        self.now = start
        self.tick = tick
        self.projects = {p: str(10000 + i) for i, p in enumerate(projects)}
        self.issues: dict[str, dict[str, Any]] = {}
        self.fields = [*SYSTEM_FIELDS, *CUSTOM_FIELDS]
        #: fields a PUT may set (the "edit screen"); others are refused with 400
        self.editable = {"summary", "description", "priority", "labels", "components",
                         "customfield_10050", "customfield_10051", "customfield_10052",
                         "customfield_10053", "customfield_10054", "customfield_10055"}
        self._ids = itertools.count(10001)
        self._numbers = {p: itertools.count(1) for p in projects}
        self._comment_ids = itertools.count(20001)
        self._history_ids = itertools.count(30001)
        self._tokens: dict[str, tuple[str, int]] = {}
        self._token_ids = itertools.count(1)
        #: set to make every request answer with this (status, headers, body)
        self.fail_with: tuple[int, dict[str, str], Any] | None = None
        #: (method, path) -> (status, headers, body): one route answering like that
        self.overrides: dict[tuple[str, str], tuple[int, dict[str, str], Any]] = {}
        #: called before a search page is answered (tests edit issues mid-paging)
        self.before_page: Any = None
        self.bridge_name = "SLA Bot"
        #: whether the sync account may send notifyUsers=false
        self.admin = False

    # -- clock and people ------------------------------------------------------------------------

    def _tick(self) -> datetime:
        self.now += self.tick
        return self.now

    def _ts(self, dt: datetime) -> str:
        return jira_time(dt, self.server_zone)

    def create(self, summary: str, *, project: str = "SD", reporter: str = "Alice Customer",
               status: str = "Open", priority: str = "Medium",
               fields: Mapping[str, Any] | None = None,
               labels: Sequence[str] = ()) -> str:
        at = self._tick()
        key = f"{project}-{next(self._numbers[project])}"
        sid = next(k for k, v in STATUSES.items() if v == status)
        pid = next(k for k, v in PRIORITIES.items() if v == priority)
        self.issues[key] = {
            "id": str(next(self._ids)), "key": key,
            "fields": {
                "summary": summary, "description": None,
                "status": {"id": sid, "name": status,
                           "statusCategory": {"key": "new" if sid == "1" else "indeterminate"}},
                "priority": {"id": pid, "name": priority},
                "labels": list(labels), "created": at, "updated": at,
                "reporter": {"accountId": "acc-" + reporter.split()[0].lower(),
                             "displayName": reporter},
                "project": {"id": self.projects[project], "key": project,
                            "name": f"Project {project}"},
                "components": [],
                **{f["id"]: None for f in CUSTOM_FIELDS},
                **dict(fields or {}),
            },
            "changelog": [], "comments": [],
        }
        return key

    def comment(self, key: str, text: str, *, author: str = "Bob Agent",
                visibility: Mapping[str, str] | None = None, internal: bool | None = None,
                body: Any = None) -> None:
        at = self._tick()
        issue = self.issues[key]
        c: dict[str, Any] = {
            "id": str(next(self._comment_ids)),
            "author": {"accountId": "acc-" + author.split()[0].lower(), "displayName": author},
            "body": body if body is not None else (self._adf(text) if self.cloud else text),
            "created": at, "updated": at, "properties": []}
        if visibility:
            c["visibility"] = dict(visibility)
        if internal is not None:
            c["properties"].append({"key": "sd.public.comment", "value": {"internal": internal}})
        issue["comments"].append(c)
        issue["fields"]["updated"] = at

    def set_labels(self, key: str, labels: Sequence[str], *, author: str = "Bob Agent") -> None:
        self._change(key, author, {"labels": list(labels)})

    def transition(self, key: str, status: str, *, author: str = "Bob Agent") -> None:
        sid = next(k for k, v in STATUSES.items() if v == status)
        self._change(key, author, {"status": {"id": sid, "name": status}})

    def set_field(self, key: str, field_id: str, value: Any, *, author: str = "Bob Agent"
                  ) -> None:
        self._change(key, author, {field_id: value})

    def _change(self, key: str, author: str, changes: Mapping[str, Any]) -> None:
        at = self._tick()
        issue = self.issues[key]
        items = []
        for fid, new in changes.items():
            old = issue["fields"].get(fid)
            issue["fields"][fid] = new
            fdef = next(f for f in self.fields if f["id"] == fid)
            item = {
                "field": fid if not fdef["custom"] else fdef["name"],
                "fieldtype": "custom" if fdef["custom"] else "jira",
                "fieldId": fid,
                "from": _raw_id(old), "fromString": _as_string(old),
                "to": _raw_id(new), "toString": _as_string(new)}
            if not self.field_ids:
                del item["fieldId"]
            items.append(item)
        issue["changelog"].append({
            "id": str(next(self._history_ids)),
            "author": {"accountId": "acc-" + author.split()[0].lower(),
                       "displayName": author},
            "created": at, "items": items})
        issue["fields"]["updated"] = at

    @staticmethod
    def _adf(text: str) -> dict[str, Any]:
        return {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]}
            for line in text.split("\n\n")]}

    # -- HTTP ------------------------------------------------------------------------------------

    def install(self, rsps: responses.RequestsMock) -> FakeJira:
        pattern = re.compile(re.escape(BASE) + r"/.*")
        for method in ("GET", "PUT", "POST", "DELETE"):
            rsps.add_callback(method, pattern, callback=self._handle)
        return self

    def _authorized(self, request: Any) -> bool:
        auth = request.headers.get("Authorization", "")
        if self.cloud:
            want = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
            return auth == f"Basic {want}"
        return auth == f"Bearer {TOKEN}"

    def _handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.fail_with is not None:
            status, headers, body = self.fail_with
            return status, headers, json.dumps(body)
        url = urlsplit(request.url)
        path = unquote(url.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = json.loads(request.body) if request.body else None
        if (request.method, path) in self.overrides:
            status, headers, data = self.overrides[(request.method, path)]
            return status, headers, json.dumps(data)
        if path == "/rest/api/2/serverInfo":
            return self._json(200, {
                "baseUrl": BASE, "deploymentType": "Cloud" if self.cloud else "Server",
                "serverTime": self._ts(self.now), "version": "1001.0.0-SNAPSHOT"
                if self.cloud else "9.12.4"})
        if not self._authorized(request):
            return self._json(401, {"errorMessages": ["You are not authenticated. "
                                                      "Authentication required to perform "
                                                      "this operation."], "errors": {}})
        if not path.startswith(self.api + "/"):
            return self._json(404, {"errorMessages": [f"No resource at {path}"]})
        route = path[len(self.api):]
        method = request.method
        if route == "/myself" and method == "GET":
            me = {"accountId": "acc-sync", "displayName": self.bridge_name, "active": True,
                  "emailAddress": EMAIL}
            if self.user_zone:
                me["timeZone"] = self.user_zone
            return self._json(200, me)
        if route == "/field" and method == "GET":
            return self._json(200, self.fields)
        if route == "/status" and method == "GET":
            return self._json(200, [{"id": k, "name": v} for k, v in STATUSES.items()])
        m = re.fullmatch(r"/project/([^/]+)", route)
        if m and method == "GET":
            if m.group(1) not in self.projects:
                return self._json(404, {"errorMessages": ["No project could be found with "
                                                          f"key '{m.group(1)}'."]})
            return self._json(200, {"id": self.projects[m.group(1)], "key": m.group(1)})
        if route == ("/search/jql" if self.cloud else "/search") and method == "GET":
            return self._search(q)
        m = re.fullmatch(r"/issue/([^/]+)(/changelog|/comment)?", route)
        if m:
            issue = self._find(m.group(1))
            if issue is None:
                return self._json(404, {"errorMessages": ["Issue does not exist or you do "
                                                          "not have permission to see it."],
                                        "errors": {}})
            sub = m.group(2)
            if sub is None and method == "GET":
                return self._json(200, self._issue_json(issue, q))
            if sub is None and method == "PUT":
                return self._edit(issue, body or {}, q)
            if sub == "/changelog" and method == "GET" and self.cloud:
                return self._changelog(issue, q)
            if sub == "/comment" and method == "GET":
                return self._comments(issue, q)
            if sub == "/comment" and method == "POST":
                return self._add_comment(issue, body or {})
        return self._json(404, {"errorMessages": [f"No {method} at {path}"]})

    @staticmethod
    def _json(status: int, data: Any) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": "application/json"}, json.dumps(data)

    def _find(self, key_or_id: str) -> dict[str, Any] | None:
        if key_or_id in self.issues:
            return self.issues[key_or_id]
        return next((i for i in self.issues.values() if i["id"] == key_or_id), None)

    def _fields_out(self, issue: Mapping[str, Any], wanted: str | None) -> dict[str, Any]:
        names = None if not wanted or wanted in ("*all", "*navigable") else \
            [f for f in wanted.split(",") if f]
        out = {}
        for k, v in issue["fields"].items():
            if names is not None and k not in names:
                continue
            out[k] = self._ts(v) if isinstance(v, datetime) else v
        return out

    def _issue_json(self, issue: Mapping[str, Any], q: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": issue["id"], "key": issue["key"],
                               "self": f"{BASE}{self.api}/issue/{issue['id']}",
                               "fields": self._fields_out(issue, q.get("fields"))}
        if "changelog" in (q.get("expand") or "").split(","):
            hist = [self._history_json(h) for h in reversed(issue["changelog"])]  # newest first
            out["changelog"] = {"startAt": 0, "maxResults": len(hist), "total": len(hist),
                                "histories": hist}
        return out

    def _history_json(self, h: Mapping[str, Any]) -> dict[str, Any]:
        return {**h, "created": self._ts(h["created"])}

    # -- search ----------------------------------------------------------------------------------

    def _search(self, q: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        try:
            max_results = int(q.get("maxResults", "50"))
        except ValueError:
            return self._json(400, {"errorMessages": ["maxResults must be a number"]})
        if self.cloud:
            token = q.get("nextPageToken")
            if token:
                if token not in self._tokens or self._tokens[token][0] != q.get("jql"):
                    return self._json(400, {"errorMessages": ["Invalid nextPageToken"]})
                offset = self._tokens[token][1]
            else:
                offset = 0
        else:
            offset = int(q.get("startAt", "0"))
        jql = q.get("jql") or ""
        m = _JQL_RE.match(jql)
        if not m or not (m.group("projects") or m.group("lit")):
            return self._json(400, {"errorMessages": [f"Error in the JQL Query: {jql!r} is "
                                                      "not understood (or is unbounded)"]})
        if self.before_page is not None:
            self.before_page(self, offset)
        projects = None
        if m.group("projects"):
            projects = [p.strip().strip('"') for p in m.group("projects").split(",")]
            unknown = [p for p in projects if p not in self.projects]
            if unknown:
                return self._json(400, {"errorMessages": [
                    f"The value '{unknown[0]}' does not exist for the field 'project'."]})
        lower = None
        if m.group("lit"):
            if not self.user_zone:
                return self._json(500, {"errorMessages": ["no zone"]})
            lower = read_literal(m.group("lit"), ZoneInfo(self.user_zone))
        hits = [i for i in self.issues.values()
                if (projects is None or i["fields"]["project"]["key"] in projects)
                and (lower is None or i["fields"]["updated"] >= lower)]
        hits.sort(key=lambda i: (i["fields"]["updated"], i["fields"]["project"]["key"],
                                 int(i["key"].split("-")[1])))
        page = hits[offset:offset + max_results]
        issues = [{"id": i["id"], "key": i["key"], "self": f"{BASE}{self.api}/issue/{i['id']}",
                   "fields": self._fields_out(i, q.get("fields") or "id")} for i in page]
        if not self.cloud:
            return self._json(200, {"startAt": offset, "maxResults": max_results,
                                    "total": len(hits), "issues": issues})
        out: dict[str, Any] = {"issues": issues, "isLast": offset + len(page) >= len(hits)}
        if not out["isLast"]:
            token = f"tok{next(self._token_ids)}"
            self._tokens[token] = (jql, offset + len(page))
            out["nextPageToken"] = token
        return self._json(200, out)

    # -- changelog and comments ------------------------------------------------------------------

    def _changelog(self, issue: Mapping[str, Any], q: Mapping[str, str]
                   ) -> tuple[int, dict[str, str], str]:
        try:
            start, size = int(q.get("startAt", "0")), int(q.get("maxResults", "100"))
        except ValueError:
            return self._json(400, {"errorMessages": ["startAt and maxResults must be "
                                                      "numbers"], "errors": {}})
        values = [self._history_json(h) for h in issue["changelog"][start:start + size]]
        total = len(issue["changelog"])
        return self._json(200, {"startAt": start, "maxResults": size, "total": total,
                                "isLast": start + len(values) >= total, "values": values})

    def _comments(self, issue: Mapping[str, Any], q: Mapping[str, str]
                  ) -> tuple[int, dict[str, str], str]:
        try:
            start, size = int(q.get("startAt", "0")), int(q.get("maxResults", "100"))
        except ValueError:
            return self._json(400, {"errorMessages": ["startAt and maxResults must be "
                                                      "numbers"], "errors": {}})
        expand = (q.get("expand") or "").split(",")
        out = []
        for c in issue["comments"][start:start + size]:
            d = {k: v for k, v in c.items() if k != "properties"}
            d["created"], d["updated"] = self._ts(c["created"]), self._ts(c["updated"])
            if "properties" in expand:
                d["properties"] = c["properties"]
            out.append(d)
        return self._json(200, {"startAt": start, "maxResults": size,
                                "total": len(issue["comments"]), "comments": out})

    def _add_comment(self, issue: dict[str, Any], body: Mapping[str, Any]
                     ) -> tuple[int, dict[str, str], str]:
        b = body.get("body")
        if self.cloud and not (isinstance(b, Mapping) and b.get("type") == "doc"):
            return self._json(400, {"errorMessages": [], "errors": {
                "comment": "Comment body is not valid!"}})
        if not self.cloud and not isinstance(b, str):
            return self._json(400, {"errorMessages": ["Can not deserialize instance of "
                                                      "java.lang.String"]})
        props = list(body.get("properties") or ())
        self.comment(issue["key"], "", author=self.bridge_name, body=b,
                     visibility=body.get("visibility"))
        issue["comments"][-1]["properties"] = props
        c = issue["comments"][-1]
        return self._json(201, {**{k: v for k, v in c.items() if k != "properties"},
                                "created": self._ts(c["created"]),
                                "updated": self._ts(c["updated"])})

    # -- editing ---------------------------------------------------------------------------------

    def _edit(self, issue: dict[str, Any], body: Mapping[str, Any], q: Mapping[str, str]
              ) -> tuple[int, dict[str, str], str]:
        if q.get("notifyUsers") == "false" and not self.admin:
            return self._json(403, {"errorMessages": ["To discard the user notification "
                                                      "either admin or project admin "
                                                      "permissions are required."]})
        fields = dict(body.get("fields") or {})
        update = dict(body.get("update") or {})
        errors: dict[str, str] = {}
        for fid in set(fields) & set(update):
            errors[fid] = f"Field {fid} is given in both fields and update."
        for fid in [*fields, *update]:
            if fid not in self.editable:
                errors[fid] = (f"Field '{fid}' cannot be set. It is not on the appropriate "
                               "screen, or unknown.")
        new_values: dict[str, Any] = {}
        for fid, value in fields.items():
            fdef = next((f for f in self.fields if f["id"] == fid), None)
            if fdef is None:
                continue
            kind = fdef["schema"]["type"]
            if kind == "string" and fdef["schema"].get("custom", "").endswith(":textarea"):
                if value is not None and not ((self.cloud and isinstance(value, Mapping))
                                              or (not self.cloud and isinstance(value, str))):
                    errors[fid] = "Operation value must be an Atlassian Document."
            elif kind == "string" and value is not None and not isinstance(value, str):
                errors[fid] = "Operation value must be a string"
            elif kind == "datetime" and value is not None:
                try:
                    value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
                except (TypeError, ValueError):
                    errors[fid] = "Invalid date format."
            elif fid == "labels":
                errors[fid] = "labels are set through update here (test rule)"
            new_values[fid] = value
        for fid, ops in update.items():
            current = list(issue["fields"].get(fid) or [])
            for op in ops:
                ((verb, arg),) = op.items()
                if fid == "labels" or fid in self._labels_cf():
                    for label in (arg if verb == "set" else [arg]):
                        if not isinstance(label, str) or re.search(r"\s", label):
                            errors[fid] = (f"The label '{label}' contains spaces which is "
                                           "invalid.")
                    if verb == "add" and arg not in current:
                        current.append(arg)
                    elif verb == "remove" and arg in current:
                        current.remove(arg)
                    elif verb == "set":
                        current = list(arg)
                else:
                    errors[fid] = f"Operation {verb} is not supported for {fid} here."
            new_values[fid] = current
        if errors:
            return self._json(400, {"errorMessages": [], "errors": errors})
        changes = {k: v for k, v in new_values.items() if v != issue["fields"].get(k)}
        if changes:
            self._change(issue["key"], self.bridge_name, changes)
        else:
            # pessimistic: a PUT that changes nothing still moves `updated` (unverified)
            issue["fields"]["updated"] = self._tick()
        return 204, {}, ""

    def _labels_cf(self) -> set[str]:
        return {f["id"] for f in self.fields
                if f["schema"].get("custom", "").endswith(":labels")}


def _raw_id(v: Any) -> str | None:
    if isinstance(v, Mapping):
        return str(v.get("id")) if v.get("id") is not None else None
    return None


def _as_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, Mapping):
        return str(v.get("value") or v.get("name") or "")
    if isinstance(v, list):
        return " ".join(_as_string(x) for x in v)
    return str(v)
