"""Issue 11's clock rules in the engine and the loader: outside_hours targets, the periodic
``update``, ``tier_response``, ``escalation_response``, ``at_least`` overrides and
``on_request`` levels (docs/policy.md, docs/semantics.md).

The policy runs on a plain UTC office calendar (Mon-Fri 09:00-17:00, business day 8h) so the
arithmetic in the comments stays readable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.errors import ConfigError
from tracker_bridge.policyfile import load_policy_text

POLICY = """
name: recurring
timezone: UTC
calendars:
  office: {week: {mon-fri: "09:00-17:00"}}
statuses:
  new: [New]
  waiting: [Feedback]
  resolved: [Resolved]
  closed: [Closed]
classes:
  critical:
    response: {target: 1h, outside_hours: {target: 4h, calendar: always}}
    resolution: 8h
    update: 30m
  high: {response: 1h, resolution: 8h}
  low: {response: 1bd, resolution: none}
default_class: low
plans:
  basic: {calendar: office}
classify:
  map: {Immediate: critical, High: high, Low: low}
  overrides:
    - at_least: high
      when: {text_matches: "(?i)clinical workflow"}
tiers:
  field: tier
  response: {L1: 1h, L2: 2h}
  ladder:
    L1: {critical: 8h, high: 8h, low: 8h}
    L2: {}
escalation:
  levels:
    - {name: owner, after: {response: 100%}}
    - {name: coo, on_request: true}
  requested_label: escalation-requested
  request_response: 1bd
"""
MON = datetime(2026, 3, 2, tzinfo=UTC)  # Monday 2 March 2026, 00:00 UTC


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return load_policy_text(POLICY, "recurring.yaml")


def ticket(history: list[dict[str, Any]], *, created: datetime = MON + timedelta(hours=9),
           priority: str = "Immediate", status: str | None = None, subject: str = "x",
           fields: dict[str, str] | None = None, labels: list[str] | None = None) -> Ticket:
    last = [ev for ev in history if ev["kind"] == "status"]
    return Ticket.from_dict({
        "tracker": "t", "key": "1", "created": created.isoformat(), "reporter": "customer",
        "subject": subject, "status": status or (last[-1]["to"] if last else "New"),
        "fields": {"priority": priority, **(fields or {})}, "labels": labels or [],
        "history": history,
    })


def ev_status(at: datetime, frm: str, to: str) -> dict[str, Any]:
    return {"at": at.isoformat(), "kind": "status", "from": frm, "to": to, "by": "agent"}


def ev_comment(at: datetime, by: str = "agent", public: bool = True) -> dict[str, Any]:
    return {"at": at.isoformat(), "kind": "comment", "by": by, "public": public, "text": "hi"}


def h(n: float) -> timedelta:
    return timedelta(hours=n)


# -- the loader: bad values named with their path and line -----------------------------------------

def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_policy_text(text, "p.yaml")
    assert info.value.exit_code == 2
    return info.value.problems


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("outside_hours: {target: 4h, calendar: always}", "outside_hours: {calendar: always}",
         "line 13: classes.critical.response.outside_hours.target", "is required"),
        ("outside_hours: {target: 4h, calendar: always}", "outside_hours: {target: 4h, calendar: nights}",
         "line 13: classes.critical.response.outside_hours.calendar", 'calendar "nights" does not exist'),
        ("{target: 1h, outside_hours", "{target: 1h, calendar: always, outside_hours",
         "line 13: classes.critical.response.outside_hours", "never closed"),
        ("at_least: high", "at_least: severe",
         "line 24: classify.overrides[0].at_least", 'class "severe" does not exist (known: critical, high, low)'),
        ("- at_least: high", "- at_least: high\n      class: critical",
         "line 24: classify.overrides[0]", "exactly one of"),
        ("response: {L1: 1h, L2: 2h}", "response: {L1: 1h, L9: 2h}",
         "line 28: tiers.response.L9", 'tier "L9" does not exist (known: L1, L2)'),
        ("update: 30m", "update: 30x", "line 15: classes.critical.update", "not a duration"),
        ("- {name: coo, on_request: true}", "- {name: coo, on_request: true, after: 1h}",
         "line 35: escalation.levels[1].after", "takes no `after`"),
        ("- {name: coo, on_request: true}", "- {name: coo}",
         "line 35: escalation.levels[1]", "needs `after`"),
        ("  requested_label: escalation-requested\n", "",
         "line 36: escalation.request_response", "needs `requested_label`"),
        ("request_response: 1bd", "request_response: soon",
         "line 37: escalation.request_response", "not a duration"),
    ],
)
def test_bad_values_are_refused_with_their_path_and_line(
    old: str, new: str, path: str, message: str
) -> None:
    assert old in POLICY
    problems = errors_of(POLICY.replace(old, new, 1))
    assert any(p == path and message in m for p, m in problems), problems


def test_policy_lists_the_new_labels(policy) -> None:  # type: ignore[no-untyped-def]
    labels = policy.all_labels()
    for metric in ("update", "tier-response", "escalation-response"):
        assert f"sla-at-risk-{metric}" in labels and f"sla-breached-{metric}" in labels
    # a policy without the new keys offers exactly the labels it did
    plain = load_policy_text(POLICY.split("tiers:")[0].replace("    update: 30m\n", ""), "p.yaml")
    assert not any("update" in lbl or "tier-response" in lbl for lbl in plain.all_labels())


# -- outside_hours ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("created", "due"),
    [
        (MON + h(9), MON + h(10)),                     # open: 1 office hour
        (MON + h(16.5), MON + h(24 + 9.5)),            # open at 16:30: 30m Mon + 30m Tue
        (MON + h(17), MON + h(21)),                    # 17:00 is closed: 4h on the clock
        (MON + h(8) + timedelta(minutes=59), MON + h(12) + timedelta(minutes=59)),
        (MON + h(5 * 24 + 10), MON + h(5 * 24 + 14)),  # Saturday 10:00: closed all day
    ],
)
def test_the_target_depends_on_when_the_ticket_arrived(
    policy, created: datetime, due: datetime  # type: ignore[no-untyped-def]
) -> None:
    v = evaluate(policy, ticket([], created=created), created)
    assert v.metrics["response"].due == due
    assert policy.deadline("critical", None, created, "response") == due


# -- at_least and on_request ------------------------------------------------------------------------

def test_at_least_raises_and_never_lowers(policy) -> None:  # type: ignore[no-untyped-def]
    text = "Clinical workflow slowed"
    low = evaluate(policy, ticket([], priority="Low", subject=text), MON + h(9))
    assert (low.class_, low.class_rule) == ("high", "at_least:0")
    assert "raises low to at least this class" in " ".join(low.reasons)
    crit = evaluate(policy, ticket([], priority="Immediate", subject=text), MON + h(9))
    assert (crit.class_, crit.class_rule) == ("critical", "map:priority")


def test_on_request_levels_are_not_reached_by_time(policy) -> None:  # type: ignore[no-untyped-def]
    t = ticket([], priority="High")
    assert evaluate(policy, t, MON + h(24 * 30)).level == "owner"
    asked = ticket([{"at": (MON + h(12)).isoformat(), "kind": "label", "by": "customer",
                     "added": ["escalation-requested"], "removed": []}],
                   priority="High", labels=["escalation-requested"])
    assert evaluate(policy, asked, MON + h(12)).level == "coo"


# -- the update clock -------------------------------------------------------------------------------

def test_update_pauses_in_waiting_and_restarts_on_reopening(policy) -> None:  # type: ignore[no-untyped-def]
    # answered 09:10; 09:20-10:20 waiting; back in progress 10:20 (a restart); silent since
    hist = [ev_status(MON + h(9) + timedelta(minutes=10), "New", "In Progress"),
            ev_status(MON + h(9) + timedelta(minutes=20), "In Progress", "Feedback"),
            ev_status(MON + h(10) + timedelta(minutes=20), "Feedback", "In Progress")]
    v = evaluate(policy, ticket(hist[:2]), MON + h(10))
    assert (v.metrics["update"].state, v.metrics["update"].elapsed) == ("paused", timedelta(minutes=10))
    v = evaluate(policy, ticket(hist), MON + h(10) + timedelta(minutes=40))
    assert (v.metrics["update"].state, v.metrics["update"].elapsed) == ("running", timedelta(minutes=20))
    assert len(v.metrics["update"].occurrences) == 2


# -- properties -------------------------------------------------------------------------------------

KINDS = st.sampled_from(["reply", "own", "private", "progress", "feedback", "resolved", "note"])


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], datetime]:
    """A ticket's life from Monday 09:00: minutes between events and what each is."""
    at = MON + h(9)
    status = "New"
    out: list[dict[str, Any]] = []
    for kind, gap in draw(st.lists(st.tuples(KINDS, st.integers(1, 600)), max_size=12)):
        at += timedelta(minutes=gap)
        if kind == "reply":
            out.append(ev_comment(at))
        elif kind == "own":
            out.append(ev_comment(at, by="customer"))
        elif kind == "private":
            out.append(ev_comment(at, public=False))
        elif kind == "note":
            out.append({"at": at.isoformat(), "kind": "comment", "by": "bridge", "public": True,
                        "text": "SLA [tracker-bridge:note=breach:response]"})
        else:
            to = {"progress": "In Progress", "feedback": "Feedback", "resolved": "Resolved"}[kind]
            if to != status:
                out.append(ev_status(at, status, to))
                status = to
    return out, at + timedelta(minutes=draw(st.integers(0, 600)))


@settings(max_examples=150, deadline=None)
@given(histories())
def test_update_gaps_partition_the_open_time(policy, life) -> None:  # type: ignore[no-untyped-def]
    history, now = life
    t = ticket(history)
    v = evaluate(policy, t, now)
    update = v.metrics["update"]
    response = v.metrics["response"]
    if response.stopped_at is None:
        assert update.state == "not_started" and not update.occurrences
        return
    gaps = update.occurrences
    # the gaps follow each other: each ends where the next begins
    for a, b in pairwise(gaps):
        assert a.ended_at == b.started_at
    assert gaps[0].started_at == response.stopped_at
    # and together hold exactly the working time the clocks ran after the first response:
    # the resolution clock's elapsed time minus what it had at the first response
    before = evaluate(policy, t, response.stopped_at).metrics["resolution"].elapsed
    assert sum((g.elapsed for g in gaps), timedelta(0)) == v.metrics["resolution"].elapsed - before
    # each breach is one note, numbered from 1
    breached = [g for g in gaps if g.breached]
    keys = [n.key for n in v.notes if n.key.startswith("breach:update:")]
    assert keys == [f"breach:update:{i}" for i in range(1, len(breached) + 1)]
    assert all(g.breached == (g.elapsed > timedelta(minutes=30)) for g in gaps)
    assert ("sla-breached-update" in v.labels) == (update.state == "breached")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["L1", "L2", "reply"]), st.integers(1, 900)),
                max_size=10), st.integers(0, 900))
def test_a_tier_entry_restarts_tier_response(policy, moves, tail) -> None:  # type: ignore[no-untyped-def]
    at = MON + h(9)
    tier = "L1"
    history: list[dict[str, Any]] = [ev_status(at + timedelta(minutes=1), "New", "In Progress")]
    at += timedelta(minutes=1)
    entries = [MON + h(9)]
    for what, gap in moves:
        at += timedelta(minutes=gap)
        if what == "reply":
            history.append(ev_comment(at))
        elif what != tier:
            history.append({"at": at.isoformat(), "kind": "field", "field": "tier",
                            "from": tier, "to": what, "by": "agent"})
            tier = what
            entries.append(at)
    now = at + timedelta(minutes=tail)
    t = ticket(history, fields={"tier": tier}, status="In Progress")
    v = evaluate(policy, t, now)
    tr = v.metrics["tier_response"]
    assert [o.started_at for o in tr.occurrences] == entries
    assert tr.occurrences[-1].tier == tier
    # the current occurrence runs from the last entry to the first response after it (the
    # status change out of New for the entry at creation, else a public reply), measured on
    # the office calendar (nothing here pauses)
    last = entries[-1]
    if len(entries) == 1:
        stop: datetime | None = MON + h(9) + timedelta(minutes=1)
    else:
        replies = [datetime.fromisoformat(e["at"]) for e in history
                   if e["kind"] == "comment" and datetime.fromisoformat(e["at"]) > last]
        stop = replies[0] if replies else None
    assert tr.stopped_at == stop
    office = policy.calendars["office"]
    assert tr.elapsed == office.working(last, now if stop is None else min(stop, now))
    target = {"L1": h(1), "L2": h(2)}[tier]
    assert tr.target == target
    assert tr.state in ("met", "breached", "running", "at_risk")
    assert (tr.state == "breached") == (tr.elapsed > target)
