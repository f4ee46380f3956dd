"""Handbook 000 (Lumeon care-pathway platform) replayed against care-pathway.yaml.

Calendars (from the handbook): Essentials = office 09:00-17:30 Mon-Fri; Professional =
08:00-20:00 Mon-Fri plus critical 08:00-20:00 seven days; Premium = Professional plus critical
24x7x365; England and Wales bank holidays; London time (GMT until 29 March 2026 01:00 UTC,
then BST = UTC+1).
Targets: critical 30m / 4h, high 1h / 8h, medium 1bd / 5bd, low 1bd / 10bd.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest

from tracker_bridge.core.ticket import Ticket

from .seedlib import at, due, policy, status, ticket, verdict

P = "care-pathway"


# -- "Priority 1 issues regardless of the overall system availability" -------------------------

P1_REGARDLESS = [
    # Unavailability of calendars (losing the ability to manage, create or edit)
    ({"subject": "Calendar unavailable for all users"}, {}),
    ({"subject": "Booking clerks", "description": "Cannot create or edit appointments in the calendar"}, {}),
    ({"subject": "Diary page not loading"}, {"component": "Calendar"}),
    # the handbook's own wording
    ({"subject": "Losing the ability to manage, create or edit calendars"}, {}),
    ({"subject": "Clinic calendars", "description": "We are losing the ability to edit them"}, {}),
    ({"subject": "Unavailability of calendars"}, {}),
    # Unavailability of clinical information (EMR and EMR2 components)
    ({"subject": "EMR2 unavailable since 09:00"}, {}),
    ({"subject": "Clinical information not available to clinicians"}, {}),
    ({"subject": "Clinical letters inaccessible"}, {"component": "EMR"}),
    # Unavailability of the data supply service (if provided)
    ({"subject": "Data supply service down overnight"}, {}),
    ({"subject": "Nightly extract failed"}, {"component": "Data supply"}),
    # Unavailability of the NHS Electronic Referral Service (ERS or Choose-and-Book (CAB))
    ({"subject": "NHS e-Referral Service unavailable"}, {}),
    ({"subject": "Choose and Book down"}, {}),
    ({"subject": "Referrals failing", "description": "We cannot connect since the upgrade"}, {"component": "ERS"}),
]


@pytest.mark.parametrize(("text", "extra"), P1_REGARDLESS)
@pytest.mark.parametrize("priority", ["Low", "Normal", "High"])
def test_priority_1_regardless_of_the_priority_field(
    text: dict[str, str], extra: dict[str, str], priority: str
) -> None:
    t = ticket("2026-03-03T10:00:00+00:00", fields={"priority": priority, **extra}, **text)
    v = verdict(policy(P), t, "2026-03-03T10:05:00+00:00")
    assert v["class"] == "critical"
    assert v["class_rule"].startswith("override")
    # the critical targets apply: 0.5 business hour, on Essentials' office hours
    assert v["metrics"]["response"]["target_s"] == 30 * 60
    assert due(v, "response") == at("2026-03-03T10:30:00+00:00")
    assert "sla-critical" in v["labels"]


@pytest.mark.parametrize(
    ("subject", "component", "priority", "expected"),
    [
        # the handbook's own example of a 2 High: patient records alone are not P1
        ("Unable to access multiple patient records", None, "High", "high"),
        ("Calendar colours wrong in week view", None, "Low", "low"),
        ("Typo in the EMR2 help text", "EMR", "Low", "low"),
        ("Cannot write custom reports", None, "Normal", "medium"),
    ],
)
def test_ordinary_faults_keep_their_priority(
    subject: str, component: str | None, priority: str, expected: str
) -> None:
    fields = {"priority": priority} | ({"component": component} if component else {})
    v = verdict(policy(P), ticket("2026-03-03T10:00:00+00:00", fields=fields, subject=subject),
                "2026-03-03T10:05:00+00:00")
    assert v["class"] == expected
    assert v["class_rule"] == "map:priority"


# -- plans and coverage hours ---------------------------------------------------------------------

COVERAGE = [
    # Essentials critical, Fri 6 Mar 2026 17:00 GMT. Office hours 09:00-17:30.
    #   response 30m: 17:00-17:30 -> due 17:30 exactly (used up at the window's end)
    #   resolution 4h: 0.5h Fri, weekend closed, Mon 9 Mar 09:00 + 3.5h = 12:30
    ("essentials", "Immediate", "2026-03-06T17:00:00+00:00",
     "2026-03-06T17:30:00+00:00", "2026-03-09T12:30:00+00:00"),
    # Professional critical on Saturday 7 Mar 10:00: 7-day 08:00-20:00 cover
    #   response 10:30, resolution 14:00 the same Saturday
    ("professional", "Immediate", "2026-03-07T10:00:00+00:00",
     "2026-03-07T10:30:00+00:00", "2026-03-07T14:00:00+00:00"),
    # Professional critical Sat 7 Mar 19:00: response 19:30; resolution 1h Sat (19-20),
    #   Sun 8 Mar 08:00 + 3h = 11:00
    ("professional", "Immediate", "2026-03-07T19:00:00+00:00",
     "2026-03-07T19:30:00+00:00", "2026-03-08T11:00:00+00:00"),
    # Premium critical Sat 7 Mar 22:00: on the clock. response 22:30, resolution Sun 02:00
    ("premium", "Immediate", "2026-03-07T22:00:00+00:00",
     "2026-03-07T22:30:00+00:00", "2026-03-08T02:00:00+00:00"),
    # Premium high Sat 7 Mar 22:00: not critical, so Mon-Fri 08:00-20:00.
    #   response Mon 9 Mar 08:00 + 1h = 09:00; resolution 08:00 + 8h = 16:00
    ("premium", "High", "2026-03-07T22:00:00+00:00",
     "2026-03-09T09:00:00+00:00", "2026-03-09T16:00:00+00:00"),
    # Essentials high Tue 3 Mar 16:00: response 17:00; resolution 1.5h Tue (16:00-17:30),
    #   Wed 09:00 + 6.5h = 15:30
    ("essentials", "High", "2026-03-03T16:00:00+00:00",
     "2026-03-03T17:00:00+00:00", "2026-03-04T15:30:00+00:00"),
    # Essentials medium Tue 3 Mar 11:00. 1bd = 8h30m (Monday's window).
    #   response: 6.5h Tue (11:00-17:30) + Wed 09:00 + 2h = Wed 11:00 (same time next day)
    #   resolution 5bd = 42.5h: Tue 6.5 | Wed 8.5 (15) | Thu 8.5 (23.5) | Fri 8.5 (32) |
    #   Mon 8.5 (40.5) | Tue 10 Mar 09:00 + 2h = 11:00
    ("essentials", "Normal", "2026-03-03T11:00:00+00:00",
     "2026-03-04T11:00:00+00:00", "2026-03-10T11:00:00+00:00"),
    # Essentials low: resolution 10bd = twice the 5bd above: Tue 17 Mar 11:00
    ("essentials", "Low", "2026-03-03T11:00:00+00:00",
     "2026-03-04T11:00:00+00:00", "2026-03-17T11:00:00+00:00"),
    # Professional medium Tue 3 Mar 11:00 on 08:00-20:00 (1bd = 12h):
    #   response: Tue 9h (11-20) + Wed 08:00 + 3h = Wed 11:00
    #   resolution 5bd = 60h: Tue 9 | Wed-Mon 4 x 12 (57) | Tue 10 Mar 08:00 + 3h = 11:00
    ("professional", "Normal", "2026-03-03T11:00:00+00:00",
     "2026-03-04T11:00:00+00:00", "2026-03-10T11:00:00+00:00"),
    # Easter 2026: Good Friday 3 Apr and Easter Monday 6 Apr are English bank holidays.
    # Essentials medium Thu 2 Apr 15:00 BST (14:00 UTC): response 2.5h Thu (15:00-17:30),
    #   Fri/Sat/Sun/Mon closed, Tue 7 Apr 09:00 BST + 6h = 15:00 BST = 14:00 UTC.
    #   resolution 42.5h: Thu 2.5 | Tue 8.5 (11) | Wed (19.5) | Thu (28) | Fri (36.5) |
    #   Mon 13 Apr 09:00 + 6h = 15:00 BST
    ("essentials", "Normal", "2026-04-02T15:00:00+01:00",
     "2026-04-07T15:00:00+01:00", "2026-04-13T15:00:00+01:00"),
    # Clocks go forward Sun 29 Mar 2026 01:00 UTC. Premium critical Sat 28 Mar 23:00 GMT:
    #   4 real hours later is 03:00 UTC = 04:00 BST on the wall clock.
    ("premium", "Immediate", "2026-03-28T23:00:00+00:00",
     "2026-03-28T23:30:00+00:00", "2026-03-29T04:00:00+01:00"),
    # Professional critical Sat 28 Mar 19:00 GMT: 1h Sat (19-20 GMT), Sun 29 Mar opens
    #   08:00 BST (07:00 UTC) + 3h = 11:00 BST
    ("professional", "Immediate", "2026-03-28T19:00:00+00:00",
     "2026-03-28T19:30:00+00:00", "2026-03-29T11:00:00+01:00"),
    # Christmas 2026: Fri 25 Dec, Sat 26 Dec (Boxing Day), Mon 28 Dec (Boxing Day observed).
    # Professional critical Fri 25 Dec 10:00: the 7-day cover excludes national holidays (our
    #   choice), so it starts Sun 27 Dec 08:00: response 08:30, resolution 12:00.
    ("professional", "Immediate", "2026-12-25T10:00:00+00:00",
     "2026-12-27T08:30:00+00:00", "2026-12-27T12:00:00+00:00"),
    # Premium critical the same instant: "including all national holidays": 10:30 and 14:00.
    ("premium", "Immediate", "2026-12-25T10:00:00+00:00",
     "2026-12-25T10:30:00+00:00", "2026-12-25T14:00:00+00:00"),
]


@pytest.mark.parametrize(("plan", "priority", "created", "response_due", "resolution_due"), COVERAGE)
def test_due_instants_per_plan(
    plan: str, priority: str, created: str, response_due: str, resolution_due: str
) -> None:
    t = ticket(created, fields={"priority": priority, "plan": plan})
    v = verdict(policy(P), t, created)
    assert v["plan"] == plan
    assert due(v, "response") == at(response_due)
    assert due(v, "resolution") == at(resolution_due)


def test_business_day_is_monday_cover() -> None:
    # "1 Business Day" = one day of the plan's cover: 8h30m for office hours, 12h for 8-20.
    cals = policy(P).calendars
    assert cals["office"].business_day == timedelta(hours=8, minutes=30)
    assert cals["extended"].business_day == timedelta(hours=12)


def test_unknown_plan_falls_back_to_essentials() -> None:
    t = ticket("2026-03-06T17:00:00+00:00", fields={"priority": "High", "plan": "gold"})
    v = verdict(policy(P), t, "2026-03-06T17:00:00+00:00")
    assert v["plan"] == "essentials"
    # 30 min Fri (17:00-17:30) + Mon 09:00 + 30 min
    assert due(v, "response") == at("2026-03-09T09:30:00+00:00")


# -- awaiting the Technical Contact is deducted ------------------------------------------------------

def _awaiting_customer_ticket() -> object:
    # Essentials high, Tue 3 Mar 10:00; answered 10:20; waiting on the customer from 11:00
    # until Wed 10:00.
    return ticket(
        "2026-03-03T10:00:00+00:00", status="In Progress", fields={"priority": "High"},
        history=[
            status("2026-03-03T10:20:00+00:00", "New", "In Progress"),
            status("2026-03-03T11:00:00+00:00", "In Progress", "Feedback"),
            status("2026-03-04T10:00:00+00:00", "Feedback", "In Progress"),
        ],
    )


def test_waiting_for_the_customer_pauses_the_clock() -> None:
    v = verdict(policy(P), _awaiting_customer_ticket(), "2026-03-03T15:00:00+00:00")
    res = v["metrics"]["resolution"]
    # 1h ran (10:00-11:00), 7h remain, no deadline while paused
    assert res["state"] == "paused"
    assert res["elapsed_s"] == 3600
    assert res["remaining_s"] == 7 * 3600
    assert res["due"] is None
    assert "sla-paused" in v["labels"]
    assert v["metrics"]["response"]["state"] == "met"
    assert v["metrics"]["response"]["elapsed_s"] == 20 * 60


def test_deadline_moves_by_the_waiting_time() -> None:
    v = verdict(policy(P), _awaiting_customer_ticket(), "2026-03-04T12:00:00+00:00")
    res = v["metrics"]["resolution"]
    # resumed Wed 10:00 with 7h left: due 17:00; elapsed 1h + 2h (10:00-12:00)
    assert res["state"] == "running"
    assert res["elapsed_s"] == 3 * 3600
    assert res["remaining_s"] == 5 * 3600
    assert due(v, "resolution") == at("2026-03-04T17:00:00+00:00")
    assert "sla-paused" not in v["labels"]


# -- hierarchical escalation ------------------------------------------------------------------

ESCALATION = [
    # Essentials high, created Tue 3 Mar 09:00, never answered, never resolved.
    # incident owner at 100% of the 1h response target: 10:00
    ("2026-03-03T09:59:59+00:00", None),
    ("2026-03-03T10:00:00+00:00", "incident-owner"),
    # manager at 100% of the 8h resolution target: 09:00 + 8h = 17:00
    ("2026-03-03T16:59:59+00:00", "incident-owner"),
    ("2026-03-03T17:00:00+00:00", "support-manager"),
    # director at 150% = 12h: 8.5h Tue (09:00-17:30), Wed 09:00 + 3.5h = 12:30
    ("2026-03-04T12:29:59+00:00", "support-manager"),
    ("2026-03-04T12:30:00+00:00", "support-director"),
    ("2026-03-10T12:00:00+00:00", "support-director"),
]


@pytest.mark.parametrize(("now", "level"), ESCALATION)
def test_hierarchical_levels(now: str, level: str | None) -> None:
    t = ticket("2026-03-03T09:00:00+00:00", fields={"priority": "High"})
    v = verdict(policy(P), t, now)
    assert v["level"] == level
    if level is not None:
        assert f"sla-level-{level}" in v["labels"]
        assert any(n["key"] == f"level:{level}" for n in v["notes"])


def test_customer_request_raises_the_level_by_one() -> None:
    # "Customers can request this type of escalation": 09:30, no level triggered yet
    t = ticket("2026-03-03T09:00:00+00:00", fields={"priority": "High"},
               labels=["escalation-requested"])
    assert verdict(policy(P), t, "2026-03-03T09:30:00+00:00")["level"] == "incident-owner"
    # after 17:00 the manager level is triggered; the request lifts it to the director
    assert verdict(policy(P), t, "2026-03-03T17:10:00+00:00")["level"] == "support-director"


def test_resolution_clears_the_escalation() -> None:
    t = ticket("2026-03-03T09:00:00+00:00", status="Resolved", fields={"priority": "High"},
               history=[status("2026-03-04T12:00:00+00:00", "New", "Resolved")])
    v = verdict(policy(P), t, "2026-03-04T13:00:00+00:00")
    assert v["level"] is None
    # 8.5h Tue + 3h Wed = 11.5h > 8h: breached, but resolved
    assert v["metrics"]["resolution"]["state"] == "breached"
    assert v["metrics"]["resolution"]["elapsed_s"] == int(11.5 * 3600)


def test_compliance_goal_and_statuses() -> None:
    p = policy(P)
    # "Lumeon aims to achieve 90% compliance against these stated targets."
    assert p.goal == Fraction(9, 10)
    assert p.status_group("Feedback") == "waiting"
    assert p.status_group("Resolved") == "resolved"
    assert p.status_group("Closed") == "closed"
    assert p.status_group("In Progress") == "open"


# -- the Chief Operating Officer: "the customer may request an escalation" -------------------------

def label(at_: str, added: list[str], by: str = "customer") -> dict[str, object]:
    return {"at": at_, "kind": "label", "by": by, "added": added, "removed": []}


def comment(at_: str, by: str = "owner") -> dict[str, object]:
    return {"at": at_, "kind": "comment", "by": by, "public": True, "text": "Calling you now."}


def test_the_coo_is_reached_only_on_request() -> None:
    # Essentials high from Tue 3 Mar 09:00: the director level triggers Wed 12:30 (above);
    # time alone never goes further ("The Chief Operating Officer is the final point")
    t = ticket("2026-03-03T09:00:00+00:00", fields={"priority": "High"})
    assert verdict(policy(P), t, "2026-04-30T12:00:00+00:00")["level"] == "support-director"
    # "If the incident is still not resolved, the customer may request an escalation to the
    # Chief Operating Officer": the request label raises the director to the COO
    t = ticket("2026-03-03T09:00:00+00:00", fields={"priority": "High"},
               labels=["escalation-requested"],
               history=[label("2026-03-05T09:00:00+00:00", ["escalation-requested"])])
    v = verdict(policy(P), t, "2026-03-05T09:00:00+00:00")
    assert v["level"] == "coo"
    assert "sla-level-coo" in v["labels"]
    note = [n["text"] for n in v["notes"] if n["key"] == "level:coo"]
    assert note and "request" in note[0]


# -- "The incident owner will contact the customer within 1 business day" ----------------------------
# Essentials high, created Tue 3 Mar 09:00; the customer adds escalation-requested Tue 11:00.
# One business day of the office calendar (09:00-17:30, 8h30m): 6h30 Tue (11:00-17:30) +
# 2h Wed -> due Wed 4 Mar 11:00, breached from 11:00 + 1 us.

REQUEST = label("2026-03-03T11:00:00+00:00", ["escalation-requested"])


def requested(*more: dict[str, object]) -> object:
    return ticket("2026-03-03T09:00:00+00:00", status="In Progress", fields={"priority": "High"},
                  labels=["escalation-requested"],
                  history=[status("2026-03-03T09:20:00+00:00", "New", "In Progress"), REQUEST, *more])


def test_requested_escalation_is_answered_within_one_business_day() -> None:
    v = verdict(policy(P), requested(), "2026-03-04T11:00:00+00:00")
    er = v["metrics"]["escalation_response"]
    assert (er["state"], er["elapsed_s"], er["target_s"]) == ("at_risk", int(8.5 * 3600), int(8.5 * 3600))
    assert at(er["due"]) == at("2026-03-04T11:00:00+00:00")
    v = verdict(policy(P), requested(), "2026-03-04T11:00:01+00:00")
    assert v["metrics"]["escalation_response"]["state"] == "breached"
    assert "sla-breached-escalation-response" in v["labels"]
    assert any(n["key"] == "breach:escalation_response:1" for n in v["notes"])


def test_the_owners_call_within_the_day_is_met() -> None:
    # the customer's own comment is no answer; the owner's Wed 10:00 is (6h30 + 1h = 7h30)
    t = requested(comment("2026-03-03T15:00:00+00:00", by="customer"),
                  comment("2026-03-04T10:00:00+00:00"))
    er = verdict(policy(P), t, "2026-03-05T10:00:00+00:00")["metrics"]["escalation_response"]
    assert (er["state"], er["elapsed_s"]) == ("met", int(7.5 * 3600))


def test_no_request_no_clock() -> None:
    t = ticket("2026-03-03T09:00:00+00:00", fields={"priority": "High"})
    er = verdict(policy(P), t, "2026-03-03T12:00:00+00:00")["metrics"]["escalation_response"]
    assert er["state"] == "not_started"


# -- the incident's required details (completeness; commented out in the example) -------------

def _with_completeness():  # type: ignore[no-untyped-def]
    import re

    from tracker_bridge.policyfile import load_policy_text

    from .seedlib import POLICIES

    text = (POLICIES / "care-pathway.yaml").read_text(encoding="utf-8")
    block = re.search(r"(?m)^# completeness:\n(?:#   .*\n)+", text)
    assert block is not None, "the example's commented completeness block"
    on = re.sub(r"(?m)^# ", "", block.group(0))
    return load_policy_text(text.replace(block.group(0), on), "care-pathway+completeness")


def test_the_handbooks_incident_details_are_required() -> None:
    # 000: "providing the following information: Solution and version; Incident
    # description/symptoms; Supporting information; Contact details where required; Impact and
    # urgency"
    p = _with_completeness()
    full = {"priority": "Normal", "component": "Pathways", "version": "5.3.1",
            "impact": "Single user", "urgency": "Job function affected",
            "category": "Support incident"}
    t = ticket("2026-03-02T09:00:00+00:00", fields=full, description="Step 3 fails")
    assert "sla-needs-info" not in verdict(p, t, "2026-03-02T10:00:00+00:00")["labels"]
    partial = {k: v for k, v in full.items() if k not in ("version", "urgency")}
    t = ticket("2026-03-02T09:00:00+00:00", fields=partial, description="Step 3 fails")
    v = verdict(p, t, "2026-03-02T10:00:00+00:00")
    assert "sla-needs-info" in v["labels"]
    (note,) = [n for n in v["notes"] if n["key"] == "needs-info"]
    assert "missing version, urgency (required for the category Support incident)" in note["text"]
    # "Technical question: A query relating to specific system use/functionality": no version,
    # impact or urgency needed
    q = ticket("2026-03-02T09:00:00+00:00", description="How do I copy a pathway?",
               fields={"priority": "Low", "component": "Pathways",
                       "category": "Technical question"})
    assert "sla-needs-info" not in verdict(p, q, "2026-03-02T10:00:00+00:00")["labels"]


def test_closing_needs_the_customer_contacts_agreement() -> None:
    # 000: "Lumeon support will close the incident with the agreement of the customer contact"
    hist = [status("2026-03-02T11:00:00+00:00", "New", "Resolved")]
    by_support = ticket("2026-03-02T09:00:00+00:00", status="Closed",
                        fields={"priority": "Normal"},
                        history=[*hist, status("2026-03-03T09:00:00+00:00", "Resolved", "Closed")])
    v = verdict(policy(P), by_support, "2026-03-03T10:00:00+00:00")
    assert "sla-closed-unconfirmed" in v["labels"]
    by_customer = ticket("2026-03-02T09:00:00+00:00", status="Closed",
                         fields={"priority": "Normal"},
                         history=[*hist, status("2026-03-03T09:00:00+00:00", "Resolved",
                                                "Closed", by="customer")])
    v = verdict(policy(P), by_customer, "2026-03-03T10:00:00+00:00")
    assert "sla-closed-unconfirmed" not in v["labels"]
    # no reminder: the handbook gives no time for one
    resolved = ticket("2026-03-02T09:00:00+00:00", status="Resolved",
                      fields={"priority": "Normal"}, history=hist)
    v = verdict(policy(P), resolved, "2026-06-01T10:00:00+00:00")
    assert not [n for n in v["notes"] if n["key"].startswith("confirm-reminder:")]


def test_an_enhancement_request_goes_to_product_management_without_a_resolution_target() -> None:
    # 000: "Enhancement request: A request to modify the solution to overcome known limitations
    # or functional gaps" ... "will be reported to Lumeon Product Management"
    t = ticket("2026-03-02T09:00:00+00:00", fields={"priority": "High",
                                                    "category": "Enhancement request"})
    v = verdict(policy(P), t, "2026-04-02T09:00:00+00:00")  # a month later
    assert "sla-enhancement" in v["labels"]
    assert v["metrics"]["resolution"]["state"] == "no_target"
    assert "sla-breached-resolution" not in v["labels"]
    assert v["metrics"]["response"]["state"] == "breached"  # still to be answered in 1 bh
    # a technical question keeps its severity's targets (the handbook gives it none of its own)
    q = ticket("2026-03-02T09:00:00+00:00", fields={"priority": "High",
                                                    "category": "Technical question"})
    v = verdict(policy(P), q, "2026-03-02T09:30:00+00:00")
    assert v["class"] == "high" and "sla-enhancement" not in v["labels"]


@pytest.mark.parametrize(
    ("now", "supported", "not_supported"),
    [
        # "If the current version is 5.3.1, support will be offered for versions 5.0.0 to 5.3.1,
        # inclusive." (5.3 came out 2025-10-06 in the example's release list)
        ("2025-11-03T10:00:00+00:00", ["5.0.0", "5.1.3", "5.2.0", "5.3.1"], []),
        # "Subsequent release 6.0.0 will include support for 5.1.x to 6.0.x, inclusive."
        ("2026-03-02T10:00:00+00:00", ["5.1.0", "5.1.9", "5.2.2", "5.3.1", "6.0.0", "6.0.4"],
         ["5.0.0"]),
    ],
)
def test_the_handbooks_supported_releases(now: str, supported: list[str],
                                          not_supported: list[str]) -> None:
    def stage(version: str) -> list[str]:
        t = ticket(now, fields={"priority": "Normal", "version": version})
        return [x for x in verdict(policy(P), t, now)["labels"] if x.startswith("sla-release-")]

    for version in supported:
        assert stage(version) in (["sla-release-full"], ["sla-release-sustaining"]), version
    for version in not_supported:
        # n-4: "a support-only term provided for one year beyond stated EOL"
        assert stage(version) == ["sla-release-extended"], version


def test_an_eosl_release_gets_help_to_upgrade_not_targets() -> None:
    # 5.0 left the n-3 window when 6.0 came out (2026-01-05); a year later it is EOSL:
    # "Lumeon will stop providing any level of support ... providing the necessary information
    # to assist the customer in upgrading to the latest support version"
    now = "2027-02-01T10:00:00+00:00"
    v = verdict(policy(P), ticket(now, fields={"priority": "High", "version": "5.0.2"}), now)
    assert "sla-release-eosl" in v["labels"]
    assert v["metrics"]["response"]["state"] == "no_target"
    assert v["metrics"]["resolution"]["state"] == "no_target"
    (note,) = [n for n in v["notes"] if n["key"] == "eosl:5.0"]
    assert "upgrade to the current release 6.0" in note["text"]
    assert "upgrade path to the latest supported version is in the knowledge base" in note["text"]


def test_only_registered_technical_contacts_open_incidents() -> None:
    # 000: "Only registered Technical Contacts are permitted to open or update incidents"
    now = "2026-03-02T10:00:00+00:00"

    def v(reporter: str) -> dict:  # type: ignore[type-arg]
        t = Ticket.from_dict({**ticket(now, fields={"priority": "Normal",
                                                    "customer": "Example Trust"}).to_dict(),
                              "reporter": reporter})
        return verdict(policy(P), t, now)

    assert "sla-unregistered-contact" not in v("Tom Reid")["labels"]
    out = v("Sam Stranger")
    assert "sla-unregistered-contact" in out["labels"]
    assert [n["key"] for n in out["notes"] if n["key"].startswith("unregistered:")] == [
        "unregistered:Sam-Stranger"]


@pytest.mark.parametrize(("plan", "allowed"), [("essentials", 3), ("professional", 5),
                                               ("premium", 5)])
def test_the_plans_contact_limits_are_enforced_at_load(plan: str, allowed: int) -> None:
    # "three named technical contacts per live licensed instance" + "2 additional named
    # technical contacts per live licensed instance" on the higher plans
    from tracker_bridge.errors import ConfigError
    from tracker_bridge.policyfile import load_policy_text

    from .seedlib import POLICIES

    text = (POLICIES / "care-pathway.yaml").read_text(encoding="utf-8")
    old = "      plan: essentials\n      instances: 1\n      contacts: [Priya Shah, Tom Reid, Ana Lopes]"
    assert old in text

    def with_contacts(n: int) -> str:
        names = ", ".join(f"Contact {i}" for i in range(n))
        return text.replace(old, f"      plan: {plan}\n      instances: 1\n      contacts: [{names}]")

    load_policy_text(with_contacts(allowed), "care.yaml")
    with pytest.raises(ConfigError) as info:
        load_policy_text(with_contacts(allowed + 1), "care.yaml")
    assert f"more than the {allowed} the {plan} plan allows" in info.value.problems[0][1]
