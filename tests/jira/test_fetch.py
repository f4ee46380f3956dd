"""Polling: nextPageToken paging, the JQL literal in the account's zone, dedupe, the cursor."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses

from tracker_bridge.errors import BackendError
from tracker_bridge.plugins.jira import JiraBackend
from tracker_bridge.plugins.jira.mapping import jql_literal

from .conftest import calls, payload, query
from .fakejira import BASE, FakeJira, read_literal

API = f"{BASE}/rest/api/3"
NY = ZoneInfo("America/New_York")
PAGES = {None: "search_jql_page1.json", "CAEaAggD": "search_jql_page2.json",
         "CAEaAggE": "search_jql_page3.json"}


def _issue(key: str, iid: str, updated: str) -> dict[str, Any]:
    issue = copy.deepcopy(payload("issue_SD-7.json"))
    issue.update(id=iid, key=key, self=f"{API}/issue/{iid}")
    issue["fields"]["updated"] = updated
    return issue


@pytest.fixture
def three_pages(rsps: responses.RequestsMock) -> responses.RequestsMock:
    """search/jql answering the three example pages by token; five issues to read."""
    def search(request: Any) -> tuple[int, dict[str, str], str]:
        token = query(request).get("nextPageToken")
        if token not in PAGES:
            return 400, {}, json.dumps({"errorMessages": ["Invalid nextPageToken"]})
        return 200, {}, json.dumps(payload(PAGES[token]))

    rsps.get(f"{API}/myself", json=payload("myself_new_york.json"))
    rsps.get(f"{API}/field", json=payload("field.json"))
    rsps.add_callback(responses.GET, f"{API}/search/jql", callback=search)
    for page in PAGES.values():
        for hit in payload(page)["issues"]:
            key = hit["key"]
            rsps.get(f"{API}/issue/{key}", json=_issue(key, hit["id"], hit["fields"]["updated"]))
            rsps.get(f"{API}/issue/{key}/changelog",
                     json={"startAt": 0, "maxResults": 100, "total": 0, "isLast": True,
                           "values": []})
            rsps.get(f"{API}/issue/{key}/comment",
                     json={"startAt": 0, "maxResults": 100, "total": 0, "comments": []})
    return rsps


def test_pages_until_the_token_is_absent(three_pages: responses.RequestsMock,
                                         make_backend: Callable[..., JiraBackend]) -> None:
    result = make_backend().fetch_changed(None)
    searches = calls(three_pages, "GET", "/rest/api/3/search/jql")
    assert [query(r).get("nextPageToken") for r in searches] == [None, "CAEaAggD", "CAEaAggE"]
    # the same query on every page, asking only for `updated`; bounded by the project
    assert {query(r)["jql"] for r in searches} == {
        'project in ("SD") ORDER BY updated ASC, key ASC'}
    assert {query(r)["fields"] for r in searches} == {"updated"}
    assert [t.key for t in result.tickets] == ["SD-1", "SD-2", "SD-3", "SD-4", "SD-5"]
    # the watermark is the newest `updated` as an instant: SD-5 (06:32:10.555 +0000) is
    # newer than SD-4 (17:31 +1100 = 06:31 UTC), though its text sorts lower
    cursor = json.loads(result.cursor or "")
    assert cursor["since"] == "2026-01-18T06:32:10.555+00:00"
    assert cursor["seen"]["10006"] == "2026-01-18T06:32:10.555+0000"  # JIRA's own text


def test_literal_is_in_the_account_zone(three_pages: responses.RequestsMock,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    cursor = json.dumps({"v": 1, "since": "2026-01-18T06:27:50.429+00:00", "seen": {}})
    make_backend(options={"overlap_seconds": 300}).fetch_changed(cursor)
    first = calls(three_pages, "GET", "/rest/api/3/search/jql")[0]
    # 06:27:50.429Z - 5 min = 06:22:50Z = 01:22:50 in New York (EST): floored to 01:22
    assert query(first)["jql"] == ('project in ("SD") AND updated >= "2026/01/18 01:22" '
                                   "ORDER BY updated ASC, key ASC")
    # /myself is read on every poll: the zone may change under a running bridge
    assert len(calls(three_pages, "GET", "/rest/api/3/myself")) >= 2


def test_repeats_are_skipped_on_id_and_updated(three_pages: responses.RequestsMock,
                                               make_backend: Callable[..., JiraBackend]) -> None:
    # SD-1 was returned at this very instant (written in another offset); SD-2 at an
    # older one, so it changed since
    cursor = json.dumps({"v": 1, "since": "2026-01-18T06:27:50.429+00:00", "seen": {
        "10002": "2026-01-18T06:27:50.429+0000", "10003": "2026-01-18T17:27:00.000+1100"}})
    result = make_backend().fetch_changed(cursor)
    assert [t.key for t in result.tickets] == ["SD-2", "SD-3", "SD-4", "SD-5"]
    assert not calls(three_pages, "GET", "/rest/api/3/issue/SD-1")


def test_an_unreadable_cursor_reads_everything_again(
        three_pages: responses.RequestsMock, make_backend: Callable[..., JiraBackend]) -> None:
    result = make_backend().fetch_changed("not json")
    assert len(result.tickets) == 5


def test_the_same_token_twice_is_an_error(rsps: responses.RequestsMock,
                                          make_backend: Callable[..., JiraBackend]) -> None:
    rsps.get(f"{API}/myself", json=payload("myself_new_york.json"))
    rsps.get(f"{API}/field", json=payload("field.json"))
    looping = dict(payload("search_jql_page1.json"), nextPageToken="again")
    rsps.get(f"{API}/search/jql", json=looping)
    with pytest.raises(BackendError, match="same nextPageToken"):
        make_backend().fetch_changed(None)


# -- the literal ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("lower", "zone", "literal"), [
    # plain: floored to the minute in the zone
    (datetime(2026, 1, 18, 6, 22, 50, tzinfo=UTC), "America/New_York", "2026/01/18 01:22"),
    (datetime(2026, 1, 18, 6, 22, 50, tzinfo=UTC), "UTC", "2026/01/18 06:22"),
    (datetime(2026, 1, 18, 6, 22, 50, tzinfo=UTC), "Asia/Kolkata", "2026/01/18 11:52"),
    (datetime(2026, 1, 18, 6, 22, 50, tzinfo=UTC), "Australia/Sydney", "2026/01/18 17:22"),
    # New York falls back on 2026-11-01 at 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    # 05:30Z is the first 01:30 (EDT): JIRA may read "01:30" as the second one (06:30Z), so
    # the literal goes back to 00:30 (04:30Z), which is unambiguous
    (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York", "2026/11/01 00:30"),
    # 06:30Z is the second 01:30 (EST): both readings are at or before it
    (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York", "2026/11/01 01:30"),
    # spring forward on 2026-03-08: 02:00 EST -> 03:00 EDT
    (datetime(2026, 3, 8, 7, 10, tzinfo=UTC), "America/New_York", "2026/03/08 03:10"),
    (datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC), "America/New_York", "2026/03/08 01:59"),
])
def test_jql_literal(lower: datetime, zone: str, literal: str) -> None:
    assert jql_literal(lower, ZoneInfo(zone)) == literal


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe",
                                  "Asia/Kathmandu", "Pacific/Chatham", "UTC"])
def test_literal_never_starts_after_the_lower_bound(zone: str) -> None:
    """Whichever reading of the literal JIRA picks, it is at most the lower bound, and never
    more than the DST shift (plus the minute) before it: every 67 s for three hours around
    each of the zone's 2026 transitions, and every 5 h 11 min over the year."""
    z = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(365 * 24)]
    transitions = [b for a, b in itertools.pairwise(hours)
                   if a.astimezone(z).utcoffset() != b.astimezone(z).utcoffset()]
    assert zone == "UTC" or len(transitions) in (2, 0)  # Kathmandu has none
    instants = [start + i * timedelta(hours=5, minutes=11) for i in range(1700)]
    for tr in transitions:
        instants += [tr + i * timedelta(seconds=67) for i in range(-161, 162)]
    for t in instants:
        lit = jql_literal(t, z)
        read = read_literal(lit, z)
        assert read <= t, (zone, t, lit)
        assert t - read < timedelta(hours=1, minutes=1), (zone, t, lit)


# -- against the stateful fake -------------------------------------------------------------------

def test_an_issue_edited_while_paging_does_not_hide_another(
        fake: FakeJira, make_backend: Callable[..., JiraBackend]) -> None:
    """nextPageToken treated as an offset (the pessimistic reading): SD-1 is edited after
    the first page, moves to the end, SD-3 slides onto the page already read and is not
    listed. The watermark must not pass SD-1's old place, so the next poll finds SD-3,
    although it is an hour older than everything else."""
    for n in range(3):
        fake.create(f"old {n}")
    fake.now += timedelta(hours=1)
    fake.create("new 1")
    fake.create("new 2")
    edited = []

    def edit_once(f: FakeJira, offset: int) -> None:
        if offset == 2 and not edited:
            f.comment("SD-1", "edited while the bridge pages")
            edited.append(True)

    fake.before_page = edit_once
    b = make_backend(options={"page_size": 2})
    first = b.fetch_changed(None)
    assert "SD-3" not in {t.key for t in first.tickets}, "the fake did not shift the pages"
    fake.before_page = None
    second = b.fetch_changed(first.cursor)
    assert "SD-3" in {t.key for t in second.tickets}


def test_data_center_pages_by_start_at(rsps: responses.RequestsMock,
                                       make_backend: Callable[..., JiraBackend]) -> None:
    dc = FakeJira(cloud=False, user_zone="Europe/Berlin").install(rsps)
    for n in range(5):
        dc.create(f"issue {n}")
    b = make_backend(options={"email": None, "deployment": "datacenter", "page_size": 2})
    result = b.fetch_changed(None)
    searches = calls(rsps, "GET", "/rest/api/2/search")
    assert [query(r)["startAt"] for r in searches] == ["0", "2", "4"]
    assert [t.key for t in result.tickets] == [f"SD-{n}" for n in range(1, 6)]
    assert rsps.calls[1].request.headers["Authorization"].startswith("Bearer ")
    # the history comes embedded (Data Center has no /changelog)
    assert not [c for c in rsps.calls if "/changelog" in c.request.url]
    assert all("expand=changelog" in r.url for r in calls(rsps, "GET", "/rest/api/2/issue/SD-1"))


def test_status_history_from_the_fake(fake: FakeJira,
                                      make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("history")
    fake.transition(key, "In Progress")
    fake.comment(key, "On it")
    fake.set_field(key, "priority", {"id": "2", "name": "High"})
    fake.transition(key, "Resolved")
    t = make_backend().fetch_ticket(key)
    assert [(e.kind, e.field, e.from_, e.to) for e in t.history] == [
        ("status", None, "Open", "In Progress"),
        ("comment", None, None, None),
        ("field", "priority", "Medium", "High"),
        ("status", None, "In Progress", "Resolved"),
    ]
    assert t.status == "Resolved" and t.fields["priority"] == "High"
