"""Tickets that contradict themselves: a warning in the verdict and one documented reading.

- the current ``status`` wins over the history's last status change: it holds from
  ``updated`` when that is after the last status change and not after ``now``, else from the
  last status change itself;
- a history event before ``created`` is read as at creation;
- ``created`` after ``now``: nothing has elapsed.

The policy runs on the always-on calendar so each figure is plain arithmetic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main
from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.policyfile import load_policy_text

POLICY = """\
name: contradictions
timezone: UTC
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed]}
classes:
  high: {response: 1h, resolution: 8h}
default_class: high
plans:
  standard: {calendar: always}
default_plan: standard
"""

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy():
    return load_policy_text(POLICY, "contradictions.yaml")


def make(status: str, history: list[dict[str, Any]], created: str = "2026-03-02T10:00:00Z",
         updated: str | None = None) -> Ticket:
    return Ticket.from_dict({"tracker": "t", "key": "7", "created": created, "status": status,
                             "updated": updated, "reporter": "alice", "history": history})


RESOLVED_AT_1030 = [{"at": "2026-03-02T10:30:00Z", "kind": "status", "from": "New",
                     "to": "Resolved", "by": "bob"}]


def test_current_status_wins_from_the_last_update(policy) -> None:
    # history: resolved at 10:30; the tracker says New now, last updated 11:00
    v = evaluate(policy, make("New", RESOLVED_AT_1030, updated="2026-03-02T11:00:00Z"), NOW)
    res = v.metrics["resolution"]
    assert res.state == "running"
    # running 10:00-10:30 and 11:00-12:00: 1h30m of 8h
    assert res.elapsed == timedelta(hours=1, minutes=30)
    assert res.due == datetime(2026, 3, 2, 18, 30, tzinfo=UTC)
    [w] = v.warnings
    assert "t:7: status is 'New'" in w and "'Resolved'" in w
    assert "since 2026-03-02T11:00:00+00:00" in w


def test_without_an_update_instant_the_last_change_is_read_as_the_current_status(
        policy) -> None:
    v = evaluate(policy, make("New", RESOLVED_AT_1030), NOW)
    res = v.metrics["resolution"]
    assert res.state == "running"
    assert res.elapsed == timedelta(hours=2)  # never stopped
    assert "since 2026-03-02T10:30:00+00:00" in v.warnings[0]


def test_an_update_after_now_is_not_used(policy) -> None:
    # evaluated as at noon, an update at 13:00 is the future: the last change is used
    v = evaluate(policy, make("New", RESOLVED_AT_1030, updated="2026-03-02T13:00:00Z"), NOW)
    assert v.metrics["resolution"].elapsed == timedelta(hours=2)


def test_a_resolved_status_the_history_missed_stops_the_clock(policy) -> None:
    # the history says In-progress-ish (New) forever; the tracker says Resolved, updated 11:15
    hist = [{"at": "2026-03-02T10:10:00Z", "kind": "status", "from": "New", "to": "Feedback"},
            {"at": "2026-03-02T10:40:00Z", "kind": "status", "from": "Feedback", "to": "New"}]
    v = evaluate(policy, make("Resolved", hist, updated="2026-03-02T11:15:00Z"), NOW)
    res = v.metrics["resolution"]
    assert res.state == "met"
    # running 10:00-10:10 and 10:40-11:15, paused 10:10-10:40
    assert res.elapsed == timedelta(minutes=45)
    assert res.stopped_at == datetime(2026, 3, 2, 11, 15, tzinfo=UTC)
    assert len(v.warnings) == 1


def test_a_consistent_ticket_has_no_warning(policy) -> None:
    v = evaluate(policy, make("Resolved", RESOLVED_AT_1030, updated="2026-03-02T11:00:00Z"),
                 NOW)
    assert v.warnings == ()
    assert v.metrics["resolution"].elapsed == timedelta(minutes=30)


def test_history_before_created_is_read_as_at_creation(policy) -> None:
    hist = [{"at": "2026-03-02T09:00:00Z", "kind": "status", "from": "New",
             "to": "Feedback"}]
    v = evaluate(policy, make("Feedback", hist), NOW)
    [w] = v.warnings
    assert "1 history event(s) before created" in w and "2026-03-02T09:00:00+00:00" in w
    # waiting since creation: nothing has run
    assert v.metrics["resolution"].elapsed == timedelta(0)
    assert v.metrics["resolution"].state == "paused"


def test_created_after_now(policy) -> None:
    v = evaluate(policy, make("New", [], created="2026-03-02T15:00:00Z"), NOW)
    assert any("is after now" in w for w in v.warnings)
    assert v.metrics["response"].elapsed == timedelta(0)
    assert v.metrics["response"].state == "running"


def test_evaluate_and_json_show_the_warning(policy, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    data = make("New", RESOLVED_AT_1030, updated="2026-03-02T11:00:00Z").to_dict()
    (tmp_path / "t.json").write_text(json.dumps(data))
    args = ["evaluate", "--policy", str(tmp_path / "p.yaml"), str(tmp_path / "t.json"),
            "--now", "2026-03-02T12:00:00Z"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "warning  t:7: status is 'New'" in r.output
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["warnings"][0].startswith("t:7: status is 'New'")
