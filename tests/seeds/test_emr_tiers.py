"""Guide 002 (EPTS / OpenMRS support structure, Mozambique) replayed against emr-tiers.yaml.

Calendar (our choice, fixed in length by the guide's "8 hours (1 day)"): Africa/Maputo
(UTC+2, no DST), Mon-Fri 08:00-12:00 and 13:00-17:00, Mozambique holidays; 1bd = 8h.
Resolve-or-escalate times (L1 / L2 / L3):
  critical 30m / 30m / 4h;  urgent 1h / 1h / 8h;  high 4h / 8h / 24h;  normal 16h / 40h / 80h.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from .seedlib import at, field, hours, policy, status, ticket, verdict

P = "emr-tiers"


def working():  # type: ignore[no-untyped-def]
    return policy(P).calendars["working"]


# -- "Table: Prioritization Matrix for Issues" -------------------------------------------------------

MATRIX = [
    ("Patient Care / Safety", "Single User", "critical"),
    ("Patient Care / Safety", "Multiple Users", "critical"),
    ("Patient Care / Safety", "Software Wide", "critical"),
    ("Job Stopped", "Single User", "high"),
    ("Job Stopped", "Multiple Users", "urgent"),
    ("Job Stopped", "Software Wide", "urgent"),
    ("Job Function Affected", "Single User", "high"),
    ("Job Function Affected", "Multiple Users", "high"),
    ("Job Function Affected", "Software Wide", "urgent"),
    ("Needs addressing but not affecting job", "Single User", "normal"),
    ("Needs addressing but not affecting job", "Multiple Users", "normal"),
    ("Needs addressing but not affecting job", "Software Wide", "normal"),
]


@pytest.mark.parametrize(("urgency", "impact", "expected"), MATRIX)
def test_every_cell_of_the_prioritization_matrix(urgency: str, impact: str, expected: str) -> None:
    # Redmine gives every issue a priority (default Normal); it must not shadow the matrix.
    t = ticket("2026-03-02T08:00:00+02:00",
               fields={"priority": "Normal", "urgency": urgency, "impact": impact})
    v = verdict(policy(P), t, "2026-03-02T08:00:00+02:00")
    assert v["class"] == expected
    assert v["class_rule"].startswith("matrix")
    assert f"sla-{expected}" in v["labels"]


def test_matrix_has_exactly_the_guides_twelve_cells() -> None:
    m = policy(P).classify.matrix
    assert m is not None
    cells = {(u, i): c for u, row in m.table.items() for i, c in row.items()}
    assert cells == {(u, i): c for u, i, c in MATRIX}


def test_an_agreed_prioritization_field_wins_over_the_matrix() -> None:
    t = ticket("2026-03-02T08:00:00+02:00",
               fields={"prioritization": "Urgent", "urgency": "Needs addressing but not affecting job",
                       "impact": "Single User"})
    v = verdict(policy(P), t, "2026-03-02T08:00:00+02:00")
    assert (v["class"], v["class_rule"]) == ("urgent", "map:prioritization")


def test_no_urgency_or_impact_means_normal() -> None:
    v = verdict(policy(P), ticket("2026-03-02T08:00:00+02:00", fields={"priority": "Immediate"}),
                "2026-03-02T08:00:00+02:00")
    assert (v["class"], v["class_rule"]) == ("normal", "default")


# -- the guide's hours-to-days conversions -------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "work", "days", "expected"),
    [
        # from Mon 2 Mar 2026 08:00 (no Mozambique holiday until 7 Apr)
        ("High - 8 hours (1 day)", 8, 1, "2026-03-02T17:00:00+02:00"),
        ("Normal - 16 hours (2 days)", 16, 2, "2026-03-03T17:00:00+02:00"),
        ("High - 24 hours (3 days)", 24, 3, "2026-03-04T17:00:00+02:00"),
        ("Normal - 40 hours (1 week)", 40, 5, "2026-03-06T17:00:00+02:00"),
        ("Normal - 80 hours (2 weeks)", 80, 10, "2026-03-13T17:00:00+02:00"),
    ],
)
def test_hours_and_days_agree(text: str, work: int, days: int, expected: str) -> None:
    start = at("2026-03-02T08:00:00+02:00")
    cal = working()
    assert cal.add(start, hours(work)) == at(expected), text
    assert cal.add(start, days * cal.business_day) == at(expected), text


# -- case study: José, prioritized "High", tier 2 -> tier 3 -> tier 4 within 5 days ------------------
# "Since the issue is only preventing work for a single user, the issue would be prioritized
# as "High". After searching the knowledge base, Tier 2 would reassign to Tier 3 within 1 day,
# Tier 3 would reassign to Tier 4 (development) within 3 days, and Tier 4 would then resolve
# the problem in the estimated timeframe given at the time of their response. In this case,
# the issue would have been solved within a maximum of 5 days".
#
# Reported Mon 2 Mar 2026 08:00 to Tier 2, which creates the ticket (tier L2).
#   L2 high: 8h -> Mon 08:00-12:00 + 13:00-17:00 -> time up Mon 17:00.
#   Tier 2 reassigns at the last moment, Mon 17:00. L3 high: 24h from Mon 17:00 (closed) ->
#   Tue 8h, Wed 8h, Thu 8h -> time up Thu 5 Mar 17:00.
#   Tier 3 reassigns at Thu 17:00. Tier 4: "Response Time: 1 day" = 8h -> Fri 6 Mar 17:00,
#   exactly 40 working hours = 5 working days after the report.

JOSE_CREATED = "2026-03-02T08:00:00+02:00"
JOSE_FIELDS = {"urgency": "Job Stopped", "impact": "Single User"}
JOSE_ANSWERED = status("2026-03-02T08:40:00+02:00", "New", "In Progress")
TO_L3 = field("2026-03-02T17:00:00+02:00", "tier", "L2", "L3")
TO_L4 = field("2026-03-05T17:00:00+02:00", "tier", "L3", "L4")


def jose(tier: str, *moves: dict[str, object]) -> object:
    return ticket(JOSE_CREATED, status="In Progress", fields={**JOSE_FIELDS, "tier": tier},
                  history=[JOSE_ANSWERED, *moves], subject="Error generating monthly reports")


@pytest.mark.parametrize(
    ("now", "tier", "escalate_to"),
    [
        ("2026-03-02T08:00:00+02:00", "L2", None),
        ("2026-03-02T16:59:59+02:00", "L2", None),
        # reassigned on time: 0 spent in L3
        ("2026-03-02T17:00:00+02:00", "L3", None),
        ("2026-03-03T12:30:00+02:00", "L3", None),
        # 8h Tue + 8h Wed + 7h59m59s Thu
        ("2026-03-05T16:59:59+02:00", "L3", None),
        # in development: no time limit ("Must be determined at time of issue")
        ("2026-03-05T17:00:00+02:00", "L4", None),
        ("2026-03-09T12:00:00+02:00", "L4", None),
    ],
)
def test_high_case_study_on_time(now: str, tier: str, escalate_to: str | None) -> None:
    v = verdict(policy(P), jose("L4", TO_L3, TO_L4), now)
    assert v["class"] == "high"
    assert v["tier"] == tier
    assert v["escalate_to"] == escalate_to
    assert not any(lbl.startswith("sla-escalate-to") for lbl in v["labels"])
    # answered by Tier 2 at 08:40, within the 1-hour response time
    assert v["metrics"]["response"]["state"] == ("running" if at(now) < at(JOSE_ANSWERED["at"]) else "met")


def test_high_case_study_tier_2_time_is_up_at_monday_1700() -> None:
    t = jose("L2")  # nobody reassigns
    assert verdict(policy(P), t, "2026-03-02T16:59:59+02:00")["escalate_to"] is None
    for now in ("2026-03-02T17:00:00+02:00", "2026-03-03T09:00:00+02:00"):
        v = verdict(policy(P), t, now)
        assert (v["tier"], v["escalate_to"]) == ("L2", "L3")
        assert "sla-escalate-to-L3" in v["labels"]
        assert any(n["key"] == "tier:L3" for n in v["notes"])


def test_high_case_study_tier_3_time_is_up_three_days_later() -> None:
    t = jose("L3", TO_L3)  # tier 3 keeps it
    assert verdict(policy(P), t, "2026-03-05T16:59:59+02:00")["escalate_to"] is None
    v = verdict(policy(P), t, "2026-03-05T17:00:00+02:00")
    assert (v["tier"], v["escalate_to"]) == ("L3", "L4")
    assert "sla-escalate-to-L4" in v["labels"]


def test_high_case_study_solved_within_five_days() -> None:
    cal = working()
    created = at(JOSE_CREATED)
    tier4_due = at("2026-03-06T17:00:00+02:00")  # Thu 17:00 + 8h (Tier 4 "Response Time: 1 day")
    assert cal.add(at(TO_L4["at"]), 1 * cal.business_day) == tier4_due  # type: ignore[arg-type]
    assert cal.working(created, tier4_due) == hours(40)
    assert cal.add(created, 5 * cal.business_day) == tier4_due


# -- case study: Andre, prioritized "Urgent": 1 hour at tier 2, 1 day at tier 3 ---------------------
# "With multiple users unable to do their job, the issue would be prioritized as "Urgent" and
# result in resolution or reassignment within 1 hour at Tier 2, 1 day at Tier 3, and TBD at
# Tier 4 (development)."
#
# Reported Tue 3 Mar 2026 10:00 to Tier 2.
#   L2 urgent 1h: time up Tue 11:00; reassigned then.
#   L3 urgent 8h from Tue 11:00: 11:00-12:00 (1h), lunch, 13:00-17:00 (5h), Wed 08:00 + 3h
#   -> time up Wed 4 Mar 11:00; reassigned then to Tier 4: no limit.

ANDRE_CREATED = "2026-03-03T10:00:00+02:00"
ANDRE_FIELDS = {"urgency": "Job Stopped", "impact": "Multiple Users"}
A_TO_L3 = field("2026-03-03T11:00:00+02:00", "tier", "L2", "L3")
A_TO_L4 = field("2026-03-04T11:00:00+02:00", "tier", "L3", "L4")


def andre(tier: str, *moves: dict[str, object]) -> object:
    return ticket(ANDRE_CREATED, status="In Progress", fields={**ANDRE_FIELDS, "tier": tier},
                  history=[status("2026-03-03T10:10:00+02:00", "New", "In Progress"), *moves],
                  subject="Nobody can reach the server")


@pytest.mark.parametrize(
    ("now", "tier", "escalate_to"),
    [
        ("2026-03-03T10:59:59+02:00", "L2", None),
        ("2026-03-03T11:00:00+02:00", "L3", None),
        ("2026-03-03T12:45:00+02:00", "L3", None),   # lunch hour does not count
        ("2026-03-04T10:59:59+02:00", "L3", None),
        ("2026-03-04T11:00:00+02:00", "L4", None),   # "TBD at Tier 4"
        ("2026-03-10T11:00:00+02:00", "L4", None),
    ],
)
def test_urgent_case_study_on_time(now: str, tier: str, escalate_to: str | None) -> None:
    v = verdict(policy(P), andre("L4", A_TO_L3, A_TO_L4), now)
    assert v["class"] == "urgent"
    assert (v["tier"], v["escalate_to"]) == (tier, escalate_to)


def test_urgent_case_study_one_hour_at_tier_2() -> None:
    t = andre("L2")
    assert verdict(policy(P), t, "2026-03-03T10:59:59+02:00")["escalate_to"] is None
    assert verdict(policy(P), t, "2026-03-03T11:00:00+02:00")["escalate_to"] == "L3"


def test_urgent_case_study_one_day_at_tier_3() -> None:
    t = andre("L3", A_TO_L3)
    assert verdict(policy(P), t, "2026-03-04T10:59:59+02:00")["escalate_to"] is None
    v = verdict(policy(P), t, "2026-03-04T11:00:00+02:00")
    assert (v["tier"], v["escalate_to"]) == ("L3", "L4")


# -- a Mozambique holiday inside a tier's time -------------------------------------------------------

def test_womens_day_stops_the_tier_clock() -> None:
    # Tue 7 Apr 2026, Women's Day. High at L2 from Mon 6 Apr 13:00: 4h Mon (13:00-17:00),
    # Tue closed, Wed 08:00 + 4h = 12:00, the lunch break: time up Wed 8 Apr 12:00.
    t = ticket("2026-04-06T13:00:00+02:00", status="In Progress",
               fields={**JOSE_FIELDS, "tier": "L2"},
               history=[status("2026-04-06T13:05:00+02:00", "New", "In Progress")])
    assert working().working(at("2026-04-07T00:00:00+02:00"), at("2026-04-08T00:00:00+02:00")) == timedelta(0)
    assert verdict(policy(P), t, "2026-04-08T11:59:59+02:00")["escalate_to"] is None
    assert verdict(policy(P), t, "2026-04-08T12:00:00+02:00")["escalate_to"] == "L3"


def test_response_within_one_hour() -> None:
    # "Response Time: 1 hour". Reported Fri 6 Mar 16:30: 30 min Fri + Mon 08:00 + 30 min.
    t = ticket("2026-03-06T16:30:00+02:00", fields={**JOSE_FIELDS, "tier": "L2"})
    v = verdict(policy(P), t, "2026-03-06T16:30:00+02:00")
    assert v["metrics"]["response"]["due"] is not None
    assert at(v["metrics"]["response"]["due"]) == at("2026-03-09T08:30:00+02:00")
    assert v["metrics"]["resolution"]["state"] == "no_target"


# -- "Response Time" per tier, on every reassignment (metric tier_response) ----------------------------
# Tiers 1-3: "Response Time: 1 hour"; Tier 4: "Response Time: 1 day" (8 working hours).

def reply(at_: str, by: str = "agent") -> dict[str, object]:
    return {"at": at_, "kind": "comment", "by": by, "public": True, "text": "On it."}


def test_jose_tier_4_miss_is_flagged() -> None:
    # José's ticket reaches Tier 4 (development) Thu 5 Mar 17:00 and nobody there answers.
    # 1 day = 8h of the working calendar from Thu 17:00 (closed): Fri 08:00-12:00, 13:00-17:00
    # -> used up Fri 6 Mar 17:00, breached at the next opening, Mon 9 Mar 08:00 + 1 us.
    # (Tier 2 answered at 08:40, Tier 3 on Tue at 08:30: within their hour.)
    t = jose("L4", TO_L3, reply("2026-03-03T08:30:00+02:00", by="senior"), TO_L4)
    v = verdict(policy(P), t, "2026-03-06T17:00:00+02:00")
    tr = v["metrics"]["tier_response"]
    assert tr["state"] == "at_risk"
    assert at(tr["due"]) == at("2026-03-06T17:00:00+02:00")
    assert at(v["next_change"]) == at("2026-03-09T08:00:00.000001+02:00")
    v = verdict(policy(P), t, "2026-03-09T08:00:01+02:00")
    assert v["metrics"]["tier_response"]["state"] == "breached"
    assert "sla-breached-tier-response" in v["labels"]
    assert [n["key"] for n in v["notes"] if n["key"].startswith("breach:")] == ["breach:tier_response:1"]
    assert [(o["tier"], o["breached"]) for o in v["metrics"]["tier_response"]["occurrences"]] == [
        ("L2", False), ("L3", False), ("L4", True)]
    # without Tier 3's reply its entry is a breach too, the first one: L4's is then the second
    v = verdict(policy(P), jose("L4", TO_L3, TO_L4), "2026-03-09T08:00:01+02:00")
    assert [n["key"] for n in v["notes"] if n["key"].startswith("breach:")] == [
        "breach:tier_response:1", "breach:tier_response:2"]


def test_jose_tier_4_answering_within_a_day_is_met() -> None:
    # the developer replies Fri 6 Mar 11:00: 3h after entering L4 (08:00-11:00)
    t = jose("L4", TO_L3, TO_L4, reply("2026-03-06T11:00:00+02:00", by="developer"))
    v = verdict(policy(P), t, "2026-03-09T12:00:00+02:00")
    tr = v["metrics"]["tier_response"]
    assert (tr["state"], tr["elapsed_s"], tr["target_s"]) == ("met", 3 * 3600, 8 * 3600)
    assert "sla-breached-tier-response" not in v["labels"]


def test_every_reassignment_restarts_the_tier_response() -> None:
    # José at L3 from Mon 17:00 (closed): Tier 3's hour runs Tue 08:00-09:00.
    t = jose("L3", TO_L3)
    v = verdict(policy(P), t, "2026-03-03T08:30:00+02:00")
    tr = v["metrics"]["tier_response"]
    assert (tr["state"], tr["elapsed_s"]) == ("running", 30 * 60)
    assert at(tr["due"]) == at("2026-03-03T09:00:00+02:00")
    # the L2 entry was answered at 08:40 (40 min): met, not breached
    first = tr["occurrences"][0]
    assert (first["tier"], first["elapsed_s"], first["breached"]) == ("L2", 40 * 60, False)
    # Tier 3 replies Tue 08:50: met
    t = jose("L3", TO_L3, reply("2026-03-03T08:50:00+02:00", by="senior"))
    tr = verdict(policy(P), t, "2026-03-03T12:00:00+02:00")["metrics"]["tier_response"]
    assert (tr["state"], tr["elapsed_s"]) == ("met", 50 * 60)


def test_andre_urgent_tier_3_response_within_the_hour() -> None:
    # Andre's ticket moves to L3 Tue 3 Mar 11:00; nobody answers: 1h -> 12:00, the lunch hour
    # does not count, so it is breached at 13:00 + 1 us.
    t = andre("L3", A_TO_L3)
    assert verdict(policy(P), t, "2026-03-03T12:59:59+02:00")["metrics"]["tier_response"]["state"] == "at_risk"
    v = verdict(policy(P), t, "2026-03-03T13:00:01+02:00")
    assert v["metrics"]["tier_response"]["state"] == "breached"
    # answered at 11:30 instead: met
    t = andre("L3", A_TO_L3, reply("2026-03-03T11:30:00+02:00"))
    assert verdict(policy(P), t, "2026-03-03T14:00:00+02:00")["metrics"]["tier_response"]["state"] == "met"
