"""The engine's clocks, classification and escalation (docs/semantics.md).

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


# -- the compiled policy and the texts written when read ------------------------------------


def _resolved_breached_escalated() -> Ticket:
    """Resolved late (a breach and a KB note), escalated in tier and level while open."""
    return ticket(
        status="Resolved",
        fields={"tier": "L1"},
        description="Steps to reproduce: open the report",
        history=[
            st_ev("2026-03-02T09:00", "New", "In Progress"),
            {"at": "2026-03-04T10:00", "kind": "comment", "by": "bob", "public": True,
             "text": "Fixed by clearing the cache."},
            st_ev("2026-03-04T10:05", "In Progress", "Resolved"),
        ],
    )


def test_note_texts_and_reasons_are_written_only_when_read(policy, monkeypatch) -> None:
    import tracker_bridge.core.engine as engine

    calls = {"kb": 0, "explain": 0}
    real_kb, real_explain = engine.kb_note, engine._explain

    def counting_kb(*args: Any, **kwargs: Any) -> str:
        calls["kb"] += 1
        return real_kb(*args, **kwargs)

    def counting_explain(*args: Any) -> tuple[str, ...]:
        calls["explain"] += 1
        return real_explain(*args)

    monkeypatch.setattr(engine, "kb_note", counting_kb)
    monkeypatch.setattr(engine, "_explain", counting_explain)
    v = evaluate(policy, _resolved_breached_escalated(), utc("2026-03-05T12:00"))
    assert [n.key for n in v.notes] == ["breach:resolution", "kb"]
    assert v.labels and v.metrics["resolution"].state == "breached"  # decided at once
    assert calls == {"kb": 0, "explain": 0}  # (to_dict() holds the texts: it writes them)
    kb = v.notes[-1]
    assert kb.text.startswith("KB-ready resolution note") and kb.text == kb.text
    assert v.reasons and v.reasons == v.reasons
    assert calls == {"kb": 1, "explain": 1}  # written once, then kept


def test_lazy_notes_and_verdicts_compare_like_eager_ones(policy) -> None:
    from dataclasses import FrozenInstanceError

    from tracker_bridge.core.verdict import Note, Verdict

    t = _resolved_breached_escalated()
    now = utc("2026-03-05T12:00")
    v, again = evaluate(policy, t, now), evaluate(policy, t, now)
    assert v == again and v.to_dict() == again.to_dict() and v.reasons == again.reasons
    for lazy in v.notes:
        eager = Note(lazy.key, lazy.text)
        assert lazy == eager and eager == lazy and hash(lazy) == hash(eager)
        assert repr(lazy) == repr(eager) == f"Note(key={lazy.key!r}, text={lazy.text!r})"
        assert lazy.to_dict() == {"key": lazy.key, "text": lazy.text}
    with pytest.raises(FrozenInstanceError):
        v.notes[0].text = "x"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        v.class_ = "low"  # type: ignore[misc]
    # a verdict built with its reasons at once is the same verdict
    fields = {name: getattr(v, name) for name in (
        "ticket", "now", "class_", "class_rule", "plan", "metrics", "tier", "escalate_to",
        "level", "level_index", "labels", "label_prefix", "notes", "next_change", "warnings",
        "reasons", "stopped_at")}
    eager_v = Verdict(**fields)
    assert eager_v == v and repr(eager_v) == repr(v)
    assert Verdict(**{**fields, "reasons": ("other",)}) != v


def test_the_compiled_policy_is_made_once_and_not_shared_by_derived_policies(policy) -> None:
    from tracker_bridge.core.engine import compiled

    assert compiled(policy) is compiled(policy) is policy.compiled
    # a tracker's own status names: a derived policy compiles its own status groups
    derived = policy.with_status_overrides({"waiting": ["On hold"]})
    t = ticket(status="On hold", history=[st_ev("2026-03-02T10:00", "New", "On hold")])
    now = utc("2026-03-02T12:00")
    assert evaluate(derived, t, now).metrics["resolution"].state == "paused"
    assert evaluate(policy, t, now).metrics["resolution"].state == "running"
    assert compiled(derived) is not compiled(policy)


OVERRIDES = """
name: overrides
timezone: UTC
calendars: {}
statuses: {new: [New], waiting: [], resolved: [Resolved], closed: [Closed]}
classes: {a: {response: 1h, resolution: 4h}, b: {response: 1h, resolution: 4h},
          c: {response: 1h, resolution: 4h}, d: {response: 1h, resolution: 4h}}
default_class: d
plans: {p: {calendar: always}}
classify:
  field: priority
  map: {One: a}
  overrides:
    - {class: a, when: {text_matches: '(?i)\\bdown\\b'}}
    - {class: b, when: {field: component, in: [EMR], text_matches: 'lost'}}
    - {class: c, when: {field: component, matches: '^Cal'}}
    - {class: b, when: {text_matches: '^Outage', labels_any: [vip]}}
"""

WORDS = ["down", "DOWN", "lost", "Outage", "is", "Down", "update", "\n", " ", "é", "Calendar"]


@settings(max_examples=300, deadline=None)
@given(
    subject=st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
    description=st.lists(st.sampled_from(WORDS), max_size=6).map("".join),
    component=st.sampled_from([None, "EMR", "emr ", "Calendar", "Other"]),
    labels=st.sampled_from([[], ["vip"]]),
)
def test_overrides_through_the_combined_pattern_are_the_rules_one_by_one(
    subject, description, component, labels
) -> None:
    """The engine first asks one combined RE2 pattern whether any override's text pattern
    matches; the class is what trying each override in order gives."""
    from tracker_bridge.core.engine import classify, compiled

    p = load_policy_text(OVERRIDES, "overrides.yaml")
    assert compiled(p).text_any is not None  # the combined pattern is what is under test
    fields = {"priority": "Two"} | ({} if component is None else {"component": component})
    t = Ticket.from_dict({
        "tracker": "t", "key": "o", "created": "2026-03-02T09:00:00+00:00", "status": "New",
        "subject": subject, "description": description, "fields": fields, "labels": labels,
    })
    text = f"{t.subject}\n{t.description}"
    expected = ("d", "default")
    for i, o in enumerate(p.classify.overrides):
        w = o.when
        value = t.fields.get(w.field) if w.field else None
        if (
            (w.text_matches is None or w.text_matches.search(text))
            and (w.field is None or value is not None)
            and (w.in_ is None or (value is not None and value.strip().casefold() in {
                x.casefold() for x in w.in_}))
            and (w.matches is None or (value is not None and w.matches.search(value)))
            and (w.labels_any is None or set(t.labels) & w.labels_any)
        ):
            expected = (o.class_, f"override:{i}")
            break
    assert classify(p, t, t.fields)[:2] == expected
