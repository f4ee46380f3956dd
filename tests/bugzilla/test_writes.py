"""Writing back: exact request bodies, add/remove (never a full replacement), one comment per
update, no duplicate notes, compare before write."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tracker_bridge.backend import Diff, note_marker
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import TicketWriteRejected
from tracker_bridge.plugins.bugzilla import BugzillaBackend

from .fake import Call, FakeBugzilla

DUE = "2026-03-02T17:30:00+00:00"


def _puts(fake: FakeBugzilla) -> list[Call]:
    return [c for c in fake.calls if c.method == "PUT"]


def test_labels_are_added_and_removed_never_set(fake: FakeBugzilla, backend: BugzillaBackend
                                                ) -> None:
    bid = fake.create_bug("x")
    fake.update(bid, keywords={"set": ["customer-vip", "sla-low"]})
    fake.calls.clear()
    backend.apply(Diff(str(bid), add_labels=frozenset({"sla-high", "sla-at-risk-response"}),
                       remove_labels=frozenset({"sla-low", "sla-medium"})))
    (put,) = _puts(fake)
    assert put.path == f"bug/{bid}"
    assert put.param("api_key") == fake.key
    # only what differs: sla-medium is not on the bug, so it is not sent
    assert put.body == {"ids": [bid], "keywords": {
        "add": ["sla-at-risk-response", "sla-high"], "remove": ["sla-low"]}}
    assert fake.bugs[bid]["keywords"] == ["customer-vip", "sla-at-risk-response", "sla-high"]


def test_a_person_adding_a_keyword_between_read_and_write_keeps_it(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    """add/remove instead of read-modify-write: a keyword a person adds after the bridge read
    the bug survives (a `set` computed from the read would drop it)."""
    bid = fake.create_bug("x")

    def person_edits_after_read(bz: FakeBugzilla, call: Call) -> None:
        if call.method == "GET" and call.path == f"bug/{bid}":
            bz.on_request = None
            bz.update(bid, keywords={"add": ["regression"]})

    fake.on_request = person_edits_after_read
    backend.apply(Diff(str(bid), add_labels=frozenset({"sla-high"})))
    assert fake.bugs[bid]["keywords"] == ["regression", "sla-high"]


def test_whiteboard_mode_rewrites_only_the_bridges_words(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]) -> None:
    bid = fake.create_bug("x", whiteboard="[vip]  call after 5pm sla-low")
    backend = make_backend(write={"labels": "whiteboard"})
    fake.calls.clear()
    backend.apply(Diff(str(bid), add_labels=frozenset({"sla-high"}),
                       remove_labels=frozenset({"sla-low"})))
    (put,) = _puts(fake)
    assert put.body == {"ids": [bid], "whiteboard": "[vip]  call after 5pm sla-high"}
    assert backend.fetch_ticket(str(bid)).labels == ("[vip]", "call", "after", "5pm",
                                                     "sla-high")


def test_fields_labels_and_the_first_note_go_in_one_put_the_next_note_alone(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    fake.calls.clear()
    backend.apply(Diff(str(bid),
                       set_fields={"response_due": DUE,
                                   "resolution_due": "2026-03-03T10:15:00+01:00"},
                       add_labels=frozenset({"sla-high"}),
                       notes=(Note("breach:response", "Response target missed."),
                              Note("kb", "Resolution note for the knowledge base."))))
    first, second = _puts(fake)
    assert first.body == {
        "ids": [bid],
        "keywords": {"add": ["sla-high"]},
        # free text: the text as given
        "cf_sla_response_due": DUE,
        # a date/time field takes local server time (UTC here) as 'YYYY-MM-DD HH:MM:SS'
        "cf_sla_resolution_due": "2026-03-03 09:15:00",
        "comment": {"body": "Response target missed.\n\n" + note_marker("breach:response"),
                    "is_private": False}}
    assert second.body == {"ids": [bid], "comment": {
        "body": "Resolution note for the knowledge base.\n\n" + note_marker("kb"),
        "is_private": False}}
    # between the two updates: the first date/time write of this product read back (its
    # zone is only seen that way), then the comments read again for the second marker
    between = fake.calls[fake.calls.index(first) + 1:fake.calls.index(second)]
    assert [c.path for c in between] == [f"bug/{bid}", f"bug/{bid}/comment"]
    t = backend.fetch_ticket(str(bid))
    assert t.fields["resolution_due"] == "2026-03-03T09:15:00+00:00"


def test_no_duplicate_comment(fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    diff = Diff(str(bid), notes=(Note("kb", "KB note."),))
    backend.apply(diff)
    backend.apply(diff)  # the sync layer lost its store: the marker on the bug decides
    texts = [c["text"] for c in fake.comments[bid]]
    assert sum(note_marker("kb") in t for t in texts) == 1


def test_a_lost_answer_does_not_post_the_note_twice(fake: FakeBugzilla,
                                                    backend: BugzillaBackend) -> None:
    """The PUT reached Bugzilla but its answer was lost; the sync layer re-fetches and applies
    again: the note is found by its marker."""
    bid = fake.create_bug("x")
    real = fake._update

    def commit_then_drop(b: int, params: dict, who: str) -> dict:  # type: ignore[type-arg]
        out = real(b, params, who)
        if "comment" in params:
            fake._update = real  # type: ignore[method-assign]
            raise requests.ConnectionError("connection reset by peer")
        return out

    fake._update = commit_then_drop  # type: ignore[method-assign]
    diff = Diff(str(bid), notes=(Note("breach:resolution", "Missed."),))
    with pytest.raises(Exception, match="cannot connect"):
        backend.apply(diff)
    backend.apply(diff)
    assert sum(note_marker("breach:resolution") in c["text"] for c in fake.comments[bid]) == 1


def test_second_note_already_posted_is_skipped(fake: FakeBugzilla, backend: BugzillaBackend
                                               ) -> None:
    bid = fake.create_bug("x")
    fake.comment(bid, "Earlier.\n\n" + note_marker("kb"), who="sla-bot@example.org")
    fake.calls.clear()
    backend.apply(Diff(str(bid), notes=(Note("kb", "KB."), Note("escalation:1", "Escalated."))))
    (put,) = _puts(fake)
    assert put.body["comment"]["body"].endswith(note_marker("escalation:1"))


def test_nothing_differs_nothing_is_written(fake: FakeBugzilla, backend: BugzillaBackend
                                           ) -> None:
    bid = fake.create_bug("x", cf_sla_resolution_due="2026-03-03T09:15:00Z",
                          cf_sla_response_due=DUE)
    fake.update(bid, keywords={"set": ["sla-high"]})
    before = fake.bugs[bid]["last_change_time"]
    fake.calls.clear()
    # the same instant in another offset is the same deadline; sla-high is already there,
    # sla-low already absent
    backend.apply(Diff(str(bid), set_fields={"response_due": DUE,
                                             "resolution_due": "2026-03-03T10:15:00+01:00"},
                       add_labels=frozenset({"sla-high"}),
                       remove_labels=frozenset({"sla-low"})))
    assert _puts(fake) == []
    assert fake.bugs[bid]["last_change_time"] == before


def test_empty_diff_makes_no_request(fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    fake.calls.clear()
    backend.apply(Diff(str(bid)))
    assert fake.calls == []


def test_clearing_a_deadline(fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x", cf_sla_resolution_due="2026-03-03T09:15:00Z",
                          cf_sla_response_due=DUE)
    fake.calls.clear()
    backend.apply(Diff(str(bid), set_fields={"response_due": None, "resolution_due": None}))
    (put,) = _puts(fake)
    assert put.body == {"ids": [bid], "cf_sla_response_due": "", "cf_sla_resolution_due": ""}
    t = backend.fetch_ticket(str(bid))
    assert t.fields["response_due"] is None and t.fields["resolution_due"] is None


def test_private_notes_option(fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]
                              ) -> None:
    bid = fake.create_bug("x")
    make_backend(options={"private_notes": True}).apply(
        Diff(str(bid), notes=(Note("kb", "KB."),)))
    assert fake.comments[bid][-1]["is_private"] is True


def test_an_internal_note_is_private_without_the_option(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    backend.apply(Diff(str(bid), notes=(
        Note("phi:subject", "Patient data in the subject.", internal=True),
        Note("breach:response", "Late."))))
    assert [(c["text"].split("\n")[0], c["is_private"]) for c in fake.comments[bid][-2:]] == [
        ("Patient data in the subject.", True), ("Late.", False)]


def test_server_timezone_converts_datetime_fields(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]) -> None:
    fake.server_zone = "Europe/Berlin"
    bid = fake.create_bug("x")
    backend = make_backend(options={"server_timezone": "Europe/Berlin"})
    backend.apply(Diff(str(bid), set_fields={"resolution_due": "2026-03-03T09:15:00+00:00"}))
    assert _puts(fake)[-1].body["cf_sla_resolution_due"] == "2026-03-03 10:15:00"
    assert backend.fetch_ticket(str(bid)).fields["resolution_due"] == "2026-03-03T09:15:00+00:00"


def test_wrong_server_timezone_is_caught_by_reading_back(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    """Otherwise every cycle would rewrite the field an hour off, forever."""
    fake.server_zone = "Europe/Berlin"
    bid = fake.create_bug("x")
    with pytest.raises(TicketWriteRejected, match="server_timezone"):
        backend.apply(Diff(str(bid), set_fields={"resolution_due": DUE}))
    # once verified for a product, a date/time write is not read back again
    good = fake.create_bug("y")
    fake.server_zone = "UTC"
    backend.apply(Diff(str(good), set_fields={"resolution_due": DUE}))
    fake.calls.clear()
    backend.apply(Diff(str(good), set_fields={"resolution_due": "2026-03-04T09:00:00+00:00"}))
    assert [c.path for c in fake.calls if c.method == "GET"] == [f"bug/{good}"]


def test_a_write_bugzilla_accepts_but_ignores_is_rejected(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    """A field hidden for this bug (field visibility) is accepted and not changed: reported,
    instead of being retried every cycle."""
    fake.ignored_fields.add("cf_sla_response_due")
    bid = fake.create_bug("x")
    with pytest.raises(TicketWriteRejected, match="cf_sla_response_due"):
        backend.apply(Diff(str(bid), set_fields={"response_due": DUE}))


def test_an_unknown_keyword_is_a_rejected_write(fake: FakeBugzilla, backend: BugzillaBackend
                                                ) -> None:
    """Bugzilla answers an unknown keyword with code 51 and HTTP 404: not a missing bug."""
    bid = fake.create_bug("x")
    with pytest.raises(TicketWriteRejected, match="no keyword named 'sla-nope'"):
        backend.apply(Diff(str(bid), add_labels=frozenset({"sla-nope"})))


def test_the_state_line_goes_to_a_text_field_and_is_read_back(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]) -> None:
    # write.state in the Free Text field (the fake's response_due one); deadlines in the human
    # format need text too, so the Date/Time field is refused for them and the state by check
    backend = make_backend(write={"response_due": None, "state": "cf_sla_response_due"})
    bid = fake.create_bug("state line")
    line = "response met · resolution due Tue 15 Dec 2026 17:30 GMT"
    backend.apply(Diff(key=str(bid), set_fields={"state": line}))
    assert fake.bugs[bid]["cf_sla_response_due"] == line
    assert backend.fetch_ticket(str(bid)).fields["state"] == line
    puts = len([c for c in fake.calls if c.method == "PUT"])
    backend.apply(Diff(key=str(bid), set_fields={"state": line}))  # the same words: no write
    assert len([c for c in fake.calls if c.method == "PUT"]) == puts
    assert [p.where for p in backend.check([])] == []
    wrong = make_backend(write={"state": "cf_sla_resolution_due"})
    (problem,) = [p for p in wrong.check([]) if p.where == "write.state"]
    assert "state line" in problem.message and "free text" in problem.message
    human = make_backend(write={"deadline_format": "human"})
    (problem,) = [p for p in human.check([]) if p.where == "write.resolution_due"]
    assert "human format" in problem.message
