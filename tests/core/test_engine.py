"""The engine's clocks, classification and escalation (SLA-SEMANTICS.md sections 3-7).

Expected instants are worked out by hand in the comments. The policy below runs on a plain
UTC office calendar (Mon-Fri 09:00-17:00, business day 8h) so the arithmetic stays readable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.policyfile import load_policy_text

POLICY = """
name: test
timezone: UTC
calendars:
  office: {week: {mon-fri: "09:00-17:00"}}
statuses:
  new: [New]
  waiting: [Feedback]
  resolved: [Resolved]
  closed: [Closed, Rejected]
classes:
  critical: {response: 30m, resolution: {target: 4h, calendar: always}}
  high:     {response: 1h,  resolution: 8h}
  medium:   {response: 1bd, resolution: 5bd}
  low:      {response: 1bd, resolution: none}
default_class: medium
plans:
  essentials: {calendar: office}
  premium: {calendar: office, by_class: {critical: always}}
default_plan: essentials
classify:
  field: priority
  map: {Immediate: critical, High: high, Normal: medium, Low: low}
  matrix:
    impact: impact
    urgency: urgency
    table:
      "Job stopped": {"Single user": high, "Multiple users": critical}
  overrides:
    - class: critical
      when: {text_matches: "(?i)patient safety"}
    - class: critical
      when: {field: component, in: [EMR]}
tiers:
  field: tier
  ladder:
    L1: {critical: 30m, high: 4h, medium: 16h}
    L2: {critical: 30m, high: 8h}
    L3: {}
escalation:
  levels:
    - {name: owner, after: {response: 100%}}
    - {name: manager, after: {resolution: 100%}}
    - {name: director, after: {resolution: 150%}}
  requested_label: escalation-requested
"""


@pytest.fixture(scope="module")
def policy():
    return load_policy_text(POLICY, "test.yaml")


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def ticket(
    status: str = "New",
    created: str = "2026-03-02T09:00",  # a Monday
    fields: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    labels: list[str] | None = None,
    **extra: Any,
) -> Ticket:
    data = {
        "tracker": "t",
        "key": "1",
        "created": created + ":00+00:00",
        "status": status,
        "reporter": "alice",
        "subject": extra.pop("subject", "Report fails"),
        "description": extra.pop("description", ""),
        "fields": {"priority": "High", **(fields or {})},
        "labels": labels or [],
        "history": [{**ev, "at": ev["at"] + ":00+00:00"} for ev in (history or [])],
    }
    return Ticket.from_dict(data)


def st_ev(at: str, frm: str, to: str) -> dict[str, Any]:
    return {"at": at, "kind": "status", "from": frm, "to": to, "by": "bob"}


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "subject", "expected", "rule"),
    [
        ({"priority": "High"}, "x", "high", "map:priority"),
        ({"priority": "high"}, "x", "high", "map:priority"),  # case-insensitive map
        ({"priority": "High"}, "Risk to PATIENT SAFETY", "critical", "override:0"),
        ({"priority": "Low", "component": "EMR"}, "x", "critical", "override:1"),
        (
            {"priority": "Odd", "urgency": "Job stopped", "impact": "Multiple users"},
            "x",
            "critical",
            "matrix:urgencyximpact",
        ),
        ({"priority": "Odd", "urgency": "Job stopped"}, "x", "medium", "default"),
        ({"priority": None}, "x", "medium", "default"),
    ],
)
def test_classification_order(policy, fields, subject, expected, rule) -> None:
    v = evaluate(policy, ticket(fields=fields, subject=subject), utc("2026-03-02T09:05"))
    assert (v.class_, v.class_rule) == (expected, rule)


def test_unknown_plan_falls_back_with_a_warning(policy) -> None:
    v = evaluate(policy, ticket(fields={"plan": "gold"}), utc("2026-03-02T09:05"))
    assert v.plan == "essentials"
    assert any("unknown plan 'gold'" in w for w in v.warnings)


# -- clocks -------------------------------------------------------------------------------------


def test_running_then_at_risk_then_breached(policy) -> None:
    t = ticket()  # high: response 1h on office, created Mon 09:00
    v = evaluate(policy, t, utc("2026-03-02T09:30"))
    r = v.metrics["response"]
    assert (r.state, r.elapsed, r.due) == (
        "running",
        timedelta(minutes=30),
        utc("2026-03-02T10:00"),
    )
    assert v.next_change == utc("2026-03-02T09:45")  # 75% of 1h
    assert evaluate(policy, t, utc("2026-03-02T09:45")).metrics["response"].state == "at_risk"
    # exactly at the target: used up but not exceeded
    assert evaluate(policy, t, utc("2026-03-02T10:00")).metrics["response"].state == "at_risk"
    late = evaluate(policy, t, utc("2026-03-02T10:00:01"))
    assert late.metrics["response"].state == "breached"
    assert late.metrics["response"].due == utc("2026-03-02T10:00")
    assert "sla-breached-response" in late.labels
    assert any(n.key == "breach:response" for n in late.notes)


def test_response_stops_at_first_status_change_out_of_new(policy) -> None:
    t = ticket(status="In Progress", history=[st_ev("2026-03-02T09:20", "New", "In Progress")])
    r = evaluate(policy, t, utc("2026-03-03T12:00")).metrics["response"]
    assert (r.state, r.elapsed, r.due, r.remaining) == ("met", timedelta(minutes=20), None, None)


def test_reporters_comment_and_private_notes_are_not_a_response(policy) -> None:
    t = ticket(
        history=[
            {
                "at": "2026-03-02T09:10",
                "kind": "comment",
                "by": "alice",
                "public": True,
                "text": "more info",
            },
            {
                "at": "2026-03-02T09:15",
                "kind": "comment",
                "by": "bob",
                "public": False,
                "text": "internal",
            },
            {
                "at": "2026-03-02T09:40",
                "kind": "comment",
                "by": "bob",
                "public": True,
                "text": "Looking",
            },
        ]
    )
    r = evaluate(policy, t, utc("2026-03-02T12:00")).metrics["response"]
    assert (r.state, r.elapsed) == ("met", timedelta(minutes=40))


def test_waiting_pauses_and_has_no_deadline(policy) -> None:
    t = ticket(
        status="Feedback",
        history=[
            st_ev("2026-03-02T10:00", "New", "In Progress"),
            st_ev("2026-03-02T11:00", "In Progress", "Feedback"),
        ],
    )
    res = evaluate(policy, t, utc("2026-03-04T15:00")).metrics["resolution"]
    assert res.state == "paused"
    assert res.elapsed == timedelta(hours=2)  # 09:00-11:00 only
    assert res.due is None and res.remaining == timedelta(hours=6)
    assert "sla-paused" in evaluate(policy, t, utc("2026-03-04T15:00")).labels


def test_resume_after_waiting_due_is_shifted_by_the_pause(policy) -> None:
    t = ticket(
        status="In Progress",
        history=[
            st_ev("2026-03-02T10:00", "New", "Feedback"),
            st_ev("2026-03-03T09:00", "Feedback", "In Progress"),
        ],
    )
    # 1h before the pause; resumes Tue 09:00 with 7h left -> due Tue 16:00
    res = evaluate(policy, t, utc("2026-03-03T10:00")).metrics["resolution"]
    assert (res.state, res.elapsed, res.due) == (
        "running",
        timedelta(hours=2),
        utc("2026-03-03T16:00"),
    )


def test_reopen_keeps_accumulating_resolution_time(policy) -> None:
    t = ticket(
        status="In Progress",
        history=[
            st_ev("2026-03-02T09:30", "New", "In Progress"),
            st_ev("2026-03-02T12:00", "In Progress", "Resolved"),
            st_ev("2026-03-03T09:00", "Resolved", "In Progress"),
        ],
    )
    res = evaluate(policy, t, utc("2026-03-03T11:00")).metrics["resolution"]
    # 3h before resolution + 2h since reopening; 3h of 8h left -> due Tue 14:00
    assert (res.state, res.elapsed, res.due) == (
        "running",
        timedelta(hours=5),
        utc("2026-03-03T14:00"),
    )


def test_resolved_ticket_is_met_and_gets_a_kb_note(policy) -> None:
    t = ticket(
        status="Resolved",
        subject="Report fails for Mrs Jane Doe",
        description="Steps to reproduce: open report for NHS number 943 476 5919, DOB 01/02/1960",
        history=[
            st_ev("2026-03-02T09:30", "New", "In Progress"),
            {
                "at": "2026-03-02T11:00",
                "kind": "comment",
                "by": "bob",
                "public": True,
                "text": "Workaround: clear the cache. Call 020 7946 0018 or mail x.y@nhs.net",
            },
            st_ev("2026-03-02T12:00", "In Progress", "Resolved"),
        ],
    )
    v = evaluate(policy, t, utc("2026-03-05T12:00"))
    assert v.metrics["resolution"].state == "met"
    assert v.metrics["resolution"].stopped_at == utc("2026-03-02T12:00")
    kb = next(n for n in v.notes if n.key == "kb")
    assert "Workaround: clear the cache" in kb.text
    for secret in ("Jane Doe", "943 476 5919", "01/02/1960", "020 7946 0018", "x.y@nhs.net"):
        assert secret not in kb.text
    assert kb.text.count("[redacted]") >= 5


def test_class_change_recomputes_elapsed_over_the_whole_history(policy) -> None:
    t = ticket(
        fields={"priority": "Immediate"},
        history=[
            {
                "at": "2026-03-02T10:00",
                "kind": "field",
                "field": "priority",
                "from": "High",
                "to": "Immediate",
                "by": "bob",
            }
        ],
    )
    v = evaluate(policy, t, utc("2026-03-02T10:30"))
    assert v.class_ == "critical"
    # critical resolution is 4h on `always` from creation (09:00), not from the change
    res = v.metrics["resolution"]
    assert (res.calendar, res.elapsed, res.due) == (
        "always",
        timedelta(minutes=90),
        utc("2026-03-02T13:00"),
    )
    # seen as of 09:30 the ticket was still high (the change is undone)
    assert evaluate(policy, t, utc("2026-03-02T09:30")).class_ == "high"


def test_no_target_is_reported_without_deadline(policy) -> None:
    v = evaluate(policy, ticket(fields={"priority": "Low"}), utc("2026-03-09T09:00"))
    res = v.metrics["resolution"]
    assert (res.state, res.target, res.due) == ("no_target", None, None)
    assert res.elapsed == timedelta(hours=40)


# -- escalation ---------------------------------------------------------------------------------


def test_tier_escalation_after_its_time_in_tier(policy) -> None:
    t = ticket(
        status="In Progress",
        fields={"tier": "L2"},
        history=[
            st_ev("2026-03-02T09:10", "New", "In Progress"),
            {
                "at": "2026-03-02T13:00",
                "kind": "field",
                "field": "tier",
                "from": "L1",
                "to": "L2",
                "by": "bob",
            },
        ],
    )
    # high: 8h in L2 from Mon 13:00 -> Tue 13:00 (4h Monday + 4h Tuesday)
    before = evaluate(policy, t, utc("2026-03-03T12:59"))
    assert (before.tier, before.escalate_to, before.next_change) == (
        "L2",
        None,
        utc("2026-03-03T13:00"),
    )
    after = evaluate(policy, t, utc("2026-03-03T13:00"))
    assert after.escalate_to == "L3"
    assert "sla-escalate-to-L3" in after.labels
    assert any(n.key == "tier:L3" for n in after.notes)


def test_hierarchical_levels_rise_with_the_clocks(policy) -> None:
    t = ticket()  # high: response 1h, resolution 8h (office)
    assert evaluate(policy, t, utc("2026-03-02T09:59")).level is None
    assert evaluate(policy, t, utc("2026-03-02T10:00")).level == "owner"
    assert evaluate(policy, t, utc("2026-03-02T17:00")).level == "manager"  # 8h used
    v = evaluate(policy, t, utc("2026-03-03T13:00"))  # 12h = 150% of 8h
    assert (v.level, v.level_index) == ("director", 3)
    assert "sla-level-director" in v.labels


def test_customer_request_raises_the_level_by_one(policy) -> None:
    v = evaluate(policy, ticket(labels=["escalation-requested"]), utc("2026-03-02T10:30"))
    assert v.level == "manager"


def test_levels_never_go_down_while_open_and_clear_on_resolution(policy) -> None:
    # the ticket already carries the director label from an earlier cycle; a priority
    # downgrade to low would compute no level, but the level stays
    t = ticket(fields={"priority": "Low"}, labels=["sla-level-director"])
    assert evaluate(policy, t, utc("2026-03-02T09:30")).level == "director"
    resolved = ticket(
        status="Resolved",
        labels=["sla-level-director"],
        history=[st_ev("2026-03-02T09:20", "New", "Resolved")],
    )
    v = evaluate(policy, resolved, utc("2026-03-02T09:30"))
    assert v.level is None and not any(lb.startswith("sla-level") for lb in v.labels)


def test_labels_are_all_under_the_prefix_and_known(policy) -> None:
    known = set(policy.all_labels())
    v = evaluate(policy, ticket(labels=["customer-label"]), utc("2026-03-04T09:00"))
    assert v.labels and v.labels <= known
    assert "customer-label" not in v.labels


# -- properties -------------------------------------------------------------------------------

statuses = st.sampled_from(["New", "In Progress", "Feedback", "Resolved", "Closed"])


@st.composite
def lives(draw):
    created = datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 60 * 24 * 14))
    )
    steps = draw(st.lists(st.tuples(st.integers(1, 60 * 30), statuses), max_size=8))
    history, at, prev = [], created, "New"
    for gap, to in steps:
        at += timedelta(minutes=gap)
        history.append(
            {"at": at.isoformat(), "kind": "status", "from": prev, "to": to, "by": "bob"}
        )
        prev = to
    prio = draw(st.sampled_from(["Immediate", "High", "Normal"]))
    fields = {"priority": prio}
    tier = draw(st.sampled_from([None, "L1", "L2", "L3"]))
    if tier is not None:
        fields["tier"] = tier
    labels = draw(
        st.lists(
            st.sampled_from(["escalation-requested", "sla-level-owner", "x"]),
            unique=True,
            max_size=2,
        )
    )
    t = Ticket.from_dict(
        {
            "tracker": "t",
            "key": "p",
            "created": created.isoformat(),
            "status": prev,
            "reporter": "alice",
            "fields": fields,
            "labels": labels,
            "history": history,
        }
    )
    return t, at


@settings(max_examples=150, deadline=None)
@given(life=lives(), later=st.integers(0, 60 * 24 * 20))
def test_elapsed_is_monotone_and_bounded(policy, life, later) -> None:
    t, last = life
    now1 = last + timedelta(minutes=later)
    now2 = now1 + timedelta(hours=7)
    v1, v2 = evaluate(policy, t, now1), evaluate(policy, t, now2)
    for m in v1.metrics:
        assert v1.metrics[m].elapsed <= v2.metrics[m].elapsed
        cal = policy.calendars[v1.metrics[m].calendar]
        assert v1.metrics[m].elapsed <= cal.working(t.created, now1)


@settings(max_examples=150, deadline=None)
@given(life=lives(), later=st.integers(0, 60 * 24 * 5))
def test_due_is_the_breach_instant(policy, life, later) -> None:
    t, last = life
    now = last + timedelta(minutes=later)
    v = evaluate(policy, t, now)
    for name, m in v.metrics.items():
        if m.due is not None and m.due > now:
            assert evaluate(policy, t, m.due).metrics[name].state != "breached"
            # breached is elapsed > target: one more microsecond of *working* time, which
            # for a deadline at a window's end comes at the next opening
            cal = policy.calendars[m.calendar]
            after = cal.add(m.due, timedelta(microseconds=1))
            assert evaluate(policy, t, after).metrics[name].state == "breached"


@settings(max_examples=400, deadline=None)
@given(life=lives(), later=st.integers(0, 60 * 24 * 5))
def test_next_change_is_when_the_verdict_changes(policy, life, later) -> None:
    t, last = life
    now = last + timedelta(minutes=later)
    v = evaluate(policy, t, now)
    if v.next_change is not None:
        assert v.next_change > now
        just_before = evaluate(policy, t, v.next_change - timedelta(microseconds=1))
        at = evaluate(policy, t, v.next_change)
        summary = lambda x: ({k: m.state for k, m in x.metrics.items()}, x.level, x.escalate_to)  # noqa: E731
        assert summary(just_before) == summary(v)
        assert summary(at) != summary(v)


def test_kb_note_takes_the_fix_written_just_after_resolving_never_a_bridge_note(policy) -> None:
    t = ticket(
        status="Resolved",
        history=[
            st_ev("2026-03-02T09:30", "New", "Resolved"),
            {
                "at": "2026-03-02T09:31",
                "kind": "comment",
                "by": "bob",
                "public": True,
                "text": "Fixed by re-indexing the reports table.",
            },
            {
                "at": "2026-03-02T09:40",
                "kind": "comment",
                "by": "bridge",
                "public": True,
                "text": "SLA breach: ... [tracker-bridge:note=breach:response]",
            },
        ],
    )
    kb = next(n for n in evaluate(policy, t, utc("2026-03-02T10:00")).notes if n.key == "kb")
    assert "Fixed by re-indexing the reports table." in kb.text
    assert "SLA breach" not in kb.text
    assert "SLA resolution: met, 30m of 8h" in kb.text
