"""The desk rules (docs/policy.md, "Desk rules"; docs/semantics.md): each is off unless the
policy names it, writes labels under the policy's prefix and notes with stable keys.

The tickets are hand-made; identifiers are check-digit-valid test values (NHS 943 476 5919
is the NHS's own published example)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tracker_bridge.core import desk
from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.errors import ConfigError
from tracker_bridge.policyfile import load_policy_text

BASE = """
name: desk
timezone: UTC
statuses:
  new: [New]
  waiting: [Feedback]
  resolved: [Resolved]
  closed: [Closed]
classes:
  high:   {response: 1h, resolution: 8h}
  normal: {response: 4h, resolution: 2d}
default_class: normal
"""

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
NHS = "943 476 5919"


def policy(extra: str = "") -> Any:
    return load_policy_text(BASE + extra, "desk.yaml")


def ticket(history: list[dict[str, Any]] | None = None, **kw: Any) -> Ticket:
    data = {
        "tracker": "t", "key": "7", "created": "2026-03-02T09:00:00+00:00",
        "status": kw.pop("status", "New"), "reporter": "alice",
        "subject": kw.pop("subject", "Report fails"),
        "description": kw.pop("description", "The weekly report stops at page 3."),
        "fields": kw.pop("fields", {}), "labels": kw.pop("labels", []),
        "history": [{"kind": "comment", "public": True, **ev} for ev in (history or [])],
    }
    assert not kw
    return Ticket.from_dict(data)


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_policy_text(BASE + text, "desk.yaml")
    return info.value.problems


# -- 6: patient data in tickets ------------------------------------------------------------------


PHI = "patient_data: true\n"


def test_patient_data_is_off_without_the_key() -> None:
    p = policy()
    v = evaluate(p, ticket(subject=f"Crash for NHS {NHS}"), NOW)
    assert "sla-phi-detected" not in v.labels
    assert not [n for n in v.notes if n.key.startswith("phi:")]
    assert "sla-phi-detected" not in p.all_labels()
    assert not any(r.startswith("patient data") for r in v.reasons)


def test_each_place_holding_patient_data_gets_one_internal_note_naming_it() -> None:
    p = policy(PHI)
    t = ticket(
        subject=f"Crash for NHS {NHS}",
        description="The weekly report stops at page 3.",
        history=[
            {"at": "2026-03-02T10:00:00+00:00", "by": "bob", "text": "Looking at it."},
            {"at": "2026-03-02T10:30:00+00:00", "by": "alice",
             "text": "Patient DOB 12/03/1961 shows the error too."},
            # private: staff only, not read (but counted, so numbers never shift)
            {"at": "2026-03-02T10:40:00+00:00", "by": "bob", "public": False,
             "text": f"NHS {NHS} again"},
            # the bridge's own note is never read as customer text
            {"at": "2026-03-02T10:50:00+00:00", "by": "bridge",
             "text": f"NHS {NHS}\n\n[tracker-bridge:note=x]"},
        ],
    )
    v = evaluate(p, t, NOW)
    assert "sla-phi-detected" in v.labels
    phi = {n.key: n for n in v.notes if n.key.startswith("phi:")}
    assert sorted(phi) == ["phi:comment-2", "phi:subject"]
    assert all(n.internal for n in phi.values())
    assert "comment 2 (by alice, 2026-03-02 10:30 UTC)" in phi["phi:comment-2"].text
    assert "date of birth" in phi["phi:comment-2"].text
    assert "the subject" in phi["phi:subject"].text and "NHS number" in phi["phi:subject"].text
    for n in phi.values():  # never the data itself
        assert "5919" not in n.text and "1961" not in n.text
        assert n.to_dict()["internal"] is True
    assert "sla-phi-detected" in p.all_labels()
    assert any(r.startswith("patient data: found in the subject, comment 2") for r in v.reasons)


def test_a_clean_ticket_and_a_cleaned_one_carry_no_label() -> None:
    p = policy(PHI)
    v = evaluate(p, ticket(), NOW)
    assert "sla-phi-detected" not in v.labels
    assert "patient data: none found" in v.reasons
    # the data removed (the subject edited): the desired labels drop it again
    dirty = evaluate(p, ticket(subject=f"NHS {NHS}"), NOW)
    clean = evaluate(p, ticket(subject="NHS number removed"), NOW)
    assert "sla-phi-detected" in dirty.labels and "sla-phi-detected" not in clean.labels


def test_a_comment_after_now_is_not_read() -> None:
    p = policy(PHI)
    t = ticket(history=[{"at": "2026-03-02T13:00:00+00:00", "by": "alice",
                         "text": f"NHS {NHS}"}])
    assert "sla-phi-detected" not in evaluate(p, t, NOW).labels
    assert "sla-phi-detected" in evaluate(p, t, datetime(2026, 3, 2, 14, tzinfo=UTC)).labels


def test_parts_can_be_left_out_and_the_policys_own_patterns_count() -> None:
    p = policy("patient_data: {subject: false}\nkb:\n  redact: ['(?i)ward\\s+\\d+[a-z]']\n")
    assert "sla-phi-detected" not in evaluate(p, ticket(subject=f"NHS {NHS}"), NOW).labels
    v = evaluate(p, ticket(description="Seen on Ward 7b this morning"), NOW)
    (note,) = [n for n in v.notes if n.key == "phi:description"]
    assert "policy pattern" in note.text and "7b" not in note.text


def test_a_text_seen_before_is_not_scanned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    p = policy(PHI)
    calls: list[str] = []
    real = desk.find_identifiers

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(desk, "find_identifiers", counting)
    t = ticket(subject=f"NHS {NHS}", history=[
        {"at": "2026-03-02T10:00:00+00:00", "by": "alice", "text": "more detail"}])
    first = evaluate(p, t, NOW)
    assert len(calls) == 3  # subject, description, one comment
    second = evaluate(p, t, NOW)
    assert len(calls) == 3
    assert first.labels == second.labels


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("patient_data: {subjct: false}\n", "patient_data.subjct", "unknown key"),
        ("patient_data: {comments: maybe}\n", "patient_data.comments", "bool"),
        ("patient_data: 3\n", "patient_data", "not true, false or a mapping"),
    ],
)
def test_patient_data_errors_name_their_path_and_line(text: str, path: str, message: str) -> None:
    problems = errors_of(text)
    where, msg = problems[0]
    assert where.startswith("line 13: ") and where.endswith(path), problems
    assert message in msg


# -- 1: completeness ------------------------------------------------------------------------------


COMPLETE = """
completeness:
  required: [component, version, description, impact]
  by_category:
    Technical question: [component, description]
"""
FULL = {"component": "Pathways", "version": "5.3.1", "impact": "Single user"}


def test_completeness_is_off_without_the_key() -> None:
    p = policy()
    v = evaluate(p, ticket(description=""), NOW)
    assert "sla-needs-info" not in v.labels and not [n for n in v.notes if n.key == "needs-info"]
    assert "sla-needs-info" not in p.all_labels()


def test_a_ticket_missing_required_fields_gets_the_label_and_one_note_naming_them() -> None:
    p = policy(COMPLETE)
    v = evaluate(p, ticket(fields={"component": "Pathways", "version": " "}, description=""),
                 NOW)
    assert "sla-needs-info" in v.labels
    (note,) = [n for n in v.notes if n.key == "needs-info"]
    assert isinstance(note, desk.MissingNote)
    assert note.missing == ("version", "description", "impact")  # blank counts as missing
    assert "missing version, description, impact" in note.text
    assert any("missing version, description, impact (sla-needs-info)" in r for r in v.reasons)
    assert "sla-needs-info" in p.all_labels()
    # complete: no label, no note
    v = evaluate(p, ticket(fields=FULL), NOW)
    assert "sla-needs-info" not in v.labels and not [n for n in v.notes if n.key == "needs-info"]


def test_a_category_has_its_own_set_matched_without_case() -> None:
    p = policy(COMPLETE)
    q = ticket(fields={"category": "technical QUESTION", "component": "Pathways"})
    v = evaluate(p, q, NOW)
    assert "sla-needs-info" not in v.labels
    q = ticket(fields={"category": "Technical question"}, description="")
    (note,) = [n for n in evaluate(p, q, NOW).notes if n.key == "needs-info"]
    assert note.missing == ("component", "description")
    assert "required for the category Technical question" in note.text
    # an unknown category: the default set
    u = ticket(fields={"category": "Other", "component": "Pathways"})
    (note,) = [n for n in evaluate(p, u, NOW).notes if n.key == "needs-info"]
    assert note.missing == ("version", "impact")


def test_the_note_names_the_trackers_fields() -> None:
    p = policy(COMPLETE)
    (note,) = [n for n in evaluate(p, ticket(description=""), NOW).notes
               if n.key == "needs-info"]
    named = note.named({"component": "category", "version": "fixed_version",
                        "impact": "cf:Impact"})
    assert named.key == "needs-info" and not isinstance(named, desk.MissingNote)
    assert "missing category, fixed_version, description, Impact" in named.text


def test_hold_response_starts_the_clock_when_the_ticket_becomes_complete() -> None:
    p = policy(COMPLETE.replace("completeness:", "completeness:\n  hold_response: true"))
    # created 09:00 with no version; the version given at 10:00; now 12:00 -> 2h of 1h: breached
    # (without the hold it would be 3h); the field events replay the ticket from creation
    fields = {**FULL, "priority": "High", "category": "Support incident"}
    history = [{"at": "2026-03-02T10:00:00+00:00", "kind": "field", "field": "version",
                "from": None, "to": "5.3.1", "by": "alice"}]
    t = Ticket.from_dict({**ticket().to_dict(), "fields": fields, "history": history})
    v = evaluate(p, t, NOW)
    assert v.metrics["response"].elapsed.total_seconds() == 2 * 3600
    assert any("complete since 2026-03-02 10:00 UTC" in r for r in v.reasons)
    # at 09:30 the version is still missing: the response clock has not started
    early = evaluate(p, t, datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    r = early.metrics["response"]
    assert r.state == "not_started" and r.due is None and r.elapsed.total_seconds() == 0
    assert "sla-needs-info" in early.labels
    assert early.metrics["resolution"].elapsed.total_seconds() == 1800  # not held
    # without the hold the same ticket's response clock ran from creation
    plain = evaluate(policy(COMPLETE), t, NOW)
    assert plain.metrics["response"].elapsed.total_seconds() == 3 * 3600


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("completeness: {required: [Version]}\n", "completeness.required",
         "not a normalized field name"),
        ("completeness: {required: [version, version]}\n", "completeness.required",
         "names a field twice"),
        ("completeness: {by_category: {a: [x], A: [y]}}\n", "completeness.by_category",
         "given twice"),
        ("completeness: {hold: true}\n", "completeness.hold", "unknown key"),
        ("completeness: {}\n", "completeness", "requires nothing"),
    ],
)
def test_completeness_errors_name_their_path_and_line(text: str, path: str, message: str) -> None:
    where, msg = errors_of(text)[0]
    assert where.startswith("line 13: ") and where.endswith(path), (where, msg)
    assert message in msg


# -- 5: confirmed closure -------------------------------------------------------------------------


CLOSURE = "confirmed_closure: {remind_after: 2d}\n"


def st(at: str, frm: str, to: str, by: str = "bob") -> dict[str, Any]:
    return {"at": at + ":00+00:00", "kind": "status", "from": frm, "to": to, "by": by}


def cm(at: str, by: str, text: str = "ok", public: bool = True) -> dict[str, Any]:
    return {"at": at + ":00+00:00", "kind": "comment", "by": by, "text": text,
            "public": public}


def history_ticket(status: str, events: list[dict[str, Any]]) -> Ticket:
    return Ticket.from_dict({**ticket().to_dict(), "status": status, "history": events})


def at(s: str) -> datetime:
    return datetime.fromisoformat(s + ":00+00:00")


def test_confirmed_closure_is_off_without_the_key() -> None:
    p = policy()
    t = history_ticket("Closed", [st("2026-03-02T10:00", "New", "Resolved"),
                                  st("2026-03-02T11:00", "Resolved", "Closed")])
    v = evaluate(p, t, NOW)
    assert "sla-closed-unconfirmed" not in v.labels
    assert "sla-closed-unconfirmed" not in p.all_labels()


def test_closed_by_support_without_the_customers_answer_is_labelled() -> None:
    # 001: "This incident will not be closed until you confirm the solution has resolved your
    # incident": resolved 10:00, closed 11:00 by bob (support); alice (reporter) said nothing
    p = policy(CLOSURE)
    t = history_ticket("Closed", [st("2026-03-02T10:00", "New", "Resolved"),
                                  cm("2026-03-02T10:30", "bob", "any news?"),
                                  st("2026-03-02T11:00", "Resolved", "Closed")])
    v = evaluate(p, t, NOW)
    assert "sla-closed-unconfirmed" in v.labels
    assert v.metrics["resolution"].state == "met"  # the clock is not changed
    assert any("closed by bob without an answer from the customer" in r for r in v.reasons)
    assert "sla-closed-unconfirmed" in p.all_labels()


@pytest.mark.parametrize(
    "answer",
    [
        [cm("2026-03-02T10:30", "alice", "Works now, thanks")],         # a public comment
        [st("2026-03-02T10:30", "Resolved", "Closed", by="alice")],     # she closed it
    ],
)
def test_the_customers_answer_confirms(answer: list[dict[str, Any]]) -> None:
    p = policy(CLOSURE)
    events = [st("2026-03-02T10:00", "New", "Resolved"), *answer]
    if answer[-1]["kind"] == "comment":
        events.append(st("2026-03-02T11:00", "Resolved", "Closed"))
    v = evaluate(p, history_ticket("Closed", events), NOW)
    assert "sla-closed-unconfirmed" not in v.labels


def test_an_answer_before_the_resolution_or_in_private_does_not_confirm() -> None:
    p = policy(CLOSURE)
    t = history_ticket("Closed", [cm("2026-03-02T09:30", "alice", "still broken"),
                                  st("2026-03-02T10:00", "New", "Resolved"),
                                  cm("2026-03-02T10:20", "alice", "note", public=False),
                                  st("2026-03-02T11:00", "Resolved", "Closed")])
    assert "sla-closed-unconfirmed" in evaluate(p, t, NOW).labels


def test_a_resolved_ticket_unanswered_gets_one_reminder_after_the_configured_time() -> None:
    p = policy(CLOSURE)  # 2d on `always`: the reminder is due 2026-03-04 10:00
    t = history_ticket("Resolved", [st("2026-03-02T10:00", "New", "Resolved")])
    early = evaluate(p, t, at("2026-03-04T09:59"))
    assert not [n for n in early.notes if n.key.startswith("confirm-reminder:")]
    assert early.next_change == at("2026-03-04T10:00")  # a daemon wakes up for it
    assert any("reminder from 2026-03-04 10:00 UTC" in r for r in early.reasons)
    v = evaluate(p, t, at("2026-03-04T10:00"))
    (note,) = [n for n in v.notes if n.key.startswith("confirm-reminder:")]
    assert note.key == "confirm-reminder:20260302T100000Z"
    assert "marked resolved on 2026-03-02 10:00 UTC" in note.text
    assert not note.internal
    assert "sla-closed-unconfirmed" not in v.labels  # not closed
    # answered: no reminder
    answered = history_ticket("Resolved", [st("2026-03-02T10:00", "New", "Resolved"),
                                           cm("2026-03-03T10:00", "alice", "Still checking")])
    v = evaluate(p, answered, at("2026-03-05T10:00"))
    assert not [n for n in v.notes if n.key.startswith("confirm-reminder:")]
    # resolved again after a reopening: a new reminder key for the new resolution
    again = history_ticket("Resolved", [st("2026-03-02T10:00", "New", "Resolved"),
                                        st("2026-03-03T10:00", "Resolved", "In Progress",
                                           by="alice"),
                                        st("2026-03-03T12:00", "In Progress", "Resolved")])
    v = evaluate(p, again, at("2026-03-06T10:00"))
    assert [n.key for n in v.notes if n.key.startswith("confirm-reminder:")] == [
        "confirm-reminder:20260303T120000Z"]


def test_the_reminder_counts_working_time_on_the_resolution_calendar() -> None:
    p = policy("calendars:\n  office: {week: {mon-fri: '09:00-17:00'}}\n"
               "plans: {std: {calendar: office}}\n"
               "confirmed_closure: {remind_after: 1bd}\n")
    # resolved Fri 6 Mar 16:00: 1h Fri + 7h Mon -> Mon 9 Mar 16:00
    t = history_ticket("Resolved", [st("2026-03-06T16:00", "New", "Resolved")])
    v = evaluate(p, t, at("2026-03-09T15:00"))
    assert v.next_change == at("2026-03-09T16:00")
    assert not [n for n in v.notes if n.key.startswith("confirm-reminder:")]
    v = evaluate(p, t, at("2026-03-09T16:00"))
    assert [n.key for n in v.notes if n.key.startswith("confirm-reminder:")]


def test_confirmed_closure_without_a_reminder_and_its_errors() -> None:
    p = policy("confirmed_closure: true\n")
    t = history_ticket("Resolved", [st("2026-03-02T10:00", "New", "Resolved")])
    v = evaluate(p, t, at("2026-04-02T10:00"))
    assert not [n for n in v.notes if n.key.startswith("confirm-reminder:")]
    where, msg = errors_of("confirmed_closure: {remind_after: 2x}\n")[0]
    assert where == "line 13: confirmed_closure.remind_after" and '"2x"' in msg
    where, msg = errors_of("confirmed_closure: {remind: 2d}\n")[0]
    assert where == "line 13: confirmed_closure.remind" and "unknown key" in msg


def test_a_bridge_note_posted_under_the_reporters_account_is_no_answer() -> None:
    # the bridge's API user may be the reporter (found on a real Redmine: its KB note
    # confirmed the closure it had just labelled)
    p = policy(CLOSURE)
    t = history_ticket("Closed", [st("2026-03-02T10:00", "New", "Resolved"),
                                  st("2026-03-02T11:00", "Resolved", "Closed"),
                                  cm("2026-03-02T11:05", "alice",
                                     "KB-ready note\n\n[tracker-bridge:note=kb]")])
    assert "sla-closed-unconfirmed" in evaluate(p, t, NOW).labels


# -- 4: categories --------------------------------------------------------------------------------


CATEGORIES = """
categories:
  field: category
  question: [Technical question]
  incident: [Support incident]
  enhancement: [Enhancement request]
  question_class: question
"""
WITH_QUESTION = BASE.replace("default_class: normal",
                             "  question: {response: 2h, resolution: 3d}\n"
                             "default_class: normal")


def cat_policy(extra: str = CATEGORIES) -> Any:
    return load_policy_text(WITH_QUESTION + extra, "desk.yaml")


def test_an_enhancement_request_has_no_resolution_target_and_a_label() -> None:
    p = cat_policy()
    t = ticket(fields={"category": "enhancement REQUEST", "priority": "High"})
    v = evaluate(p, t, datetime(2026, 3, 9, 12, tzinfo=UTC))  # a week later
    res = v.metrics["resolution"]
    assert res.state == "no_target" and res.due is None and res.target is None
    assert "sla-breached-resolution" not in v.labels
    assert not [n for n in v.notes if n.key == "breach:resolution"]
    assert v.metrics["response"].target is not None  # it is still answered
    assert "sla-enhancement" in v.labels and "sla-enhancement" in p.all_labels()
    assert any("enhancement request, no resolution target" in r for r in v.reasons)
    # an incident keeps its target
    inc = evaluate(p, ticket(fields={"category": "Support incident"}), NOW)
    assert inc.metrics["resolution"].target is not None and "sla-enhancement" not in inc.labels


def test_a_technical_question_has_its_own_targets() -> None:
    p = cat_policy()
    v = evaluate(p, ticket(fields={"category": "Technical question"}), NOW)
    assert v.class_ == "question" and v.class_rule == "category:category"
    assert v.metrics["response"].target.total_seconds() == 2 * 3600
    assert "sla-question" in v.labels
    assert any("a technical question: its own class question" in r for r in v.reasons)
    # without question_class a question keeps the class its priority gives
    p = cat_policy(CATEGORIES.replace("  question_class: question\n", ""))
    assert evaluate(p, ticket(fields={"category": "Technical question"}), NOW).class_ == "normal"


def test_categories_are_off_without_the_key() -> None:
    p = policy()
    v = evaluate(p, ticket(fields={"category": "Enhancement request"}), NOW)
    assert v.metrics["resolution"].target is not None and "sla-enhancement" not in v.labels


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("categories: {question: [Q], question_class: asked}\n", "categories.question_class",
         'class "asked" does not exist'),
        ("categories: {question: [Q], enhancement: [q]}\n", "categories.enhancement[0]",
         "already a category of kind question"),
        ("categories: {field: category}\n", "categories", "maps nothing"),
        ("categories: {requests: [x]}\n", "categories.requests", "unknown key"),
    ],
)
def test_categories_errors_name_their_path_and_line(text: str, path: str, message: str) -> None:
    where, msg = errors_of(text)[0]
    assert where.startswith("line 13: ") and where.endswith(path), (where, msg)
    assert message in msg


# -- 3: release lifecycle -------------------------------------------------------------------------


RELEASES = """
releases:
  list:
    - {version: "5.0", date: 2025-01-06}
    - {version: "5.1", date: 2025-04-07}
    - {version: "5.2", date: 2025-07-07}
    - {version: "5.3", date: 2025-10-06}
    - {version: "6.0", date: 2026-01-05}
  upgrade: See the upgrade guide.
"""
WHEN_531 = datetime(2025, 11, 3, 12, tzinfo=UTC)   # 5.3.1 current (5.3 out, 6.0 not yet)
WHEN_600 = datetime(2026, 3, 2, 12, tzinfo=UTC)    # 6.0.0 current


def stage_of(p: Any, version: str | None, now: datetime) -> Any:
    t = Ticket.from_dict({**ticket().to_dict(), "created": now.isoformat(),
                          "fields": {} if version is None else {"version": version}})
    return evaluate(p, t, now)


def release_labels(v: Any) -> list[str]:
    return sorted(x for x in v.labels if x.startswith("sla-release-"))


@pytest.mark.parametrize(
    ("version", "now", "stage"),
    [
        # 000: "If the current version is 5.3.1, support will be offered for versions 5.0.0 to
        # 5.3.1, inclusive."
        ("5.3.1", WHEN_531, "full"),
        ("5.2.4", WHEN_531, "sustaining"),
        ("5.1.0", WHEN_531, "sustaining"),
        ("5.0.0", WHEN_531, "sustaining"),
        # "Subsequent release 6.0.0 will include support for 5.1.x to 6.0.x, inclusive."
        ("6.0.0", WHEN_600, "full"),
        ("5.1.7", WHEN_600, "sustaining"),
        ("5.0.0", WHEN_600, "extended"),   # EOL 2026-01-05, one year of extended support
        ("5.0.3", datetime(2027, 1, 4, 23, tzinfo=UTC), "extended"),
        ("5.0.3", datetime(2027, 1, 5, 1, tzinfo=UTC), "eosl"),
    ],
)
def test_the_handbooks_release_lifecycle(version: str, now: datetime, stage: str) -> None:
    v = stage_of(policy(RELEASES), version, now)
    assert release_labels(v) == [f"sla-release-{stage}"]


def test_at_end_of_support_life_the_clocks_stop_and_one_note_points_to_the_upgrade() -> None:
    p = policy(RELEASES)
    v = stage_of(p, "5.0.3", datetime(2027, 2, 1, 12, tzinfo=UTC))
    assert v.metrics["response"].state == "no_target" and v.metrics["response"].due is None
    assert v.metrics["resolution"].state == "no_target"
    (note,) = [n for n in v.notes if n.key.startswith("eosl:")]
    assert note.key == "eosl:5.0"
    assert "version 5.0.3 (release 5.0) reached its end of life on 2026-01-05" in note.text
    assert "upgrade to the current release 6.0. See the upgrade guide." in note.text
    assert any("is release 5.0, eosl (current 6.0; end of life 2026-01-05): the clocks do not "
               "run" in r for r in v.reasons)
    assert set(p.all_labels()) >= {f"sla-release-{s}" for s in
                                   ("full", "sustaining", "extended", "eosl")}


def test_the_stage_change_is_a_next_change() -> None:
    p = policy(RELEASES)
    # extended until 2027-01-05 00:00 UTC, when it becomes eosl
    t = Ticket.from_dict({**ticket(status="Feedback").to_dict(),
                          "created": "2027-01-04T10:00:00+00:00",
                          "fields": {"version": "5.0"}})
    v = evaluate(p, t, datetime(2027, 1, 4, 12, tzinfo=UTC))
    assert v.next_change == datetime(2027, 1, 5, tzinfo=UTC)
    # 5.3 full until 6.0 is released on 2026-01-05
    t = Ticket.from_dict({**t.to_dict(), "fields": {"version": "5.3.1"}})
    v = evaluate(p, t, datetime(2026, 1, 4, 12, tzinfo=UTC))
    assert release_labels(v) == ["sla-release-full"]
    assert v.next_change == datetime(2026, 1, 5, tzinfo=UTC)


def test_no_or_an_unknown_version_gets_no_stage() -> None:
    p = policy(RELEASES)
    assert release_labels(stage_of(p, None, WHEN_600)) == []
    v = stage_of(p, "4.9", WHEN_600)
    assert release_labels(v) == [] and any("'4.9' is not a released version" in w
                                           for w in v.warnings)
    v = stage_of(p, "6.0", WHEN_531)  # not released yet on that day
    assert release_labels(v) == []


def test_the_release_list_may_be_a_file_next_to_the_policy(tmp_path: Any) -> None:
    from tracker_bridge.policyfile import load_policy

    (tmp_path / "rel.yaml").write_text(
        '- {version: "5.0", date: 2025-01-06}\n- {version: "5.1", date: 2025-04-07}\n')
    (tmp_path / "p.yaml").write_text(BASE + "releases: {file: rel.yaml, sustaining: 0}\n")
    p = load_policy(tmp_path / "p.yaml")
    assert release_labels(stage_of(p, "5.0.1", WHEN_600)) == ["sla-release-extended"]
    # errors in the file name the file, the entry and its line
    (tmp_path / "rel.yaml").write_text(
        '- {version: "5.0", date: 2025-01-06}\n- {version: "5.1", date: 2024-04-07}\n')
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "p.yaml")
    assert info.value.source.endswith("rel.yaml")
    where, msg = info.value.problems[0]
    assert where == "line 2: [1].date" and "dates must rise with versions" in msg
    (tmp_path / "rel.yaml").write_text('- {version: "five", date: 2025-01-06}\n')
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "p.yaml")
    where, msg = info.value.problems[0]
    assert where == "line 1: [0].version" and "not a version starting major.minor" in msg
    (tmp_path / "p.yaml").write_text(BASE + "releases: {file: nothere.yaml}\n")
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "p.yaml")
    assert info.value.problems[0][0] == "line 13: releases.file"


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("releases: {sustaining: 3}\n", "releases", "give exactly one of `list`"),
        ("releases:\n  list:\n    - {version: '5.0', date: 2025-01-06}\n"
         "    - {version: '5.0.1', date: 2025-02-06}\n", "releases.list[1].version",
         "listed twice"),
        ("releases:\n  list:\n    - {version: '5.x', date: 2025-01-06}\n",
         "releases.list[0].version", "not a version"),
        ("releases:\n  list:\n    - {version: '5.0', date: 2025-02-30}\n",
         "releases.list[0].date", ""),
        ("releases: {list: [], sustaining: -1}\n", "releases.sustaining", ""),
    ],
)
def test_release_errors_name_their_path_and_line(text: str, path: str, message: str) -> None:
    where, msg = errors_of(text)[0]
    assert where.startswith("line 1") and where.endswith(path), (where, msg)
    assert message in msg


# -- 2: registered contacts -----------------------------------------------------------------------


PLANS = """
plans:
  essentials: {calendar: always}
  professional: {calendar: always}
  premium: {calendar: always}
default_plan: essentials
"""
CONTACTS = PLANS + """
contacts:
  field: customer
  limits: {essentials: 3, professional: 5, premium: 5}
  customers:
    St Mary's: {contacts: [Alice Able, Bob Baker, Carol Cole]}
    Riverside: {plan: premium, contacts: [Dan Dunn, Erin East, Fay Fox, Gus Gray, Hal Hill]}
"""


def contact_ticket(reporter: str | None, customer: str | None) -> Ticket:
    data = ticket().to_dict()
    data["reporter"] = reporter
    data["fields"] = {} if customer is None else {"customer": customer}
    return Ticket.from_dict(data)


def test_an_unregistered_reporter_gets_the_label_and_one_note() -> None:
    p = policy(CONTACTS)
    v = evaluate(p, contact_ticket("Zed Zane", "st mary's"), NOW)  # customer without case
    assert "sla-unregistered-contact" in v.labels
    (note,) = [n for n in v.notes if n.key.startswith("unregistered:")]
    assert note.key == "unregistered:Zed-Zane"
    assert "Zed Zane is not a registered technical contact of St Mary's" in note.text
    assert "St Mary's has 3 of 3 contacts registered" in note.text
    assert any("Zed Zane is not a registered contact" in r for r in v.reasons)
    assert "sla-unregistered-contact" in p.all_labels()


@pytest.mark.parametrize(
    ("reporter", "customer"),
    [("alice able", "St Mary's"), ("Hal Hill", "Riverside"),
     ("Zed Zane", "Elsewhere"),  # a customer without a list: not checked
     ("Zed Zane", None), (None, "St Mary's")],
)
def test_registered_or_unchecked_tickets_carry_no_label(reporter: str | None,
                                                        customer: str | None) -> None:
    v = evaluate(policy(CONTACTS), contact_ticket(reporter, customer), NOW)
    assert "sla-unregistered-contact" not in v.labels
    assert not [n for n in v.notes if n.key.startswith("unregistered:")]


def test_the_handbooks_limits_refuse_an_over_long_list_at_load() -> None:
    # 000: "three named technical contacts per live licensed instance"; "2 additional named
    # technical contacts per live licensed instance" on the higher plans
    four = CONTACTS.replace("[Alice Able, Bob Baker, Carol Cole]",
                            "[Alice Able, Bob Baker, Carol Cole, Dora Dale]")
    where, msg = errors_of(four)[0]
    assert where.endswith("contacts.customers.St Mary's.contacts")
    assert "4 contacts, more than the 3 the essentials plan allows" in msg
    six = CONTACTS.replace("Hal Hill]", "Hal Hill, Ida Ince]")
    where, msg = errors_of(six)[0]
    assert "6 contacts, more than the 5 the premium plan allows" in msg
    # two live instances: twice the contacts
    two = four.replace("St Mary's: {contacts:", "St Mary's: {instances: 2, contacts:")
    p = load_policy_text(BASE + two, "desk.yaml")
    assert p.contacts is not None


def test_the_contact_list_may_be_a_file(tmp_path: Any) -> None:
    from tracker_bridge.policyfile import load_policy

    (tmp_path / "contacts.yaml").write_text(
        "St Mary's:\n  contacts: [Alice Able]\nRiverside:\n  plan: gold\n  contacts: [Dan]\n")
    (tmp_path / "p.yaml").write_text(BASE + PLANS + "contacts:\n  limits: {essentials: 3}\n"
                                     "  file: contacts.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "p.yaml")
    assert info.value.source.endswith("contacts.yaml")
    where, msg = info.value.problems[0]
    assert where == "line 4: Riverside.plan" and 'plan "gold" does not exist' in msg
    (tmp_path / "contacts.yaml").write_text("St Mary's:\n  contacts: [Alice Able]\n")
    p = load_policy(tmp_path / "p.yaml")
    assert "sla-unregistered-contact" in evaluate(
        p, contact_ticket("Bob Baker", "St Mary's"), NOW).labels


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (PLANS + "contacts: {limits: {gold: 3}, customers: {}}\n", "contacts.limits.gold",
         'plan "gold" does not exist'),
        (PLANS + "contacts: {limits: {}}\n", "contacts", "give exactly one of `customers`"),
        (PLANS + "contacts:\n  customers:\n    A: {contacts: [x, X]}\n",
         "contacts.customers.A.contacts", "names a contact twice"),
        (PLANS + "contacts:\n  customers:\n    A: {contacts: [x], contact: [y]}\n",
         "contacts.customers.A.contact", "unknown key"),
    ],
)
def test_contacts_errors_name_their_path_and_line(text: str, path: str, message: str) -> None:
    where, msg = errors_of(text)[0]
    assert where.startswith("line ") and where.endswith(path), (where, msg)
    assert message in msg
