"""The state line (``write.state``) and the human deadline format (``write.deadline_format``):
their words, zones and DST, and that neither makes the bridge write more often than the
verdict changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tracker_bridge.backend import same_deadline
from tracker_bridge.core.ticket import HistoryEvent, Ticket
from tracker_bridge.plan import (
    format_deadline,
    human_remaining,
    human_time,
    plan,
    state_line,
)

from .conftest import CREATED, at, tracker_entry

LONDON = ZoneInfo("Europe/London")


def ticket(status: str = "New", priority: str = "High", **kw) -> Ticket:
    kw.setdefault("fields", {"priority": priority})
    return Ticket(tracker="desk", key="1", created=CREATED, status=status, reporter="customer",
                  subject="Printer down", **kw)


def human_entry(**write) -> dict:
    entry = tracker_entry()
    entry["write"].update({"state": "cf:SLA state", "deadline_format": "human",
                           "timezone": "Europe/London", **write})
    return entry


# -- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("instant", "zone", "text"), [
    # winter in London: GMT; summer: BST, the same UTC hour shown an hour later
    (datetime(2026, 12, 15, 17, 30, tzinfo=UTC), "Europe/London", "Tue 15 Dec 2026 17:30 GMT"),
    (datetime(2026, 6, 16, 16, 30, tzinfo=UTC), "Europe/London", "Tue 16 Jun 2026 17:30 BST"),
    # either side of London's spring change (29 March 2026, 01:00 UTC)
    (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "Europe/London", "Sun 29 Mar 2026 00:59 GMT"),
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/London", "Sun 29 Mar 2026 02:00 BST"),
    # New York's autumn change: 01:30 happens twice, told apart by the abbreviation
    (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York", "Sun 1 Nov 2026 01:30 EDT"),
    (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York", "Sun 1 Nov 2026 01:30 EST"),
    (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "Asia/Kolkata", "Mon 2 Mar 2026 14:30 IST"),
    # a zone without a letter abbreviation shows its offset
    (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "Asia/Dubai", "Mon 2 Mar 2026 13:00 +04"),
    (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "UTC", "Mon 2 Mar 2026 09:00 UTC"),
])
def test_human_time_in_zones_and_across_dst(instant: datetime, zone: str, text: str) -> None:
    assert human_time(instant, ZoneInfo(zone)) == text
    assert format_deadline(instant, ZoneInfo(zone), "human") == text


def test_human_time_drops_seconds_never_rounds_up_and_can_leave_the_year_out() -> None:
    due = datetime(2026, 12, 1, 19, 35, 59, 900000, tzinfo=UTC)
    assert human_time(due, LONDON) == "Tue 1 Dec 2026 19:35 GMT"
    assert human_time(due, LONDON, year=False) == "Tue 1 Dec 19:35 GMT"


def test_iso_stays_the_default_format() -> None:
    due = datetime(2026, 12, 1, 19, 35, 9, 123, tzinfo=UTC)
    assert format_deadline(due, LONDON) == "2026-12-01T19:35:09+00:00"
    assert format_deadline(None, LONDON, "human") is None


@pytest.mark.parametrize(("left", "bd", "text"), [
    (timedelta(hours=3, minutes=20), None, "3h 20m"),
    (timedelta(minutes=45, seconds=59), None, "45m"),
    (timedelta(seconds=20), None, "<1m"),
    (timedelta(0), None, "0m"),
    (timedelta(hours=20), timedelta(hours=8, minutes=30), "2 bd 3h"),
    (timedelta(hours=8, minutes=30), timedelta(hours=8, minutes=30), "1 bd"),
    (timedelta(hours=30), timedelta(hours=24), "30h"),  # a 24h "day" is not a business day
])
def test_human_remaining(left: timedelta, bd: timedelta | None, text: str) -> None:
    assert human_remaining(left, bd) == text


def test_a_human_deadline_compares_as_its_words() -> None:
    text = "Tue 15 Dec 2026 17:30 GMT"
    assert same_deadline(f" {text} ", text)
    assert not same_deadline("2026-12-15T17:30:00+00:00", text)  # the format changed: rewrite
    assert not same_deadline("Tue 15 Dec 2026 17:31 GMT", text)


# -- the line --------------------------------------------------------------------------------

def test_the_line_names_each_clock_in_words(make_config) -> None:
    cfg = make_config([human_entry()])
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    # high on 24x7: response 1h (due 11:00), resolution 8h (due 18:00); London is on GMT
    line = state_line(plan(policy, tc, ticket(), None, at(10, 10)).verdict, policy, tc.write.zone)
    assert line == "response due Mon 2 Mar 11:00 GMT · resolution due Mon 2 Mar 18:00 GMT"
    # at 80% of the response target: at risk
    line = state_line(plan(policy, tc, ticket(), None, at(10, 50)).verdict, policy, tc.write.zone)
    assert line.startswith("response at risk, due Mon 2 Mar 11:00 GMT · ")
    late = plan(policy, tc, ticket(), None, at(11, 30)).verdict
    assert state_line(late, policy, tc.write.zone).startswith(
        "response breached, was due Mon 2 Mar 11:00 GMT · ")
    answered = ticket(history=(HistoryEvent(at=at(10, 20), kind="comment", by="agent",
                                            public=True, text="On it"),))
    line = state_line(plan(policy, tc, answered, None, at(12)).verdict, policy, tc.write.zone)
    assert line == "response met · resolution due Mon 2 Mar 18:00 GMT"


def test_while_paused_the_line_says_how_much_time_is_left(make_config) -> None:
    cfg = make_config([human_entry()])
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    waiting = ticket(status="Feedback", history=(
        HistoryEvent(at=at(10, 20), kind="comment", by="agent", public=True, text="Logs?"),
        HistoryEvent(at=at(11, 40), kind="status", from_="New", to="Feedback"),
    ))
    line = state_line(plan(policy, tc, waiting, None, at(15)).verdict, policy, tc.write.zone)
    # resolution ran 10:00-11:40: 6h20m of 8h left
    assert line == "response met · resolution paused, 6h 20m left"


def test_no_target_no_line(make_config) -> None:
    cfg = make_config([human_entry()])
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    low = plan(policy, tc, ticket(priority="Low"), None, at(10, 10))
    # low: response 4h, resolution none: only the response is spoken of
    assert state_line(low.verdict, policy, tc.write.zone) == "response due Mon 2 Mar 14:00 GMT"


# -- what is written -------------------------------------------------------------------------

def test_the_diff_writes_human_deadlines_and_the_line(make_config) -> None:
    cfg = make_config([human_entry()])
    p = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), None, at(10, 10))
    assert p.diff.set_fields == {
        "response_due": "Mon 2 Mar 2026 11:00 GMT",
        "resolution_due": "Mon 2 Mar 2026 18:00 GMT",
        "state": "response due Mon 2 Mar 11:00 GMT · resolution due Mon 2 Mar 18:00 GMT",
    }
    assert p.record(cfg.policy_obj).fields["state"] == p.diff.set_fields["state"]


def test_without_write_state_nothing_is_written_there(make_config) -> None:
    cfg = make_config()
    p = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), None, at(10, 10))
    assert "state" not in p.diff.set_fields
    assert "state" not in p.record(cfg.policy_obj).fields


def _shown(t: Ticket, diff) -> Ticket:
    """The ticket once ``diff`` is on it (fields and labels)."""
    fields = {**t.fields, **diff.set_fields}
    labels = tuple((set(t.labels) - diff.remove_labels) | diff.add_labels)
    return Ticket(tracker=t.tracker, key=t.key, created=t.created, status=t.status,
                  reporter=t.reporter, subject=t.subject, fields=fields, labels=labels,
                  history=t.history)


@pytest.mark.parametrize("status", ["New", "Feedback"])
def test_the_line_is_rewritten_only_when_the_verdict_changes_by_itself(make_config,
                                                                        status: str) -> None:
    """Walk a ticket through a day minute by minute, applying every diff: a field is
    written only at an instant the previous verdict's ``next_change`` named (or the first
    time), never in between, however the countdown moves."""
    cfg = make_config([human_entry(labels=None, notes=None)])
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    history = (HistoryEvent(at=at(10, 0), kind="status", from_="New", to="Feedback"),) \
        if status == "Feedback" else ()
    t = ticket(status=status, history=history)
    now, expected_at, writes = at(10, 1), None, []
    while now < at(23, 59):
        p = plan(policy, tc, t, None, now)
        if p.diff.set_fields:
            writes.append(now)
            assert expected_at is None or now >= expected_at, (now, p.diff.set_fields)
            t = _shown(t, p.diff)
        if p.verdict.next_change is not None and (expected_at is None or now >= expected_at):
            expected_at = p.verdict.next_change
        elif p.verdict.next_change is None:
            expected_at = datetime.max.replace(tzinfo=UTC)
        now += timedelta(minutes=1)
    if status == "New":
        # the first write, at risk (75%: 10:45), response breached (just after 11:00),
        # resolution at risk (16:00) and breached (just after 18:00): each a next_change,
        # nothing else
        assert writes == [at(10, 1), at(10, 45), at(11, 1), at(16), at(18, 1)]
    else:  # paused all day: written once
        assert writes == [at(10, 1)]


# -- calendars named in words in notes ---------------------------------------------------------

LABELLED = """\
name: words
timezone: Europe/London
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed]}
calendars:
  premium-247:
    label: "  Premium: 24x7 "
    week: {mon-sun: "00:00-24:00"}
  office:
    week: {mon-fri: "09:00-17:30"}
classes:
  high: {response: {target: 1h, calendar: premium-247}, resolution: {target: 8h, calendar: always}}
  low: {response: 1h, resolution: none}
default_class: low
plans:
  p: {calendar: office}
default_plan: p
classify: {field: priority, map: {High: high}}
"""


def _breach_notes(tmp_path, text: str, priority: str) -> dict[str, str]:
    from tracker_bridge.core import engine
    from tracker_bridge.policyfile import load_policy

    path = tmp_path / "words.yaml"
    path.write_text(text)
    verdict = engine.evaluate(load_policy(path), ticket(priority=priority), at(20))
    return {n.key: n.text for n in verdict.notes if n.key.startswith("breach:")}


def test_notes_name_calendars_in_words(tmp_path) -> None:
    notes = _breach_notes(tmp_path, LABELLED, "High")
    assert "1h of working time counted on Premium: 24x7; 10h has elapsed" in \
        notes["breach:response"]
    assert "8h of working time counted on 24x7 (every hour of every day); 10h has elapsed" \
        in notes["breach:resolution"]
    assert "always" not in notes["breach:resolution"]
    notes = _breach_notes(tmp_path, LABELLED, "Low")  # 10:00-17:30 on office: 7h30m
    assert "1h of working time counted on the office calendar; 7h30m has elapsed" in \
        notes["breach:response"]


@pytest.mark.parametrize("label", ['"two\\nlines"', '"   "', "x" * 201])
def test_a_label_is_one_line(tmp_path, label: str) -> None:
    from tracker_bridge.errors import ConfigError
    from tracker_bridge.policyfile import load_policy

    path = tmp_path / "words.yaml"
    path.write_text(LABELLED.replace('"  Premium: 24x7 "', label))
    with pytest.raises(ConfigError) as e:
        load_policy(path)
    assert "line 6: calendars.premium-247.label: a label is one line" in str(e.value)
