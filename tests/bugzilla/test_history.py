"""History through the fake: Bugzilla's activity, merged same-second changes, initial status."""

from __future__ import annotations

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
