"""The Redmine mapping alone (plugins/redmine/mapping.py), on payloads captured from Redmine
5.0.4 (payloads/README.md): no server, no HTTP, no clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tracker_bridge.backend import Diff
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import TicketWriteRejected
from tracker_bridge.plugins.redmine import mapping as m

PAYLOADS = Path(__file__).resolve().parent / "payloads"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


ISSUE = payload("issue_with_journals.json")["issue"]
LISTED = payload("issues_by_id.json")["issues"][0]
STATUSES = {str(s["id"]): s["name"] for s in payload("issue_statuses.json")["issue_statuses"]}
PRIORITIES = {str(p["id"]): p["name"]
              for p in payload("issue_priorities.json")["issue_priorities"]}
SPEC = m.MappingSpec(
    tracker="desk", base_url="https://redmine.example", fields={
        "priority": "priority", "impact": "cf:Impact", "plan": "cf:Support plan",
        "component": "category"},
    deadlines={"response_due": "cf:SLA response due", "resolution_due": "cf:SLA resolution due"},
    labels="cf:SLA labels", project_plans={"payloads": "professional"}, plan="essentials")
#: what a non-admin key gets: no /custom_fields.json, so fields are matched by name
BY_NAME: dict[str, int | None] = {}


def lookups(**kw: Any) -> m.Lookups:
    return m.Lookups(**{"cf_ids": BY_NAME, "statuses": STATUSES, "priorities": PRIORITIES,
                        **kw})


def test_the_names_an_issue_needs_are_asked_for_once() -> None:
    # status and priority changes in the journals; the plan field is set: no project lookup
    assert m.needed_lookups(ISSUE, SPEC, BY_NAME) == {m.STATUSES, m.PRIORITIES}
    no_plan = {**ISSUE, "custom_fields": [c for c in ISSUE["custom_fields"]
                                          if c["name"] != "Support plan"]}
    assert m.PROJECT in m.needed_lookups(no_plan, SPEC, BY_NAME)
    # without project_plans the plan is the tracker's whatever the project: not looked up
    assert m.PROJECT not in m.needed_lookups(
        no_plan, m.MappingSpec(**{**SPEC.__dict__, "project_plans": {}}), BY_NAME)
    assert m.needed_lookups(LISTED, SPEC, BY_NAME) == set()  # no journals


def test_an_issue_maps_to_a_normalized_ticket() -> None:
    t = m.to_ticket(ISSUE, SPEC, lookups())
    assert (t.tracker, t.key, t.url) == ("desk", "2302", "https://redmine.example/issues/2302")
    assert t.created == datetime(2026, 12, 1, 21, 37, 23, tzinfo=UTC)
    assert t.updated == datetime(2026, 12, 1, 21, 37, 29, tzinfo=UTC)
    assert (t.reporter, t.status) == ("Redmine Admin", "Feedback")
    assert t.subject == "Cannot print discharge letters"
    assert t.fields == {"priority": "High", "impact": "Multiple users", "plan": "premium",
                        "component": None, "response_due": "2026-03-02T11:00:00+00:00",
                        "resolution_due": None}
    assert t.labels == ("customer-vip", "sla-high")
    assert [(e.kind, e.field, e.from_, e.to, e.public) for e in t.history] == [
        ("field", "priority", "Normal", "High", True),
        ("field", "impact", "Single user", "Multiple users", True),
        ("status", None, "New", "In Progress", True),
        ("comment", None, None, None, True),
        ("comment", None, None, None, False),
        ("label", None, None, None, True),
        ("comment", None, None, None, True),
        ("status", None, "In Progress", "Feedback", True),
    ]
    assert t.history[3].text == "Looking into it."
    # the bridge's write: the label it added to the multi-value list, then its note
    assert (t.history[5].by, t.history[5].added, t.history[5].removed) == (
        "Redmine Admin", ("sla-high",), ())
    assert t.history[6].text.endswith("[tracker-bridge:note=breach:response]")
    assert Ticket.from_dict(t.to_dict()).to_dict() == t.to_dict()


def test_journals_are_sorted_by_id_whatever_order_they_come_in() -> None:
    newest_first = {**ISSUE, "journals": list(reversed(ISSUE["journals"]))}
    assert m.to_ticket(newest_first, SPEC, lookups()) == m.to_ticket(ISSUE, SPEC, lookups())


def test_one_journal_s_label_values_are_one_label_event() -> None:
    # Redmine journals a multi-value list per value: removed ones with new_value null,
    # added ones with old_value null (the captured journal 2775 shows the added form)
    details = [{"property": "cf", "name": "3", "old_value": "sla-high", "new_value": None},
               {"property": "cf", "name": "3", "old_value": None, "new_value": "sla-critical"},
               {"property": "cf", "name": "3", "old_value": None,
                "new_value": "escalation-requested"},
               {"property": "cf", "name": "4", "old_value": "Multiple users",
                "new_value": "Single user"}]
    journal = {"id": 2777, "user": {"id": 7, "name": "Nurse Ratched"}, "notes": "",
               "private_notes": False, "created_on": "2026-12-01T21:40:00Z",
               "details": details}
    t = m.to_ticket({**ISSUE, "journals": [*ISSUE["journals"], journal]}, SPEC, lookups())
    *_, field, label = t.history
    assert (label.kind, label.by, label.added, label.removed) == (
        "label", "Nurse Ratched", ("sla-critical", "escalation-requested"), ("sla-high",))
    assert (field.kind, field.field, field.to) == ("field", "impact", "Single user")
    # without a labels field configured, the same journal names no labels
    bare = m.MappingSpec(**{**SPEC.__dict__, "labels": None})
    assert not [e for e in m.to_ticket({**ISSUE, "journals": [journal]}, bare,
                                       lookups()).history if e.kind == "label"]


def test_without_the_names_the_history_shows_ids() -> None:
    t = m.to_ticket(ISSUE, SPEC, m.Lookups(cf_ids=BY_NAME))
    assert [(e.from_, e.to) for e in t.history if e.kind == "status"] == [("1", "2"),
                                                                          ("2", "4")]
    assert t.history[0].to == "3"  # priority id 3


def test_custom_fields_by_id_when_the_key_may_read_their_definitions() -> None:
    ids = {"Impact": 4, "Support plan": 5, "SLA response due": 1, "SLA resolution due": 2,
           "SLA labels": 3}
    assert m.to_ticket(ISSUE, SPEC, lookups(cf_ids=ids)) == m.to_ticket(ISSUE, SPEC, lookups())


def test_the_plan_falls_back_to_the_project_then_the_tracker() -> None:
    no_plan = {**ISSUE, "custom_fields": [c for c in ISSUE["custom_fields"]
                                          if c["name"] != "Support plan"]}
    assert m.to_ticket(no_plan, SPEC, lookups(project="payloads")).fields["plan"] == \
        "professional"
    assert m.to_ticket(no_plan, SPEC, lookups(project="other")).fields["plan"] == "essentials"


def test_the_bridge_s_notes_are_found_by_their_marker() -> None:
    assert m.posted_keys(ISSUE) == {"breach:response"}
    assert m.posted_keys(LISTED) == set()  # the list has no journals


def test_the_listed_form_holds_what_a_write_compares_with() -> None:
    assert LISTED["custom_fields"] == ISSUE["custom_fields"]
    assert LISTED["updated_on"] == ISSUE["updated_on"]
    assert m.write_site(LISTED) == m.write_site(ISSUE) == (6, 1, 4)


def test_a_write_keeps_other_labels_and_leaves_the_same_instant_alone() -> None:
    diff = Diff("2302", set_fields={"response_due": "2026-03-02T11:00:00Z",
                                    "resolution_due": "2026-03-03T09:00:00+00:00"},
                add_labels=frozenset({"sla-breached-response"}),
                remove_labels=frozenset({"sla-high"}))
    assert m.custom_field_updates(LISTED, diff, SPEC, BY_NAME) == [
        {"id": 2, "value": "2026-03-03T09:00:00+00:00"},
        {"id": 3, "value": ["customer-vip", "sla-breached-response"]},
    ]
    # what the issue already shows is not written again
    same = Diff("2302", set_fields={"response_due": "2026-03-02T11:00:00+00:00"},
                add_labels=frozenset({"sla-high"}))
    assert m.custom_field_updates(LISTED, same, SPEC, BY_NAME) == []
    # clearing a field sends ""; a deadline not written to this tracker is ignored
    spec = m.MappingSpec(**{**SPEC.__dict__, "deadlines": {"response_due": "cf:SLA response due"}})
    clear = Diff("2302", set_fields={"response_due": None, "resolution_due": "x"})
    assert m.custom_field_updates(LISTED, clear, spec, BY_NAME) == [{"id": 1, "value": ""}]


def test_a_field_the_issue_does_not_have_is_a_refused_write() -> None:
    spec = m.MappingSpec(**{**SPEC.__dict__, "labels": "cf:No such field"})
    with pytest.raises(TicketWriteRejected) as e:
        m.custom_field_updates(LISTED, Diff("2302", add_labels=frozenset({"sla-high"})),
                               spec, BY_NAME)
    assert e.value.key == "2302" and "silently ignore" in str(e.value)


def test_notes_already_posted_are_left_out_and_the_first_rides_with_the_fields() -> None:
    notes = (Note("breach:response", "Again."), Note("kb", "For the KB.  \n"),
             Note("kb", "twice"), Note("level:manager", "Escalated."))
    texts = m.note_texts(notes, m.posted_keys(ISSUE))
    assert texts == ["For the KB.\n\n[tracker-bridge:note=kb]",
                     "Escalated.\n\n[tracker-bridge:note=level:manager]"]
    update = [{"id": 3, "value": ["customer-vip"]}]
    assert m.issue_puts(update, texts) == [
        {"custom_fields": update, "notes": texts[0], "private_notes": False},
        {"notes": texts[1], "private_notes": False}]
    assert m.issue_puts([], texts[:1]) == [{"notes": texts[0], "private_notes": False}]
    assert m.issue_puts(update, []) == [{"custom_fields": update}]
    assert m.issue_puts([], []) == []


def test_an_internal_note_is_a_private_journal() -> None:
    notes = (Note("phi:subject", "Patient data in the subject.", internal=True),
             Note("breach:response", "Late."))
    todo = m.unposted(notes, ())
    texts = m.note_texts(todo, ())
    update = [{"id": 3, "value": ["sla-phi-detected"]}]
    assert m.issue_puts(update, texts, [n.internal for n in todo]) == [
        {"custom_fields": update, "notes": texts[0], "private_notes": True},
        {"notes": texts[1], "private_notes": False}]


def test_a_write_redmine_dropped_is_seen_on_the_read_back() -> None:
    sent = [{"id": 3, "value": ["sla-high", "customer-vip"]},
            {"id": 1, "value": "2026-03-02T11:00:00+00:00"}, {"id": 2, "value": "x"}]
    assert m.unapplied(ISSUE, sent) == [({"id": 2, "value": "x"}, None)]


def test_the_cursor_keeps_settled_pairs_inside_the_next_window() -> None:
    since = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    listed = {1: "2026-03-02T09:59:30Z", 2: "2026-03-02T09:58:00Z", 3: "2026-03-02T10:00:00Z"}
    cursor = m.make_cursor(since, listed, timedelta(seconds=60),
                           scan_started=since + timedelta(seconds=1))
    assert cursor is not None
    got_since, seen = m.parse_cursor(cursor)
    assert got_since == since
    # 2 is older than the next window (minus Redmine's early second); 3 is not settled yet
    assert seen == {1: "2026-03-02T09:59:30Z"}
    assert m.make_cursor(None, listed, timedelta(seconds=60), None) is None
    assert m.parse_cursor("not json") == (None, {})
