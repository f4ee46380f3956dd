"""A stateful fake Bugzilla 5.x REST API on ``responses`` callbacks.

It answers in the shapes of Bugzilla 5.0's REST documentation (``docs/en/rst/api/core/v1``:
general.rst, bug.rst, comment.rst, field.rst, product.rst, bugzilla.rst; the payload files
next to the tests are copies of those examples), corrected to what a real Bugzilla 5.2 answered
(``test_real_*.py`` run against one; ``payloads/real_5.2.json`` holds its answers): error
texts, error bodies with ``documentation``, date/time values in history without a zone, a
cleared date/time field ``null`` but a cleared free text ``""``, a blank comment accepted and
ignored. It follows the server's source where the backend depends on it:

- ``api_key`` is read from the query string only (5.0 has no header auth); no key means the
  anonymous user (reads work, ``PUT`` fails with 410), a wrong key fails every call with 306;
- search: ``last_change_time`` is ``>=`` at one second, ``order=changeddate,bug_id``, a
  ``limit`` above ``max_search_results`` is cut to it, advanced ``f1/o1/v1`` with
  ``bug_id``/``greaterthan``, ``offset`` without ``limit`` is error 50, no criterion at all is
  error 1000 only with ``allow_no_criteria = False`` (5.2's default search_allow_no_criteria
  accepts it);
- ``Bug.update``: keywords ``add``/``remove``/``set`` (an unknown keyword is error 51, HTTP
  404), free text and date/time custom fields (``YYYY-MM-DD HH:MM:SS`` in the server's zone,
  read back in UTC with ``Z``, but ``changes`` and history hold the database text: local,
  no zone), one ``comment`` (a blank one is ignored); ``last_change_time`` moves only when
  something changed; ``changes`` lists what did;
- history: activity rows grouped by ``(when, who)``, and two changes of one field by one user
  within one second joined with a space, as ``Bugzilla::Bug::GetBugActivity`` does.

The clock moves one second per change (``tick``); set ``tick = False`` to put everything in
one second. ``poll_advance`` moves it on at each ``/rest/time`` too, as time passes between
two polls of a real server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import responses

BASE = "https://bugzilla.example.org"
KEY = "bz-test-key-7f3a9c21e6d04b58"
AGENT = "agent@example.org"
REPORTER = "reporter@example.org"
BRIDGE = "sla-bot@example.org"

#: the ``documentation`` every error body of a real 5.2 carries
DOCUMENTATION = "https://bugzilla.readthedocs.org/en/5.0/api/"
STATUSES = ("UNCONFIRMED", "CONFIRMED", "IN_PROGRESS", "RESOLVED", "VERIFIED")
OPEN = {"UNCONFIRMED", "CONFIRMED", "IN_PROGRESS"}
PRIORITIES = ("P1", "P2", "P3", "P4", "P5", "---")
SEVERITIES = ("blocker", "critical", "major", "normal", "minor", "trivial", "enhancement")
IMPACTS = ("---", "Single user", "Multiple users", "Software wide")
PLANS = ("---", "essentials", "professional", "premium")
HUMAN_KEYWORDS = ("regression", "customer-label", "customer-vip")
SLA_KEYWORDS = ("sla-critical", "sla-high", "sla-medium", "sla-low", "sla-at-risk-response",
                "sla-at-risk-resolution", "sla-breached-response", "sla-breached-resolution",
                "sla-paused")


class _Refused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, list[str]]
    body: Any
    headers: Mapping[str, str]

    def param(self, name: str) -> str | None:
        v = self.params.get(name)
        return v[0] if v else None


@dataclass
class _CustomField:
    name: str
    type: int
    values: tuple[str, ...] = ()
    display: str = ""


@dataclass
class FakeBugzilla:
    base: str = BASE
    key: str = KEY
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    tick: bool = True
    max_search_results: int = 10000
    server_zone: str = "UTC"
    #: products -> components
    products: dict[str, list[str]] = field(default_factory=lambda: {
        "Clinic": ["Support", "Billing"], "Lab": ["Imaging"]})
    keywords: list[str] = field(default_factory=lambda: [*HUMAN_KEYWORDS, *SLA_KEYWORDS])
    custom: dict[str, _CustomField] = field(default_factory=lambda: {
        "cf_impact": _CustomField("cf_impact", 2, IMPACTS, "Impact"),
        "cf_support_plan": _CustomField("cf_support_plan", 2, PLANS, "Support plan"),
        "cf_sla_response_due": _CustomField("cf_sla_response_due", 1, (), "SLA response due"),
        "cf_sla_resolution_due": _CustomField("cf_sla_resolution_due", 5, (),
                                              "SLA resolution due"),
        "cf_due_date": _CustomField("cf_due_date", 9, (), "Due date"),
    })
    #: fields a PUT is accepted for but silently not changed (hidden by field visibility)
    ignored_fields: set[str] = field(default_factory=set)
    #: False: the API user may read but not edit (every update fails with 109)
    can_edit: bool = True
    #: True: behave like a proxy that drops the advanced-search clause
    ignore_bug_id_clause: bool = False
    #: False: a search without any criterion is error 1000 (search_allow_no_criteria off)
    allow_no_criteria: bool = True
    #: how far the clock moves at each ``GET /rest/time`` (a poll), besides the changes
    poll_advance: timedelta = field(default_factory=timedelta)
    #: called with (fake, call) before each answer: to change the tracker mid-scan
    on_request: Callable[[FakeBugzilla, Call], None] | None = None

    bugs: dict[int, dict[str, Any]] = field(default_factory=dict)
    activity: dict[int, list[tuple[datetime, str, str, str, str]]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _next_bug: int = 1
    _next_comment: int = 100

    # -- wiring -------------------------------------------------------------------------------

    def install(self, rsps: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(self.base) + r"/rest/.*")
        for method in (responses.GET, responses.PUT, responses.POST):
            rsps.add_callback(method, pattern, callback=self._dispatch)

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    # -- a person in the UI -------------------------------------------------------------------

    def stamp(self) -> datetime:
        if self.tick:
            self.now += timedelta(seconds=1)
        return self.now

    def create_bug(self, summary: str, *, product: str = "Clinic", component: str = "Support",
                   who: str = REPORTER, description: str = "It is broken.",
                   status: str = "CONFIRMED", **fields: Any) -> int:
        bid = self._next_bug
        self._next_bug += 1
        at = _z(self.stamp())
        bug: dict[str, Any] = {
            "id": bid, "alias": [], "summary": summary, "product": product,
            "component": component, "version": "unspecified", "status": status,
            "resolution": "", "priority": "P3", "severity": "normal", "keywords": [],
            "whiteboard": "", "creator": who, "assigned_to": AGENT, "qa_contact": "",
            "creation_time": at, "last_change_time": at, "deadline": None, "is_open": True,
            "classification": "Unclassified", "op_sys": "All", "platform": "All", "url": "",
            "target_milestone": "---", "cc": [], "groups": [], "flags": [], "see_also": [],
            "blocks": [], "depends_on": [], "dupe_of": None, "is_confirmed": True,
            "is_cc_accessible": True, "is_creator_accessible": True,
        }
        for cf in self.custom.values():
            bug[cf.name] = "---" if cf.type == 2 else (None if cf.type in (5, 9) else "")
        bug.update(fields)
        self.bugs[bid] = bug
        self.activity[bid] = []
        self.comments[bid] = []
        self._add_comment(bid, description, who, False, at)
        return bid

    def update(self, bid: int, who: str = AGENT, **params: Any) -> dict[str, Any]:
        """Edit a bug as a person would (same rules as ``PUT /rest/bug``)."""
        return self._update(bid, params, who)

    def comment(self, bid: int, text: str, who: str = AGENT, private: bool = False) -> None:
        self._update(bid, {"comment": {"body": text, "is_private": private}}, who)

    # -- the server ---------------------------------------------------------------------------

    def _dispatch(self, request: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(self.base).path) + len("/rest/"):].strip("/")
        params = parse_qs(parts.query, keep_blank_values=True)
        body = json.loads(request.body) if request.body else None
        call = Call(request.method, path, params, body, dict(request.headers))
        self.calls.append(call)
        if self.on_request is not None:
            self.on_request(self, call)
        try:
            user = self._login(params)
            data = self._route(call, user)
        except _Refused as e:
            return e.status, {"Content-Type": "application/json"}, json.dumps(
                {"error": True, "code": e.code, "message": e.message,
                 "documentation": DOCUMENTATION})
        return 200, {"Content-Type": "application/json"}, json.dumps(data)

    def _login(self, params: Mapping[str, list[str]]) -> str | None:
        given = (params.get("api_key") or params.get("Bugzilla_api_key") or [None])[0]
        if given is None:
            return None  # 5.0 reads no X-BUGZILLA-API-KEY header: anonymous
        if given != self.key:
            raise _Refused(400, 306, "The API key you specified is invalid. Please check that "
                                     "you typed it correctly.")
        return BRIDGE

    def _route(self, call: Call, user: str | None) -> Any:
        m, p = call.method, call.path
        if m == "GET" and p == "time":
            self.now += self.poll_advance
            t = _z(self.now)
            return {"web_time_utc": t, "db_time": t, "web_time": t, "tz_offset": "+0000",
                    "tz_short_name": "UTC", "tz_name": "UTC"}
        if m == "GET" and p == "parameters":
            if user is None:
                return {"parameters": {"maintainer": "admin@example.org", "requirelogin": "0"}}
            return {"parameters": {"maintainer": "admin@example.org", "requirelogin": "0",
                                   "usestatuswhiteboard": "1", "useclassification": "1",
                                   "urlbase": self.base + "/"}}
        if m == "GET" and p == "bug":
            return self._search(call.params)
        if m == "GET" and (g := re.fullmatch(r"bug/(\d+)", p)):
            bug = self._bug(int(g[1]))
            return {"bugs": [_only(bug, call.param("include_fields"))], "faults": []}
        if m == "GET" and (g := re.fullmatch(r"bug/(\d+)/history", p)):
            return {"bugs": [{"id": int(g[1]), "alias": [], "history": self._history(int(g[1]))}]}
        if m == "GET" and (g := re.fullmatch(r"bug/(\d+)/comment", p)):
            bid = int(self._bug(int(g[1]))["id"])
            return {"bugs": {str(bid): {"comments": self.comments[bid]}}, "comments": {}}
        if m == "PUT" and (g := re.fullmatch(r"bug/(\d+)", p)):
            if user is None:
                raise _Refused(401, 410, "You must log in before using this part of Bugzilla.")
            ids = {int(g[1]), *(int(i) for i in (call.body or {}).get("ids") or ())}
            out = []
            for bid in sorted(ids):
                changes = self._update(bid, call.body or {}, user)
                b = self.bugs[bid]
                out.append({"id": bid, "alias": [], "last_change_time": b["last_change_time"],
                            "changes": changes})
            return {"bugs": out}
        if m == "GET" and p == "field/bug":
            return {"fields": self._fields()}
        if m == "GET" and p == "product":
            names = call.params.get("names") or list(self.products)
            return {"products": [self._product(n) for n in names if n in self.products]}
        raise _Refused(404, 32614, f"A REST API resource was not found for '{m} /{p}'.")

    # -- search -------------------------------------------------------------------------------

    def _search(self, params: Mapping[str, list[str]]) -> dict[str, Any]:
        crit = {k for k in params if k not in ("limit", "offset", "api_key", "Bugzilla_api_key",
                                               "include_fields", "exclude_fields")}
        if not crit and not self.allow_no_criteria:
            raise _Refused(400, 1000, "The search you are attempting to run does not contain "
                                      "any search terms.")
        if "offset" in params and "limit" not in params:
            raise _Refused(400, 50, "The function Bug.search() requires a limit argument, and "
                                    "that argument was not set.")
        bugs = list(self.bugs.values())
        if params.get("product"):
            bugs = [b for b in bugs if b["product"] in params["product"]]
        if params.get("component"):
            bugs = [b for b in bugs if b["component"] in params["component"]]
        if params.get("id"):
            ids = {int(x) for v in params["id"] for x in v.split(",")}
            bugs = [b for b in bugs if b["id"] in ids]
        if params.get("last_change_time"):
            since = _parse_z(params["last_change_time"][0])
            bugs = [b for b in bugs if _parse_z(b["last_change_time"]) >= since]
        if params.get("f1") and not self.ignore_bug_id_clause:
            assert params["f1"] == ["bug_id"] and params["o1"] == ["greaterthan"], params
            floor = int(params["v1"][0])
            bugs = [b for b in bugs if b["id"] > floor]
        order = (params.get("order") or [""])[0]
        if order == "changeddate,bug_id":
            bugs.sort(key=lambda b: (_parse_z(b["last_change_time"]), b["id"]))
        elif order:
            raise AssertionError(f"the fake knows no order {order!r}")
        limit = int((params.get("limit") or ["-1"])[0])
        offset = int((params.get("offset") or ["0"])[0])
        if limit != 0:
            if limit < 0 or limit > self.max_search_results:
                limit = self.max_search_results
            bugs = bugs[offset:offset + limit]
        include = (params.get("include_fields") or [None])[0]
        return {"bugs": [_only(b, include) for b in bugs]}

    def _bug(self, bid: int) -> dict[str, Any]:
        if bid not in self.bugs:
            raise _Refused(404, 101, f"Bug #{bid} does not exist.")
        return self.bugs[bid]

    # -- update -------------------------------------------------------------------------------

    def _update(self, bid: int, params: Mapping[str, Any], who: str) -> dict[str, Any]:
        bug = dict(self._bug(bid))
        if not self.can_edit and who == BRIDGE:
            raise _Refused(401, 109, f"You are not authorized to edit bug #{bid}.")
        changes: dict[str, tuple[str, str]] = {}
        for name, value in params.items():
            if name in ("ids", "comment", "api_key"):
                continue
            if name in self.ignored_fields:
                continue
            if name == "keywords":
                current = list(bug["keywords"])
                for k in [*(value.get("set") or ()), *(value.get("add") or ()),
                          *(value.get("remove") or ())]:
                    if k not in self.keywords:
                        raise _Refused(404, 51, f"There is no keyword named '{k}'. See the "
                                                "list of available keywords.")
                if "set" in value:
                    new = sorted(set(value["set"]))
                else:
                    new = sorted((set(current) | set(value.get("add") or ()))
                                 - set(value.get("remove") or ()))
                if new != sorted(current):
                    gone = sorted(set(current) - set(new))
                    came = sorted(set(new) - set(current))
                    changes["keywords"] = (", ".join(gone), ", ".join(came))
                    bug["keywords"] = new
                continue
            if name == "status":
                if value not in STATUSES:
                    raise _Refused(404, 51, f"There is no status named '{value}'.")
                bug["is_open"] = value in OPEN
                if value in OPEN and bug["resolution"]:
                    changes["resolution"] = (bug["resolution"], "")
                    bug["resolution"] = ""
            if name == "priority" and value not in PRIORITIES:
                raise _Refused(404, 51, f"There is no Priority named '{value}'.")
            cf = self.custom.get(name)
            if cf is not None:
                value = self._custom_value(cf, value)
            old = bug.get(name)
            if name in bug and old != value:
                changes[name] = (self._activity_text(cf, old), self._activity_text(cf, value))
                bug[name] = value
        comment = params.get("comment")
        text = ""
        if comment is not None:
            text = comment.get("body", comment.get("comment")) or ""
            if not text.strip():
                comment = None  # a real 5.2 answers 200 and adds nothing
        if not changes and comment is None:
            return {}
        at = _z(self.stamp())
        bug["last_change_time"] = at
        self.bugs[bid] = bug
        for name, (removed, added) in changes.items():
            self.activity[bid].append((_parse_z(at), who, name, removed, added))
        if comment is not None:
            self._add_comment(bid, text, who, bool(comment.get("is_private")), at)
        return {k: {"removed": r, "added": a} for k, (r, a) in changes.items()}

    def _custom_value(self, cf: _CustomField, value: Any) -> Any:
        if cf.type == 1:
            if len(str(value)) > 255:
                raise _Refused(400, 104, f"The text you entered in the {cf.display} field is "
                                         f"too long ({len(str(value))} characters, above the "
                                         "maximum length allowed of 255 characters).")
            return str(value)
        if cf.type == 2:
            if value not in cf.values:
                raise _Refused(404, 51, f"There is no {cf.display} named '{value}'.")
            return value
        if cf.type in (5, 9):
            text = str(value or "").strip()
            if re.fullmatch(r"[\s0\W]*", text):
                return None
            m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?: (\d{2}:\d{2}(?::\d{2})?))?", text)
            if not m or (cf.type == 9 and m[2]):
                raise _Refused(400, 56, f"'{text}' is not a legal date. Please use the format "
                                        "'YYYY-MM-DD'.")
            if cf.type == 9:
                return m[1]
            local = datetime.fromisoformat(f"{m[1]}T{m[2] or '00:00:00'}")
            return _z(local.replace(tzinfo=ZoneInfo(self.server_zone)))
        return value

    def _activity_text(self, cf: _CustomField | None, value: Any) -> str:
        """A value as ``changes`` and history show it: a date/time field as the database
        holds it (local time of the server, no zone: ``2026-12-02 08:05:43``)."""
        if cf is not None and cf.type == 5 and value:
            local = _parse_z(str(value)).astimezone(ZoneInfo(self.server_zone))
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return _activity_text(value)

    def _add_comment(self, bid: int, text: str, who: str, private: bool, at: str) -> None:
        self._next_comment += 1
        self.comments[bid].append({
            "id": self._next_comment, "bug_id": bid, "attachment_id": None,
            "count": len(self.comments[bid]), "text": text, "creator": who, "time": at,
            "creation_time": at, "is_private": private, "tags": []})

    # -- history ------------------------------------------------------------------------------

    def _history(self, bid: int) -> list[dict[str, Any]]:
        self._bug(bid)
        out: list[dict[str, Any]] = []
        for when, who, name, removed, added in self.activity[bid]:
            if out and out[-1]["_key"] == (when, who):
                changes = out[-1]["changes"]
                same = [c for c in changes if c["field_name"] == name]
                if same:  # GetBugActivity: one field, one user, one second -> one change
                    same[0]["removed"] = _join(same[0]["removed"], removed)
                    same[0]["added"] = _join(same[0]["added"], added)
                else:
                    changes.append({"field_name": name, "removed": removed, "added": added})
                continue
            out.append({"_key": (when, who), "when": _z(when), "who": who,
                        "changes": [{"field_name": name, "removed": removed, "added": added}]})
        for entry in out:
            del entry["_key"]
        return out

    # -- definitions --------------------------------------------------------------------------

    def _fields(self) -> list[dict[str, Any]]:
        def values(names: Iterable[str], **extra: Any) -> list[dict[str, Any]]:
            return [{"name": n, "sort_key": i * 100, "sortkey": i * 100,
                     "visibility_values": [], **extra} for i, n in enumerate(names)]

        def f(fid: int, name: str, display: str, ftype: int, vals: list[dict[str, Any]],
              custom: bool = False) -> dict[str, Any]:
            return {"id": fid, "name": name, "display_name": display, "type": ftype,
                    "is_custom": custom, "is_mandatory": False, "is_on_bug_entry": custom,
                    "visibility_field": None, "visibility_values": [], "value_field": None,
                    "values": vals}

        # a real Bugzilla 5.2 begins the list with the state before creation, named null
        status_vals = [{"name": None, "sort_key": 0, "sortkey": 0, "visibility_values": [],
                        "is_open": False, "can_change_to": [
                            {"name": "UNCONFIRMED", "comment_required": False}]}]
        status_vals += [{"name": s, "sort_key": i, "sortkey": i, "visibility_values": [],
                         "is_open": s in OPEN, "can_change_to": []}
                        for i, s in enumerate(STATUSES)]
        comps = [c for cs in self.products.values() for c in cs]
        out = [
            f(1, "bug_id", "Bug #", 0, []), f(2, "short_desc", "Summary", 1, []),
            f(3, "product", "Product", 2, []), f(4, "version", "Version", 2,
                                                 values(["unspecified"])),
            f(5, "rep_platform", "Hardware", 2, values(["All"])),
            f(7, "op_sys", "OS", 2, values(["All"])),
            f(8, "bug_status", "Status", 2, status_vals),
            f(9, "status_whiteboard", "Whiteboard", 1, []),
            f(10, "keywords", "Keywords", 8, values(self.keywords, description="")),
            f(11, "resolution", "Resolution", 2, values(["", "FIXED", "INVALID"])),
            f(12, "bug_severity", "Severity", 2, values(SEVERITIES)),
            f(13, "priority", "Priority", 2, values(PRIORITIES)),
            f(14, "component", "Component", 2, values(comps)),
            f(15, "assigned_to", "AssignedTo", 0, []), f(16, "reporter", "ReportedBy", 0, []),
            f(17, "deadline", "Deadline", 9, []), f(18, "delta_ts", "Changed", 0, []),
            f(19, "creation_ts", "Opened", 0, []),
            f(20, "target_milestone", "Target Milestone", 2, values(["---"])),
        ]
        for i, cf in enumerate(self.custom.values()):
            out.append(f(100 + i, cf.name, cf.display or cf.name, cf.type,
                         values(cf.values), custom=True))
        return out

    def _product(self, name: str) -> dict[str, Any]:
        return {"id": list(self.products).index(name) + 1, "name": name,
                "description": f"The {name} product.", "is_active": True,
                "default_milestone": "---", "has_unconfirmed": True,
                "classification": "Unclassified",
                "components": [{"id": i + 1, "name": c, "description": c, "is_active": True,
                                "default_assigned_to": AGENT, "default_qa_contact": "",
                                "sort_key": 0, "flag_types": {"bug": [], "attachment": []}}
                               for i, c in enumerate(self.products[name])],
                "versions": [{"id": 1, "name": "unspecified", "sort_key": 0,
                              "is_active": True}],
                "milestones": [{"id": 1, "name": "---", "sort_key": 0, "is_active": True}]}


def _z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _activity_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _join(current: str, new: str) -> str:
    """``Bugzilla::Bug::_join_activity_entries`` for ordinary fields."""
    if current == "":
        return new
    if new[:1] in (",", " "):
        return current + new
    return f"{current} {new}"


def _only(bug: Mapping[str, Any], include: str | None) -> dict[str, Any]:
    if not include:
        return dict(bug)
    names = set(include.split(","))
    return {k: v for k, v in bug.items() if k in names}
