"""History through the fake: Bugzilla's activity, merged same-second changes, initial status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from tracker_bridge.plugins.bugzilla import BugzillaBackend

from .fake import AGENT, FakeBugzilla


def test_two_updates_in_one_second_come_back_as_one_change_and_are_split(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x", status="UNCONFIRMED")
    fake.tick = False
    fake.now = fake.now.replace(microsecond=0)
    fake.update(bid, who=AGENT, status="CONFIRMED", priority="P2")
    fake.update(bid, who=AGENT, status="IN_PROGRESS", priority="P1")
    fake.update(bid, who=AGENT, status="RESOLVED", resolution="FIXED")
    # what Bugzilla answers: one entry, values joined with a space
    hist = fake._history(bid)
    assert len(hist) == 1
    status = [c for c in hist[0]["changes"] if c["field_name"] == "status"]
    assert status == [{"field_name": "status", "removed": "UNCONFIRMED CONFIRMED IN_PROGRESS",
                       "added": "CONFIRMED IN_PROGRESS RESOLVED"}]
    t = backend.fetch_ticket(str(bid))
    assert [(e.from_, e.to) for e in t.history if e.kind == "status"] == [
        ("UNCONFIRMED", "CONFIRMED"), ("CONFIRMED", "IN_PROGRESS"), ("IN_PROGRESS", "RESOLVED")]
    assert [(e.from_, e.to) for e in t.history if e.field == "priority"] == [
        ("P3", "P2"), ("P2", "P1")]
    assert t.status == "RESOLVED"


def test_changes_by_two_people_in_one_second_stay_apart(fake: FakeBugzilla,
                                                        backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    fake.tick = False
    fake.update(bid, who=AGENT, status="IN_PROGRESS")
    fake.update(bid, who="boss@example.org", status="RESOLVED")
    t = backend.fetch_ticket(str(bid))
    assert [(e.by, e.from_, e.to) for e in t.history if e.kind == "status"] == [
        (AGENT, "CONFIRMED", "IN_PROGRESS"), ("boss@example.org", "IN_PROGRESS", "RESOLVED")]


def test_a_bug_never_changed_has_no_status_event(fake: FakeBugzilla,
                                                 backend: BugzillaBackend) -> None:
    t = backend.fetch_ticket(str(fake.create_bug("x", status="UNCONFIRMED")))
    assert t.status == "UNCONFIRMED" and t.history == ()
    assert t.description == "It is broken."


def test_keyword_changes_are_label_events_in_order(fake: FakeBugzilla,
                                                   backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    fake.update(bid, who="nurse@example.org", keywords={"add": ["customer-vip", "regression"]})
    fake.update(bid, who=AGENT, keywords={"set": ["sla-high", "regression"]})
    # what Bugzilla answers: removed/added comma-separated
    assert [c for e in fake._history(bid) for c in e["changes"]] == [
        {"field_name": "keywords", "removed": "", "added": "customer-vip, regression"},
        {"field_name": "keywords", "removed": "customer-vip", "added": "sla-high"}]
    t = backend.fetch_ticket(str(bid))
    assert [(e.by, e.added, e.removed) for e in t.history if e.kind == "label"] == [
        ("nurse@example.org", ("customer-vip", "regression"), ()),
        (AGENT, ("sla-high",), ("customer-vip",))]
    assert all(e.from_ is None and e.to is None for e in t.history)
    assert {"kind": "label", "by": AGENT, "added": ["sla-high"],
            "removed": ["customer-vip"]}.items() <= t.history[-1].to_dict().items()


def test_keyword_changes_joined_in_one_second_are_split_into_their_steps(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    fake.update(bid, keywords={"add": ["regression"]})
    fake.tick = False
    fake.now += timedelta(seconds=1)
    fake.update(bid, keywords={"add": ["customer-vip"]})
    fake.update(bid, keywords={"remove": ["customer-vip", "regression"], "add": ["sla-low"]})
    joined = fake._history(bid)[-1]["changes"]
    assert joined == [{"field_name": "keywords", "removed": "customer-vip, regression",
                       "added": "customer-vip sla-low"}]
    t = backend.fetch_ticket(str(bid))
    assert [(e.added, e.removed) for e in t.history if e.kind == "label"] == [
        (("regression",), ()), (("customer-vip",), ()),
        (("sla-low",), ("customer-vip", "regression"))]


def test_a_keyword_set_and_taken_off_in_one_second_is_two_events(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    """As a real 5.2 answered ``set [customer-label, sla-high]`` then ``set [sla-high]`` by
    one person in one second: one change, ``added "customer-label, sla-high "`` (a trailing
    blank: the second step added nothing), ``removed "customer-label"``."""
    bid = fake.create_bug("x")
    fake.tick = False
    fake.now += timedelta(seconds=1)
    fake.update(bid, keywords={"set": ["customer-label", "sla-high"]})
    fake.update(bid, keywords={"set": ["sla-high"]})
    assert fake._history(bid)[-1]["changes"] == [
        {"field_name": "keywords", "removed": "customer-label",
         "added": "customer-label, sla-high "}]
    t = backend.fetch_ticket(str(bid))
    assert [(e.added, e.removed) for e in t.history if e.kind == "label"] == [
        (("customer-label", "sla-high"), ()), ((), ("customer-label",))]


def test_whiteboard_changes_are_label_events_of_its_words(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]) -> None:
    backend = make_backend(write={"labels": "whiteboard"})
    bid = fake.create_bug("x")
    fake.update(bid, whiteboard="[triage] sla-high")
    fake.update(bid, whiteboard="sla-high  [triage] sla-paused")  # reordered: no change
    fake.update(bid, whiteboard="[triage]")
    t = backend.fetch_ticket(str(bid))
    assert [(e.added, e.removed) for e in t.history if e.kind == "label"] == [
        (("[triage]", "sla-high"), ()), (("sla-paused",), ()),
        ((), ("sla-high", "sla-paused"))]
    # keywords are not the labels field here: their changes are no label events
    fake.update(bid, keywords={"add": ["regression"]})
    assert len([e for e in backend.fetch_ticket(str(bid)).history if e.kind == "label"]) == 3


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_date_time_history_values_are_read_in_the_server_zone(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend], zone: str) -> None:
    """A real 5.2 gives a Date/Time field as ``...Z`` on the bug but as zone-less database
    text (the server's local time) in history: both read as the same instant."""
    fake.server_zone = zone
    backend = make_backend(fields={"priority": "priority", "due": "cf_sla_resolution_due"},
                           options={"server_timezone": zone})
    bid = fake.create_bug("x")
    fake.update(bid, cf_sla_resolution_due="2026-03-02 10:00:00")
    fake.update(bid, cf_sla_resolution_due="")
    local = [c for e in fake._history(bid) for c in e["changes"]]
    assert local == [
        {"field_name": "cf_sla_resolution_due", "removed": "", "added": "2026-03-02 10:00:00"},
        {"field_name": "cf_sla_resolution_due", "removed": "2026-03-02 10:00:00", "added": ""}]
    fake.update(bid, cf_sla_resolution_due="2026-03-02 10:00:00")
    t = backend.fetch_ticket(str(bid))
    instant = "2026-03-02T10:00:00Z" if zone == "UTC" else "2026-03-02T09:00:00Z"
    assert t.fields["due"] == instant  # the bug's own value
    assert [(e.from_, e.to) for e in t.history if e.field == "due"] == [
        (None, instant), (instant, None), (None, instant)]
