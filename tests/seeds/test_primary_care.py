"""Handbook 001 (iSOFT primary care) replayed against primary-care.yaml.

"standard support cover is 9.00am to 5.30pm, Monday to Friday and Saturday mornings,
excluding English and Irish national holidays." Encoded: London time, Mon-Fri 09:00-17:30
(8h30m), Sat 09:00-12:30 (3h30m), closed on GB/ENG and IE holidays; 1bd = 8h30m.
Targets (ours; the handbook defers them to the contract): sev1 30m/4h, sev2 1h/1bd,
sev3 4h/5bd, sev4 1bd/20bd, sev5 1bd/5bd; Redmine priorities Immediate..Low -> sev1..sev5.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from .seedlib import at, due, hours, policy, status, ticket, verdict

P = "primary-care"


def core():  # type: ignore[no-untyped-def]
    return policy(P).calendars["core"]


# -- Saturday mornings ------------------------------------------------------------------------

def test_a_saturday_morning_is_three_and_a_half_hours() -> None:
    # Sat 14 Mar 2026: 09:00-12:30 GMT open, nothing else that day
    assert core().working(at("2026-03-14T00:00:00+00:00"), at("2026-03-15T00:00:00+00:00")) == hours(3.5)
    # Sun 15 Mar: closed
    assert core().working(at("2026-03-15T00:00:00+00:00"), at("2026-03-16T00:00:00+00:00")) == timedelta(0)
    # Fri 17:00 -> Mon 10:00: 0.5h Fri + 3.5h Sat + 1h Mon = 5h
    assert core().working(at("2026-03-06T17:00:00+00:00"), at("2026-03-09T10:00:00+00:00")) == hours(5)


def test_response_runs_into_saturday_morning() -> None:
    # sev3 (High), 4h response, raised Fri 6 Mar 2026 15:00 GMT:
    #   2.5h Fri (15:00-17:30) + Sat 7 Mar 09:00 + 1.5h = Sat 10:30
    t = ticket("2026-03-06T15:00:00+00:00", fields={"priority": "High"})
    v = verdict(policy(P), t, "2026-03-06T15:00:00+00:00")
    assert v["class"] == "sev3"
    assert due(v, "response") == at("2026-03-07T10:30:00+00:00")
    # resolution 5bd = 42.5h: Fri 2.5 | Sat 3.5 (6) | Mon 8.5 (14.5) | Tue (23) | Wed (31.5) |
    #   Thu (40) | Fri 13 Mar 09:00 + 2.5h = 11:30
    assert due(v, "resolution") == at("2026-03-13T11:30:00+00:00")


def test_deadline_used_up_at_saturday_noon_closing_is_that_closing() -> None:
    # sev3, 4h response, raised Thu 2 Apr 2026 17:00 BST (16:00 UTC):
    #   0.5h Thu; Fri 3 Apr Good Friday (English holiday, not Irish) closed;
    #   Sat 4 Apr 09:00-12:30 = 3.5h -> due exactly Sat 12:30 BST, not Tuesday's opening.
    t = ticket("2026-04-02T17:00:00+01:00", fields={"priority": "High"})
    v = verdict(policy(P), t, "2026-04-02T17:00:00+01:00")
    assert due(v, "response") == at("2026-04-04T12:30:00+01:00")


def test_saturday_over_the_clock_change() -> None:
    # sev2 (Urgent) resolution 1bd = 8h30m from Fri 27 Mar 2026 17:00 GMT:
    #   0.5h Fri; Sat 28 Mar 09:00-12:30 GMT 3.5h (4h); Sun 29 Mar clocks go forward;
    #   Mon 30 Mar 09:00 BST + 4.5h = 13:30 BST = 12:30 UTC
    t = ticket("2026-03-27T17:00:00+00:00", fields={"priority": "Urgent"})
    v = verdict(policy(P), t, "2026-03-27T17:00:00+00:00")
    assert v["class"] == "sev2"
    assert due(v, "resolution") == at("2026-03-30T13:30:00+01:00")


# -- English and Irish holidays --------------------------------------------------------------------

def test_friday_1700_before_an_irish_bank_holiday_monday() -> None:
    # Mon 1 Jun 2026 is the Irish June Bank Holiday (not an English one): the desk is closed.
    # sev2 raised Fri 29 May 2026 17:00 BST (16:00 UTC):
    #   response 1h: 0.5h Fri (17:00-17:30) + Sat 30 May 09:00 + 0.5h = Sat 09:30 BST
    #   resolution 8.5h: 0.5h Fri + 3.5h Sat = 4h; Mon 1 Jun closed;
    #   Tue 2 Jun 09:00 + 4.5h = 13:30 BST
    t = ticket("2026-05-29T17:00:00+01:00", fields={"priority": "Urgent"})
    v = verdict(policy(P), t, "2026-05-29T17:00:00+01:00")
    assert due(v, "response") == at("2026-05-30T09:30:00+01:00")
    assert due(v, "resolution") == at("2026-06-02T13:30:00+01:00")
    assert core().working(at("2026-06-01T00:00:00+01:00"), at("2026-06-02T00:00:00+01:00")) == timedelta(0)


def test_saint_patricks_day_closes_the_desk() -> None:
    # Tue 17 Mar 2026, an Irish holiday only. sev2 raised Mon 16 Mar 15:00 GMT:
    #   resolution 8.5h: 2.5h Mon (15:00-17:30); Tue closed; Wed 18 Mar 09:00 + 6h = 15:00
    t = ticket("2026-03-16T15:00:00+00:00", fields={"priority": "Urgent"})
    v = verdict(policy(P), t, "2026-03-16T15:00:00+00:00")
    assert due(v, "resolution") == at("2026-03-18T15:00:00+00:00")


def test_saint_patricks_day_on_a_saturday_closes_the_morning() -> None:
    # 17 Mar 2029 is a Saturday: no Saturday-morning cover that day.
    assert core().working(at("2029-03-17T09:00:00+00:00"), at("2029-03-17T12:30:00+00:00")) == timedelta(0)
    # the Saturday before is open as usual
    assert core().working(at("2029-03-10T09:00:00+00:00"), at("2029-03-10T12:30:00+00:00")) == hours(3.5)


def test_christmas() -> None:
    # Thu 24 Dec 2026 is open. Fri 25 Christmas Day; Sat 26 Boxing Day / St Stephen's Day (so
    # no Saturday morning); Sun 27; Mon 28 Boxing Day (substitute, England). Open Tue 29 Dec.
    # sev3 4h response raised Thu 24 Dec 16:00 GMT: 1.5h Thu + Tue 29 Dec 09:00 + 2.5h = 11:30
    t = ticket("2026-12-24T16:00:00+00:00", fields={"priority": "High"})
    v = verdict(policy(P), t, "2026-12-24T16:00:00+00:00")
    assert due(v, "response") == at("2026-12-29T11:30:00+00:00")
    assert core().working(at("2026-12-24T17:30:00+00:00"), at("2026-12-29T09:00:00+00:00")) == timedelta(0)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        ("2026-01-01", "New Year's Day, both"),
        ("2026-02-02", "Saint Brigid's Day, Ireland"),
        ("2026-04-03", "Good Friday, England"),
        ("2026-04-06", "Easter Monday, both"),
        ("2026-05-04", "May Day / May Bank Holiday, both"),
        ("2026-05-25", "Spring Bank Holiday, England"),
        ("2026-06-01", "June Bank Holiday, Ireland"),
        ("2026-08-03", "August Bank Holiday, Ireland"),
        ("2026-08-31", "Late Summer Bank Holiday, England"),
        ("2026-10-26", "October Bank Holiday, Ireland"),
    ],
)
def test_english_and_irish_holidays_are_closed(day: str, why: str) -> None:
    assert core().working(at(f"{day}T00:00:00+00:00"), at(f"{day}T23:00:00+00:00")) == timedelta(0), why


def test_ordinary_weekday_is_open() -> None:
    # Wed 4 Mar 2026: 09:00-17:30
    assert core().working(at("2026-03-04T00:00:00+00:00"), at("2026-03-05T00:00:00+00:00")) == hours(8.5)


# -- severities, resolved vs closed ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("priority", "cls"),
    [("Immediate", "sev1"), ("Urgent", "sev2"), ("High", "sev3"), ("Normal", "sev4"), ("Low", "sev5"),
     ("1", "sev1"), ("5", "sev5"), ("Major fault", "sev2"), ("Other faults", "sev5")],
)
def test_severities(priority: str, cls: str) -> None:
    v = verdict(policy(P), ticket("2026-03-04T10:00:00+00:00", fields={"priority": priority}),
                "2026-03-04T10:00:00+00:00")
    assert v["class"] == cls


@pytest.mark.parametrize(
    "subject",
    ["Users cannot log in at the branch surgery", "All users unable to log in",
     "Clinical application completely unavailable"],
)
def test_system_unavailable_is_severity_1(subject: str) -> None:
    v = verdict(policy(P), ticket("2026-03-04T10:00:00+00:00", fields={"priority": "Low"}, subject=subject),
                "2026-03-04T10:00:00+00:00")
    assert v["class"] == "sev1"
    assert v["class_rule"].startswith("override")


def test_a_single_forgotten_password_is_not_severity_1() -> None:
    v = verdict(policy(P), ticket("2026-03-04T10:00:00+00:00", fields={"priority": "Low"},
                                  subject="Receptionist forgot her password"),
                "2026-03-04T10:00:00+00:00")
    assert v["class"] == "sev5"


def _resolved_then_closed(description: str = "") -> object:
    # sev2, Tue 3 Mar 2026 10:00; answered 10:30; solution supplied 15:00 (Resolved);
    # the customer confirms Wed 11:00 (Closed).
    return ticket(
        "2026-03-03T10:00:00+00:00", status="Closed", fields={"priority": "Urgent"},
        subject="Appointments screen shows wrong clinician",
        description=description,
        history=[
            status("2026-03-03T10:30:00+00:00", "New", "In Progress"),
            {"at": "2026-03-03T14:55:00+00:00", "kind": "comment", "by": "agent", "public": True,
             "text": "Cleared the cached rota; please confirm."},
            status("2026-03-03T15:00:00+00:00", "In Progress", "Resolved"),
            status("2026-03-04T11:00:00+00:00", "Resolved", "Closed", by="customer"),
        ],
    )


def test_resolution_clock_stops_at_resolved_not_at_closed() -> None:
    # "Your incident will be marked as resolved once iSOFT has supplied a solution. This
    # incident will not be closed until you confirm": 10:00-15:00 = 5h of 8.5h, met.
    v = verdict(policy(P), _resolved_then_closed(), "2026-03-05T12:00:00+00:00")
    res = v["metrics"]["resolution"]
    assert res["state"] == "met"
    assert res["elapsed_s"] == 5 * 3600
    assert at(res["stopped_at"]) == at("2026-03-03T15:00:00+00:00")
    assert v["metrics"]["response"]["elapsed_s"] == 30 * 60


def test_kb_note_never_repeats_patient_identifiable_data() -> None:
    # "Customers must NOT attach any documents containing patient identifiable data": should
    # some slip into a ticket, the KB note redacts it (PPS number, Eircode, UK postcode are
    # this policy's additions).
    desc = ("Steps to reproduce: open the record of the patient with PPSN 1234567TA, "
            "living at D02 X285 (formerly OX16 3JT), then book an appointment.")
    v = verdict(policy(P), _resolved_then_closed(desc), "2026-03-05T12:00:00+00:00")
    kb = [n["text"] for n in v["notes"] if n["key"] == "kb"]
    assert len(kb) == 1
    for secret in ("1234567TA", "D02 X285", "OX16 3JT"):
        assert secret not in kb[0]
    assert "book an appointment" in kb[0]
    assert "Cleared the cached rota" in kb[0]


def test_escalation_chain_in_the_handbooks_order() -> None:
    names = [lv.name for lv in policy(P).escalation.levels]  # type: ignore[union-attr]
    assert names == ["team-leader", "service-manager", "head-of-customer-services",
                     "project-director", "operations-director"]
    # sev3 raised Wed 4 Mar 10:00, unanswered: the team leader at 100% of the 4h response
    # target (14:00); the service manager at 100% of 5bd = 42.5h:
    #   Wed 7.5 (10:00-17:30) | Thu 8.5 (16) | Fri 8.5 (24.5) | Sat 3.5 (28) | Mon 8.5 (36.5) |
    #   Tue 10 Mar 09:00 + 6h = 15:00
    t = ticket("2026-03-04T10:00:00+00:00", fields={"priority": "High"})
    assert verdict(policy(P), t, "2026-03-04T13:59:59+00:00")["level"] is None
    assert verdict(policy(P), t, "2026-03-04T14:00:00+00:00")["level"] == "team-leader"
    assert verdict(policy(P), t, "2026-03-10T14:59:59+00:00")["level"] == "team-leader"
    assert verdict(policy(P), t, "2026-03-10T15:00:00+00:00")["level"] == "service-manager"


# -- "do not include any patient identifiable data" -------------------------------------------

def test_an_update_with_patient_identifiable_data_is_flagged_never_repeated() -> None:
    # 001: "Customers must NOT attach any documents containing patient identifiable data, or
    # make updates that include patient identifiable data, to any incident record."
    t = ticket(
        "2026-03-02T09:00:00+00:00", fields={"priority": "Normal"},
        subject="Appointment book will not open",
        description=("Message on screen: 'Error 1043 - book locked'. Running: appointments. "
                     "Recent upgrades: none."),
        history=[
            {"at": "2026-03-02T09:20:00+00:00", "kind": "comment", "by": "agent",
             "public": True, "text": "Which user saw it first?"},
            {"at": "2026-03-02T09:40:00+00:00", "kind": "comment", "by": "customer",
             "public": True,
             "text": "It happened while booking Mrs Jane Doe, NHS 943 476 5919."},
        ],
    )
    v = verdict(policy(P), t, "2026-03-02T10:00:00+00:00")
    assert "sla-phi-detected" in v["labels"]
    (note,) = [n for n in v["notes"] if n["key"].startswith("phi:")]
    assert note["key"] == "phi:comment-2" and note["internal"] is True
    assert "comment 2 (by customer, 2026-03-02 09:40 GMT)" in note["text"]
    assert "NHS number" in note["text"] and "name" in note["text"]
    assert "5919" not in note["text"] and "Doe" not in note["text"]
    # the checklist's own details (a message, what ran, upgrades) are not patient data
    clean = ticket("2026-03-02T09:00:00+00:00", fields={"priority": "Normal"},
                   subject=t.subject, description=t.description)
    assert "sla-phi-detected" not in verdict(policy(P), clean, "2026-03-02T10:00:00+00:00")["labels"]


# -- "Details required when logging a new incident" ----------------------------------------------

def test_the_checklists_details_are_required_before_work_starts() -> None:
    # 001: "When you log a new incident you are required to provide specific details": the
    # checklist's Product, Version confirmation, Process and the Incident contact who will
    # "confirm incident closure when complete"
    given = {"priority": "Normal", "product": "Synergy", "contact": "Practice manager"}
    t = ticket("2026-03-02T09:00:00+00:00", fields=given, description="")
    v = verdict(policy(P), t, "2026-03-02T10:00:00+00:00")
    assert "sla-needs-info" in v["labels"]
    (note,) = [n for n in v["notes"] if n["key"] == "needs-info"]
    assert "missing version, description (required for every ticket)" in note["text"]
    done = ticket("2026-03-02T09:00:00+00:00", fields={**given, "version": "4.2"},
                  description="Process: F4 on the appointment book, then Save.")
    v = verdict(policy(P), done, "2026-03-02T10:00:00+00:00")
    assert "sla-needs-info" not in v["labels"]
    assert not [n for n in v["notes"] if n["key"] == "needs-info"]


# -- "This incident will not be closed until you confirm" -----------------------------------------

def test_resolved_is_not_closed_until_the_customer_confirms() -> None:
    # resolved Fri 6 Mar 2026 15:00 GMT; 5bd of core hours (8h30m a weekday, 3h30m on
    # Saturday mornings) without the customer's answer: 2.5h Fri | Sat 3.5 (6) | Mon 14.5 |
    # Tue 23 | Wed 31.5 | Thu 40 | Fri 13 Mar 09:00 + 2.5h = 11:30 -> one reminder
    resolved = [status("2026-03-06T15:00:00+00:00", "New", "Resolved")]
    t = ticket("2026-03-06T09:00:00+00:00", status="Resolved", history=resolved,
               fields={"priority": "Normal"})
    before = verdict(policy(P), t, "2026-03-13T11:29:00+00:00")
    assert not [n for n in before["notes"] if n["key"].startswith("confirm-reminder:")]
    v = verdict(policy(P), t, "2026-03-13T11:30:00+00:00")
    (note,) = [n for n in v["notes"] if n["key"].startswith("confirm-reminder:")]
    assert note["key"] == "confirm-reminder:20260306T150000Z"
    assert "will not be closed until you confirm" in note["text"]
    # closed by the agent a week later without the customer's answer: labelled
    closed = ticket("2026-03-06T09:00:00+00:00", status="Closed", fields={"priority": "Normal"},
                    history=[*resolved, status("2026-03-16T10:00:00+00:00", "Resolved", "Closed")])
    assert "sla-closed-unconfirmed" in verdict(policy(P), closed, "2026-03-16T11:00:00+00:00")["labels"]
    # the customer's "that fixed it" first: confirmed
    confirmed = ticket(
        "2026-03-06T09:00:00+00:00", status="Closed", fields={"priority": "Normal"},
        history=[*resolved,
                 {"at": "2026-03-09T09:10:00+00:00", "kind": "comment", "by": "customer",
                  "public": True, "text": "That fixed it, thank you."},
                 status("2026-03-09T10:00:00+00:00", "Resolved", "Closed")])
    v = verdict(policy(P), confirmed, "2026-03-16T11:00:00+00:00")
    assert "sla-closed-unconfirmed" not in v["labels"]
