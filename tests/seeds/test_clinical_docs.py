"""Framework 004 (Hysio V2 clinical documentation) replayed against clinical-docs.yaml.

Amsterdam time: CET (UTC+1) until Sun 29 Mar 2026, then CEST (UTC+2). Business hours
08:00-18:00 Mon-Fri (1bd = 10h); priority customers 06:00-20:00 (1bd = 14h); Dutch holidays.
Emergency 5m / 4h and Urgent 2h / 24h on the clock; Standard 1bd / 5bd; Strategic 2bd / none.
"""

from __future__ import annotations

import pytest

from tracker_bridge.core.engine import evaluate

from .seedlib import at, due, field, policy, status, ticket, verdict

P = "clinical-docs"

# -- "Emergency Contact Escalation": Level 1 (0-15 minutes), Level 2 (15-30 minutes),
#    Level 3 (30-60 minutes), Level 4 (1+ hours) ------------------------------------------------------

EMERGENCY_CREATED = "2026-03-03T10:00:00+01:00"  # Tue, business hours


def emergency(created: str = EMERGENCY_CREATED, answered: str = "2026-03-03T10:03:00+01:00") -> object:
    # answered within the 5-minute response time
    return ticket(created, status="In Progress", fields={"priority": "Immediate"},
                  subject="Patient safety risk: medication list not shown",
                  history=[status(answered, "New", "In Progress")])


TIMELINE = [
    ("2026-03-03T10:00:00+01:00", "on-call-team"),   # 0 min: level 1 from the first minute
    ("2026-03-03T10:14:59+01:00", "on-call-team"),
    ("2026-03-03T10:15:00+01:00", "directors"),      # 15 min
    ("2026-03-03T10:29:59+01:00", "directors"),
    ("2026-03-03T10:30:00+01:00", "executives"),     # 30 min
    ("2026-03-03T10:59:59+01:00", "executives"),
    ("2026-03-03T11:00:00+01:00", "board"),          # 60 min: "1+ hours"
    ("2026-03-03T13:00:00+01:00", "board"),
]


@pytest.mark.parametrize(("now", "level"), TIMELINE)
def test_emergency_escalation_timeline(now: str, level: str) -> None:
    v = verdict(policy(P), emergency(), now)
    assert v["class"] == "emergency"
    assert v["level"] == level
    assert f"sla-level-{level}" in v["labels"]
    others = {"on-call-team", "directors", "executives", "board"} - {level}
    assert not any(f"sla-level-{o}" in v["labels"] for o in others)


@pytest.mark.parametrize(
    ("now", "level"),
    [
        # Sunday 8 Mar 2026 03:00: the emergency line is 24/7/365, so the same minutes count
        ("2026-03-08T03:14:59+01:00", "on-call-team"),
        ("2026-03-08T03:15:00+01:00", "directors"),
        ("2026-03-08T03:30:00+01:00", "executives"),
        ("2026-03-08T04:00:00+01:00", "board"),
    ],
)
def test_emergency_escalation_at_night(now: str, level: str) -> None:
    t = emergency("2026-03-08T03:00:00+01:00", answered="2026-03-08T03:03:00+01:00")
    assert verdict(policy(P), t, now)["level"] == level


def test_emergency_levels_end_with_resolution() -> None:
    t = ticket(EMERGENCY_CREATED, status="Resolved", fields={"priority": "Immediate"},
               history=[status("2026-03-03T10:03:00+01:00", "New", "In Progress"),
                        status("2026-03-03T12:00:00+01:00", "In Progress", "Resolved")])
    v = verdict(policy(P), t, "2026-03-03T13:00:00+01:00")
    assert v["level"] is None
    # 2h of the 4h resolution target: met
    assert v["metrics"]["resolution"]["state"] == "met"
    assert v["metrics"]["resolution"]["elapsed_s"] == 2 * 3600


def test_the_emergency_timeline_is_for_emergencies_only() -> None:
    t = ticket(EMERGENCY_CREATED, fields={"priority": "Urgent"})
    assert verdict(policy(P), t, "2026-03-03T12:00:00+01:00")["level"] is None


def test_emergency_targets_run_on_the_clock() -> None:
    # Sat 7 Mar 2026 23:00 CET: response 5 min -> 23:05; resolution 4h -> Sun 03:00
    created = "2026-03-07T23:00:00+01:00"
    v = verdict(policy(P), ticket(created, fields={"priority": "Immediate"}), created)
    assert due(v, "response") == at("2026-03-07T23:05:00+01:00")
    assert due(v, "resolution") == at("2026-03-08T03:00:00+01:00")


# -- "Escalation: Automatic to Tier 2 after 30 minutes if unresolved" -----------------------------

def test_automatic_escalation_after_30_minutes() -> None:
    # No tier recorded: the front line (L1). 30 min on the clock -> 10:30.
    t = emergency()
    v = verdict(policy(P), t, "2026-03-03T10:29:59+01:00")
    assert (v["tier"], v["escalate_to"]) == ("L1", None)
    v = verdict(policy(P), t, "2026-03-03T10:30:00+01:00")
    assert (v["tier"], v["escalate_to"]) == ("L1", "L2")
    assert "sla-escalate-to-L2" in v["labels"]


def test_technical_specialists_have_two_hours() -> None:
    # Moved to L2 at 10:30; "2 hours for urgent issues" -> 12:30
    moved = ticket(EMERGENCY_CREATED, status="In Progress",
                   fields={"priority": "Immediate", "tier": "L2"},
                   history=[status("2026-03-03T10:03:00+01:00", "New", "In Progress"),
                            field("2026-03-03T10:30:00+01:00", "tier", None, "L2")])
    assert verdict(policy(P), moved, "2026-03-03T10:30:00+01:00")["escalate_to"] is None
    assert verdict(policy(P), moved, "2026-03-03T12:29:59+01:00")["escalate_to"] is None
    v = verdict(policy(P), moved, "2026-03-03T12:30:00+01:00")
    assert (v["tier"], v["escalate_to"]) == ("L2", "L3")


# -- Urgent: "2 hours during business hours, 4 hours after hours"; 24 hours ---------------------------

@pytest.mark.parametrize(
    ("created", "response_due", "resolution_due"),
    [
        # inside business hours: Tue 3 Mar 10:00 -> 12:00; Wed 10:00
        ("2026-03-03T10:00:00+01:00", "2026-03-03T12:00:00+01:00", "2026-03-04T10:00:00+01:00"),
        # after hours, Tue 19:00: "4 hours after hours", on the clock -> 23:00
        ("2026-03-03T19:00:00+01:00", "2026-03-03T23:00:00+01:00", "2026-03-04T19:00:00+01:00"),
        # inside hours at 17:30: 2 business hours = 30 min Tue + 1h30 Wed from 08:00 -> 09:30
        ("2026-03-03T17:30:00+01:00", "2026-03-04T09:30:00+01:00", "2026-03-04T17:30:00+01:00"),
        # 18:00 exactly: the window 08:00-18:00 has closed -> after hours, 22:00
        ("2026-03-03T18:00:00+01:00", "2026-03-03T22:00:00+01:00", "2026-03-04T18:00:00+01:00"),
        # 08:00 exactly: open -> 10:00
        ("2026-03-03T08:00:00+01:00", "2026-03-03T10:00:00+01:00", "2026-03-04T08:00:00+01:00"),
        # Saturday 14:00 is after hours (closed day) -> 18:00 the same day
        ("2026-03-07T14:00:00+01:00", "2026-03-07T18:00:00+01:00", "2026-03-08T14:00:00+01:00"),
        # King's Day, Mon 27 Apr 2026 (NL holiday) 10:00 CEST: closed -> 14:00
        ("2026-04-27T10:00:00+02:00", "2026-04-27T14:00:00+02:00", "2026-04-28T10:00:00+02:00"),
    ],
)
def test_urgent_targets(created: str, response_due: str, resolution_due: str) -> None:
    v = verdict(policy(P), ticket(created, fields={"priority": "Urgent"}), created)
    assert v["class"] == "urgent"
    assert due(v, "response") == at(response_due)
    assert due(v, "resolution") == at(resolution_due)


def test_urgent_front_line_escalates_after_30_minutes() -> None:
    # Level 1 "Escalation Time: 30 minutes for urgent issues": Tue 19:00 -> 19:30 (24/7)
    t = ticket("2026-03-03T19:00:00+01:00", fields={"priority": "Urgent"})
    assert verdict(policy(P), t, "2026-03-03T19:29:59+01:00")["escalate_to"] is None
    assert verdict(policy(P), t, "2026-03-03T19:30:00+01:00")["escalate_to"] == "L2"


# -- Standard: "24 hours during business days", "5 business days", business hours 8-18 -------------

STANDARD = [
    # Fri 6 Mar 16:00 CET, standard plan (10h days):
    #   response 10h: Fri 2h (16-18) + Mon 9 Mar 08:00 + 8h = 16:00
    #   resolution 50h: Fri 2 | Mon 10 (12) | Tue (22) | Wed (32) | Thu (42) | Fri 13 08:00 + 8h
    ("standard", "2026-03-06T16:00:00+01:00", "2026-03-09T16:00:00+01:00", "2026-03-13T16:00:00+01:00"),
    # the same ticket for a priority customer (06:00-20:00, 14h days):
    #   response 14h: Fri 4h (16-20) + Mon 06:00 + 10h = 16:00
    #   resolution 70h: Fri 4 | Mon 14 (18) | Tue (32) | Wed (46) | Thu (60) | Fri 06:00 + 10h
    ("priority", "2026-03-06T16:00:00+01:00", "2026-03-09T16:00:00+01:00", "2026-03-13T16:00:00+01:00"),
    # King's Day, Mon 27 Apr 2026. Fri 24 Apr 16:00 CEST: response Fri 2h + Tue 28 Apr 08:00 +
    #   8h = 16:00; resolution 50h: Fri 2 | Tue 10 (12) | Wed (22) | Thu (32) | Fri (42) |
    #   Mon 4 May 08:00 + 8h = 16:00
    ("standard", "2026-04-24T16:00:00+02:00", "2026-04-28T16:00:00+02:00", "2026-05-04T16:00:00+02:00"),
    # Ascension Day, Thu 14 May 2026. Wed 13 May 12:00 CEST: response Wed 6h (12-18) + Fri
    #   15 May 08:00 + 4h = 12:00; resolution 50h: Wed 6 | Fri 10 (16) | Mon (26) | Tue (36) |
    #   Wed 20 May (46) | Thu 21 May 08:00 + 4h = 12:00
    ("standard", "2026-05-13T12:00:00+02:00", "2026-05-15T12:00:00+02:00", "2026-05-21T12:00:00+02:00"),
]


@pytest.mark.parametrize(("plan", "created", "response_due", "resolution_due"), STANDARD)
def test_standard_targets(plan: str, created: str, response_due: str, resolution_due: str) -> None:
    v = verdict(policy(P), ticket(created, fields={"priority": "Normal", "plan": plan}), created)
    assert (v["class"], v["plan"]) == ("standard", plan)
    assert due(v, "response") == at(response_due)
    assert due(v, "resolution") == at(resolution_due)


def test_standard_front_line_has_two_business_hours() -> None:
    # Level 1 "2 hours for standard": Fri 6 Mar 16:00 -> used up at 18:00, the closing time
    t = ticket("2026-03-06T16:00:00+01:00", fields={"priority": "Normal"})
    assert verdict(policy(P), t, "2026-03-06T17:59:59+01:00")["escalate_to"] is None
    assert verdict(policy(P), t, "2026-03-06T18:00:00+01:00")["escalate_to"] == "L2"
    assert verdict(policy(P), t, "2026-03-07T12:00:00+01:00")["escalate_to"] == "L2"


def test_strategic_48_hours_is_two_business_days() -> None:
    # Mon 2 Mar 09:00: 20 business hours: Mon 9h (09-18) + Tue 10h + Wed 08:00 + 1h = 09:00
    created = "2026-03-02T09:00:00+01:00"
    v = verdict(policy(P), ticket(created, fields={"priority": "Strategic"}), created)
    assert v["class"] == "strategic"
    assert due(v, "response") == at("2026-03-04T09:00:00+01:00")
    assert v["metrics"]["resolution"]["state"] == "no_target"  # "Project-based timelines"


# -- "Critical safety issues receive immediate attention regardless of support tier" ----------------

@pytest.mark.parametrize(
    ("subject", "labels", "expected"),
    [
        ("Template question", ["patient-safety"], "emergency"),
        ("Suspected data breach in the audit export", [], "emergency"),
        ("Complete loss of access to patient records", [], "emergency"),
        ("Hysio is down for the whole ward", [], "emergency"),
        ("Patient safety risk: wrong dosage unit shown", [], "emergency"),
        ("Performance degradation in reports", [], "standard"),
        ("No patient safety impact: typo in a template", [], "standard"),
    ],
)
def test_emergency_criteria(subject: str, labels: list[str], expected: str) -> None:
    t = ticket("2026-03-03T10:00:00+01:00", fields={"priority": "Low"}, subject=subject, labels=labels)
    v = verdict(policy(P), t, "2026-03-03T10:00:00+01:00")
    assert v["class"] == expected
    assert v["class_rule"].startswith("override" if expected == "emergency" else "map:priority")


def test_kb_note_is_anonymised() -> None:
    # "Anonymization Procedures: Techniques for removing patient identifiers from support examples"
    t = ticket(EMERGENCY_CREATED, status="Resolved", fields={"priority": "Immediate"},
               subject="Transcription attached to the wrong record",
               description=("Steps to reproduce: dictate a note for BSN 1234.56.782, then for "
                            "burgerservicenummer 111222333 and for US patient SSN 123-45-6789."),
               history=[status("2026-03-03T10:03:00+01:00", "New", "In Progress"),
                        {"at": "2026-03-03T11:00:00+01:00", "kind": "comment", "by": "agent",
                         "public": True, "text": "Fixed the session cache."},
                        status("2026-03-03T11:30:00+01:00", "In Progress", "Resolved")])
    v = verdict(policy(P), t, "2026-03-03T12:00:00+01:00")
    kb = [n["text"] for n in v["notes"] if n["key"] == "kb"]
    assert len(kb) == 1
    for secret in ("1234.56.782", "111222333", "123-45-6789"):
        assert secret not in kb[0]
    assert "Fixed the session cache." in kb[0]


# -- Urgent at night: "4 hours after hours" ---------------------------------------------------------
# Tue 3 Mar 2026 23:00 CET is outside the business hours (08:00-18:00): the 4-hour target on
# the clock applies, decided at creation.

def comment(at_: str, by: str = "agent", text: str = "Looking into it.", public: bool = True) -> dict[str, object]:
    return {"at": at_, "kind": "comment", "by": by, "public": public, "text": text}


def test_night_time_urgent_answered_after_three_hours_is_met() -> None:
    # answered Wed 02:00: 3h on the clock, within "4 hours after hours"
    t = ticket("2026-03-03T23:00:00+01:00", fields={"priority": "Urgent"},
               history=[comment("2026-03-04T02:00:00+01:00")])
    v = verdict(policy(P), t, "2026-03-04T09:00:00+01:00")
    r = v["metrics"]["response"]
    assert (r["state"], r["elapsed_s"], r["target_s"], r["calendar"]) == ("met", 3 * 3600, 4 * 3600, "always")
    assert "sla-breached-response" not in v["labels"]
    assert not any(n["key"].startswith("breach:response") for n in v["notes"])
    reasons = " ".join(evaluate(policy(P), t, at("2026-03-04T09:00:00+01:00")).reasons)
    assert "outside the hours of the business calendar" in reasons


def test_night_time_urgent_answered_after_four_and_a_half_hours_is_breached() -> None:
    t = ticket("2026-03-03T23:00:00+01:00", fields={"priority": "Urgent"},
               history=[comment("2026-03-04T03:30:00+01:00")])
    v = verdict(policy(P), t, "2026-03-04T09:00:00+01:00")
    assert v["metrics"]["response"]["state"] == "breached"
    # unanswered: at risk from 3h (warn_at 0.75), due 03:00, breached just after
    open_ = ticket("2026-03-03T23:00:00+01:00", fields={"priority": "Urgent"})
    assert verdict(policy(P), open_, "2026-03-04T01:59:59+01:00")["metrics"]["response"]["state"] == "running"
    assert verdict(policy(P), open_, "2026-03-04T02:00:00+01:00")["metrics"]["response"]["state"] == "at_risk"
    v = verdict(policy(P), open_, "2026-03-04T03:00:00+01:00")
    assert v["metrics"]["response"]["state"] == "at_risk"
    assert due(v, "response") == at("2026-03-04T03:00:00+01:00")
    assert verdict(policy(P), open_, "2026-03-04T03:00:01+01:00")["metrics"]["response"]["state"] == "breached"


def test_in_hours_urgent_still_has_two_hours() -> None:
    # Tue 10:00, answered 12:30: 2h30 of business hours > 2h
    t = ticket("2026-03-03T10:00:00+01:00", fields={"priority": "Urgent"},
               history=[comment("2026-03-03T12:30:00+01:00")])
    v = verdict(policy(P), t, "2026-03-03T13:00:00+01:00")
    r = v["metrics"]["response"]
    assert (r["state"], r["target_s"], r["calendar"]) == ("breached", 2 * 3600, "business")


def test_priority_customers_hours_decide_for_them() -> None:
    # 19:00 is inside the extended hours (06:00-20:00): 2 extended hours -> 1h Tue + Wed 06:00
    # + 1h = 07:00
    created = "2026-03-03T19:00:00+01:00"
    v = verdict(policy(P), ticket(created, fields={"priority": "Urgent", "plan": "priority"}), created)
    assert due(v, "response") == at("2026-03-04T07:00:00+01:00")


def test_a_class_change_re_decides_from_the_creation_instant() -> None:
    # created Normal at 23:00, raised to Urgent at 23:30: the urgent target is the one for a
    # ticket created at 23:00 (after hours): 4h on the clock from 23:00 -> 03:00
    t = ticket("2026-03-03T23:00:00+01:00", fields={"priority": "Urgent"},
               history=[field("2026-03-03T23:30:00+01:00", "priority", "Normal", "Urgent")])
    v = verdict(policy(P), t, "2026-03-03T23:30:00+01:00")
    assert v["class"] == "urgent"
    assert due(v, "response") == at("2026-03-04T03:00:00+01:00")


# -- Emergencies: "Regular updates every 30 minutes" -------------------------------------------------
# Tue 3 Mar 10:00 emergency, answered 10:03 (status change). Public updates at 10:30 (27 min),
# then silence until 11:10 (40 min: one breach, from 11:03 + 1 us), 11:35, resolved 12:00.

EMERGENCY_UPDATES = [
    status("2026-03-03T10:03:00+01:00", "New", "In Progress"),
    comment("2026-03-03T10:30:00+01:00", text="Engineers are on it."),
    comment("2026-03-03T10:50:00+01:00", by="customer", text="Any news?"),  # the reporter's: no update
    comment("2026-03-03T11:00:00+01:00", text="Internal: checking logs.", public=False),  # not public
    comment("2026-03-03T11:10:00+01:00", text="Fix being deployed."),
    comment("2026-03-03T11:35:00+01:00", text="Deployed; monitoring."),
    status("2026-03-03T12:00:00+01:00", "In Progress", "Resolved"),
]


def emergency_with_updates(upto: int) -> object:
    history = EMERGENCY_UPDATES[:upto]
    last = history[-1]
    return ticket(EMERGENCY_CREATED, status=last["to"] if last["kind"] == "status" else "In Progress",  # type: ignore[arg-type]
                  fields={"priority": "Immediate"}, subject="Patient safety risk: wrong allergy list",
                  history=history)


def test_emergency_with_a_forty_minute_silence_has_one_update_breach() -> None:
    v = verdict(policy(P), emergency_with_updates(len(EMERGENCY_UPDATES)), "2026-03-03T12:30:00+01:00")
    u = v["metrics"]["update"]
    gaps = [(o["started_at"], o["elapsed_s"], o["breached"]) for o in u["occurrences"]]
    assert [(at(s), e, b) for s, e, b in gaps] == [
        (at("2026-03-03T10:03:00+01:00"), 27 * 60, False),
        (at("2026-03-03T10:30:00+01:00"), 40 * 60, True),
        (at("2026-03-03T11:10:00+01:00"), 25 * 60, False),
        (at("2026-03-03T11:35:00+01:00"), 25 * 60, False),  # stopped by the resolution
    ]
    assert u["state"] == "met"
    assert [n["key"] for n in v["notes"] if n["key"].startswith("breach:")] == ["breach:update:1"]
    assert "sla-breached-update" not in v["labels"]  # the current gap is not breached


@pytest.mark.parametrize(
    ("now", "state", "label"),
    [
        ("2026-03-03T10:52:29+01:00", "running", None),          # 22m29s of 30m
        ("2026-03-03T10:52:30+01:00", "at_risk", "sla-at-risk-update"),  # 75% of 30m
        ("2026-03-03T11:00:00+01:00", "at_risk", "sla-at-risk-update"),  # used up, not exceeded
        ("2026-03-03T11:00:01+01:00", "breached", "sla-breached-update"),
        ("2026-03-03T11:09:59+01:00", "breached", "sla-breached-update"),
    ],
)
def test_the_silence_second_by_second(now: str, state: str, label: str | None) -> None:
    v = verdict(policy(P), emergency_with_updates(4), now)
    assert v["metrics"]["update"]["state"] == state
    owned = {lbl for lbl in v["labels"] if "update" in lbl}
    assert owned == ({label} if label else set())
    assert any(n["key"] == "breach:update:1" for n in v["notes"]) == (state == "breached")


def test_the_daemon_wakes_for_the_update_gap() -> None:
    # at 10:45 nothing else changes before the update gap turns at risk at 10:52:30
    # (board level 11:00, resolution at risk 13:00)
    v = verdict(policy(P), emergency_with_updates(2), "2026-03-03T10:45:00+01:00")
    assert at(v["next_change"]) == at("2026-03-03T10:52:30+01:00")
    # at 10:55 the board level (11:00:00) comes a microsecond before the gap's breach
    v = verdict(policy(P), emergency_with_updates(2), "2026-03-03T10:55:00+01:00")
    assert at(v["next_change"]) == at("2026-03-03T11:00:00+01:00")
    v = verdict(policy(P), emergency_with_updates(2), "2026-03-03T11:00:00+01:00")
    assert at(v["next_change"]) == at("2026-03-03T11:00:00.000001+01:00")


def test_an_update_after_the_breach_starts_a_new_gap() -> None:
    v = verdict(policy(P), emergency_with_updates(5), "2026-03-03T11:20:00+01:00")
    u = v["metrics"]["update"]
    assert (u["state"], u["elapsed_s"]) == ("running", 10 * 60)
    assert "sla-breached-update" not in v["labels"]
    assert any(n["key"] == "breach:update:1" for n in v["notes"])  # the past breach stays noted


def test_no_update_clock_before_the_first_response() -> None:
    t = ticket(EMERGENCY_CREATED, fields={"priority": "Immediate"})
    v = verdict(policy(P), t, "2026-03-03T10:02:00+01:00")
    assert v["metrics"]["update"]["state"] == "not_started"
    assert v["metrics"]["update"]["due"] is None


def test_urgent_tickets_have_no_update_metric() -> None:
    t = ticket("2026-03-03T10:00:00+01:00", fields={"priority": "Urgent"})
    assert "update" not in verdict(policy(P), t, "2026-03-03T10:00:00+01:00")["metrics"]


# -- Urgent criteria: raise to at least urgent, never lower an emergency ---------------------------

@pytest.mark.parametrize(
    ("priority", "subject", "expected", "rule"),
    [
        ("Low", "Performance degradation affecting clinical workflows on ward 3", "urgent", "at_least"),
        ("Normal", "Partial system functionality loss: dictation only", "urgent", "at_least"),
        ("Low", "Compliance violation concern in the audit trail", "urgent", "at_least"),
        ("Normal", "Integration with the lab system failing since 9:00", "urgent", "at_least"),
        ("Strategic", "Clinical workflows slowed down by the new template", "urgent", "at_least"),
        # already more severe: stays
        ("Immediate", "Performance degradation affecting clinical workflows", "emergency", "map"),
        ("Low", "Hysio is down; clinical workflows degraded", "emergency", "override"),
        # no criterion: the map decides
        ("Low", "Performance degradation in reports", "standard", "map"),
    ],
)
def test_urgent_criteria(priority: str, subject: str, expected: str, rule: str) -> None:
    t = ticket("2026-03-03T10:00:00+01:00", fields={"priority": priority}, subject=subject)
    v = verdict(policy(P), t, "2026-03-03T10:00:00+01:00")
    assert v["class"] == expected
    assert v["class_rule"].split(":")[0] == rule
