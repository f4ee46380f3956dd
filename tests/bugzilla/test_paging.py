"""Incremental polling: the search parameters, keyset paging, the cursor, de-duplication."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests
import responses

from tracker_bridge.errors import BackendError
from tracker_bridge.plugins.bugzilla import BugzillaBackend
from tracker_bridge.plugins.bugzilla.mapping import SETTLE

from .fake import Call, FakeBugzilla


def _searches(fake: FakeBugzilla) -> list[Call]:
    return [c for c in fake.calls if c.method == "GET" and c.path == "bug"]


def _keys(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.key for t in result.tickets]


def test_search_parameters(fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]
                           ) -> None:
    fake.create_bug("in scope")
    fake.create_bug("other product", product="Lab", component="Imaging")
    backend = make_backend(projects=["Clinic", "Lab"], options={"components": ["Support"]})
    result = backend.fetch_changed(None)
    assert _keys(result) == ["1"]
    (search,) = _searches(fake)
    assert search.params["product"] == ["Clinic", "Lab"]
    assert search.params["component"] == ["Support"]
    assert search.param("order") == "changeddate,bug_id"
    assert search.param("limit") == "100"
    # the first scan starts at the epoch: Bugzilla refuses a search with no criterion at all
    assert search.param("last_change_time") == "1970-01-01T00:00:00Z"
    assert search.param("api_key") == fake.key
    assert set(search.param("include_fields").split(",")) >= {
        "id", "last_change_time", "creation_time", "summary", "status", "creator", "product",
        "keywords", "priority", "cf_impact", "cf_sla_response_due", "cf_sla_resolution_due"}
    # the server's clock is read before the scan, from the database (db_time)
    assert [c.path for c in fake.calls[:1]] == ["time"]


def test_cursor_is_the_database_clock_and_the_next_poll_overlaps(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    a = fake.create_bug("a")
    result = backend.fetch_changed(None)
    cursor = json.loads(result.cursor or "")
    # the watermark is db_time read before the scan, never the local clock
    assert cursor["since"] == fake.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    # a bug stamped in the scan's own second is not "settled": it is not remembered as
    # seen, so the next poll returns it again (a repeat, never a loss)
    assert cursor["seen"] == {}
    fake.now += timedelta(minutes=10)
    fake.calls.clear()
    again = backend.fetch_changed(result.cursor)
    assert _keys(again) == [str(a)]
    (search,) = _searches(fake)
    # the lower bound is the watermark minus overlap_seconds (60), in UTC with Z
    lower = (json.loads(result.cursor or "")["since"])
    assert search.param("last_change_time") == _minus(lower, 60)
    # ten minutes later the bug is outside the window: nothing
    fake.now += timedelta(minutes=10)
    assert _keys(backend.fetch_changed(again.cursor)) == []


def _minus(z: str, seconds: int) -> str:
    from datetime import datetime

    t = datetime.fromisoformat(z.replace("Z", "+00:00")) - timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_settled_repeats_are_skipped_but_a_same_second_edit_is_not(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    a = fake.create_bug("a")
    first = backend.fetch_changed(None)
    assert _keys(first) == [str(a)]
    # read in its own second, so not remembered: the next poll returns it once more, and by
    # then its pair (id, last_change_time) is settled and remembered
    fake.now += SETTLE + timedelta(seconds=1)
    second = backend.fetch_changed(first.cursor)
    assert _keys(second) == [str(a)]
    assert json.loads(second.cursor or "")["seen"] == {str(a): fake.bugs[a]["last_change_time"]}
    # still inside the overlap window: listed by Bugzilla, dropped as a repeat
    fake.now += timedelta(seconds=20)
    fake.calls.clear()
    third = backend.fetch_changed(second.cursor)
    assert _keys(third) == []
    assert len(_searches(fake)) == 1
    assert not [c for c in fake.calls if c.path.endswith("/history")]

    # now everything within one second: the bridge reads bug b, then a person edits b in the
    # very same second; the stamp is the same, yet the edit must not be skipped
    fake.tick = False
    fake.now += timedelta(seconds=30)
    b = fake.create_bug("b")
    fourth = backend.fetch_changed(third.cursor)
    assert _keys(fourth) == [str(b)]
    fake.comment(b, "same second")
    assert fake.bugs[b]["last_change_time"] == fake.bugs[b]["creation_time"]
    fourth = backend.fetch_changed(fourth.cursor)
    assert str(b) in _keys(fourth)
    comments = [e.text for t in fourth.tickets for e in t.history if e.kind == "comment"]
    assert "same second" in comments


def test_many_pages_across_seconds(fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]
                                   ) -> None:
    ids = [fake.create_bug(f"bug {i}") for i in range(45)]
    backend = make_backend(options={"page_size": 10})
    result = backend.fetch_changed(None)
    assert sorted(int(k) for k in _keys(result)) == ids
    assert len(_keys(result)) == len(set(_keys(result)))
    # keyset restarts: each page starts at the last page's newest time, never at an offset
    searches = _searches(fake)
    assert all(c.param("offset") in (None, "0") for c in searches)
    assert len(searches) == 5


def test_more_bugs_in_one_second_than_a_page(fake: FakeBugzilla,
                                            make_backend: Callable[..., BugzillaBackend]) -> None:
    fake.tick = False
    ids = [fake.create_bug(f"bulk {i}") for i in range(25)]
    fake.tick = True
    later = fake.create_bug("a second later")
    backend = make_backend(options={"page_size": 10})
    result = backend.fetch_changed(None)
    assert sorted(int(k) for k in _keys(result)) == [*ids, later]
    by_id = [c for c in _searches(fake) if c.param("f1")]
    # the one second is walked by bug id (advanced search clause), not by offset
    assert [(c.param("o1"), c.param("v1")) for c in by_id] == [
        ("greaterthan", "10"), ("greaterthan", "20")]


def test_a_bug_edited_while_paging_is_not_lost(fake: FakeBugzilla,
                                              make_backend: Callable[..., BugzillaBackend]
                                              ) -> None:
    """With offset paging, a bug edited mid-scan moves to the end, the rest shift left and
    the one at the page boundary is never listed."""
    ids = [fake.create_bug(f"bug {i}") for i in range(30)]

    def edit_first_after_page_one(bz: FakeBugzilla, call: Call) -> None:
        if call.path == "bug" and len(_searches(bz)) == 2:
            bz.on_request = None
            bz.comment(ids[0], "edited mid-scan")

    fake.on_request = edit_first_after_page_one
    backend = make_backend(options={"page_size": 10})
    result = backend.fetch_changed(None)
    assert set(ids) <= {int(k) for k in _keys(result)}

    # the same tracker read with plain offsets loses one (so the scenario is a real one)
    fake2 = FakeBugzilla()
    seen: set[int] = set()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake2.install(rsps)
        ids2 = [fake2.create_bug(f"bug {i}") for i in range(30)]
        for page in range(3):
            if page == 1:
                fake2.comment(ids2[0], "edited mid-scan")
            got = requests.get(f"{fake2.base}/rest/bug", params={
                "api_key": fake2.key, "product": "Clinic", "order": "changeddate,bug_id",
                "limit": 10, "offset": page * 10}, timeout=5).json()["bugs"]
            seen |= {b["id"] for b in got}
    assert len(set(ids2) - seen) == 1


def test_a_server_ignoring_the_bug_id_clause_is_an_error_not_a_loop(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]) -> None:
    fake.tick = False
    for i in range(12):
        fake.create_bug(f"bulk {i}")
    fake.ignore_bug_id_clause = True
    with pytest.raises(BackendError, match="ignored the bug_id search clause"):
        make_backend(options={"page_size": 10}).fetch_changed(None)


def test_an_unreadable_cursor_reads_everything_again(fake: FakeBugzilla,
                                                     backend: BugzillaBackend) -> None:
    a = fake.create_bug("a")
    assert _keys(backend.fetch_changed("not json")) == [str(a)]
    assert _keys(backend.fetch_changed('{"v": 99}')) == [str(a)]


def test_a_bug_gone_between_list_and_history_is_skipped(fake: FakeBugzilla,
                                                        backend: BugzillaBackend) -> None:
    a, b = fake.create_bug("a"), fake.create_bug("b")

    def delete_a(bz: FakeBugzilla, call: Call) -> None:
        if call.path == f"bug/{a}/history":
            del bz.bugs[a]

    fake.on_request = delete_a
    assert _keys(backend.fetch_changed(None)) == [str(b)]
