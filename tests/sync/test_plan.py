"""The pure plan step: verdict, diff and record for one ticket, with no tracker and no store.

``sync`` and ``explain`` both decide through :func:`tracker_bridge.plan.plan`; these tests
drive it directly with what a store would remember (a :class:`TicketState`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from tracker_bridge.cli import main
from tracker_bridge.core.ticket import HistoryEvent, Ticket
from tracker_bridge.plan import CLOSED_GROUPS, plan
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.store import TicketState

from .conftest import CREATED, POLICY, at, tracker_entry

NOW = at(11, 30)


def ticket(status: str = "New", priority: str = "High", **kw) -> Ticket:
    kw.setdefault("fields", {"priority": priority})
    return Ticket(tracker="desk", key="1", created=CREATED, status=status, reporter="customer",
                  subject="Printer down", **kw)


def state(**kw) -> TicketState:
    base = {"tracker": "desk", "key": "1", "is_open": True, "labels": frozenset(),
            "fields": {}, "note_keys": frozenset(), "next_change": None, "retry": False}
    base.update(kw)
    return TicketState(**base)


def test_a_new_ticket_plans_its_deadlines_labels_and_breach_note(make_config) -> None:
    cfg = make_config()
    p = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), None, NOW, first_sync=NOW)
    assert not p.adopted and p.status_group == "new"
    # high: response 1h (breached at 11:00), resolution 8h from 10:00
    assert p.diff.set_fields == {"response_due": "2026-03-02T11:00:00+00:00",
                                 "resolution_due": "2026-03-02T18:00:00+00:00"}
    assert p.diff.add_labels == {"sla-high", "sla-breached-response"}
    assert [n.key for n in p.diff.notes] == ["breach:response"]
    assert p.newly_breached == {"response"}
    rec = p.record(cfg.policy_obj)
    assert rec.is_open and rec.labels == p.diff.add_labels
    assert rec.fields["response_due"] == "2026-03-02T11:00:00+00:00"
    assert rec.next_change == p.verdict.next_change


def test_what_the_store_remembers_is_not_planned_again(make_config) -> None:
    cfg = make_config()
    stored = state(note_keys=frozenset({"breach:response"}),
                   breached=frozenset({"response"}))
    p = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), stored, NOW, first_sync=CREATED)
    assert p.diff.notes == ()  # posted before: never twice
    assert p.newly_breached == frozenset()  # counted once, when it turned


def test_a_ticket_that_shows_its_verdict_plans_nothing(make_config) -> None:
    cfg = make_config()
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    first = plan(policy, tc, ticket(), None, NOW, first_sync=NOW)
    shown = ticket(labels=tuple(first.diff.add_labels),
                   fields={"priority": "High", **first.diff.set_fields})
    again = plan(policy, tc, shown, state(note_keys=frozenset({"breach:response"})), NOW,
                 first_sync=NOW)
    assert not again.diff


def test_closed_before_the_first_sync_is_history(make_config) -> None:
    cfg = make_config()
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    resolved = HistoryEvent(at=at(10, 20), kind="status", from_="New", to="Resolved")
    t = ticket(status="Resolved", history=(resolved,))
    assert plan(policy, tc, t, None, NOW, first_sync=at(11)).adopted
    # resolved after the bridge first looked: it gets its writes (and its KB note)
    later = plan(policy, tc, t, None, NOW, first_sync=at(10, 10))
    assert not later.adopted and later.diff
    rec = plan(policy, tc, t, None, NOW, first_sync=at(11)).record(policy)
    assert rec.adopted and not rec.is_open and rec.next_change is None
    assert rec.status_group in CLOSED_GROUPS
    # adopt_closed: false writes to history too
    cfg2 = make_config([tracker_entry(adopt_closed=False)])
    assert not plan(cfg2.policy_obj, cfg2.tracker("desk"), t, None, NOW,
                    first_sync=at(11)).adopted


def test_plan_is_pure_same_inputs_same_plan(make_config) -> None:
    cfg = make_config()
    a = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), None, NOW, first_sync=NOW)
    b = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), None, NOW, first_sync=NOW)
    assert a.diff.to_dict() == b.diff.to_dict() and a.verdict == b.verdict
    later = plan(cfg.policy_obj, cfg.tracker("desk"), ticket(), None, NOW + timedelta(hours=8),
                 first_sync=NOW)
    assert "resolution" in later.newly_breached


def test_explain_decides_as_sync_does_about_history(tmp_path: Path, write_config) -> None:
    tr = MemoryTracker("desk")
    tr.create("Old problem", key="1", created=CREATED, fields={"priority": "High"},
              status="Resolved")
    (tmp_path / "tickets.json").write_text(json.dumps(tr.to_json()))
    path = write_config([tracker_entry(options={"file": "tickets.json"})])
    runner = CliRunner()
    now = "2026-03-02T11:30:00+00:00"
    assert runner.invoke(main, ["sync", "--once", "--now", now, "--config",
                                str(path)]).exit_code == 0
    r = runner.invoke(main, ["explain", "desk:1", "--now", now, "--config", str(path)])
    assert r.exit_code == 0, r.output
    assert "closed before the bridge first synced" in r.output
    doc = json.loads(runner.invoke(main, ["explain", "desk:1", "--now", now, "--config",
                                          str(path), "--json"]).stdout)
    assert doc["history"] is True and doc["diff"]["notes"] == []


def test_a_kb_note_already_posted_is_not_made_again(make_config, monkeypatch) -> None:
    # a resolved ticket is evaluated at every due re-read; its KB note (redaction over the
    # whole ticket) is made only while it is still to be written
    import tracker_bridge.core.engine as engine

    made: list[str] = []
    real = engine.kb_note

    def counting(ticket, **kw):
        made.append(ticket.key)
        return real(ticket, **kw)

    monkeypatch.setattr(engine, "kb_note", counting)
    cfg = make_config()
    tc, policy = cfg.tracker("desk"), cfg.policy_obj
    resolved = HistoryEvent(at=at(10, 20), kind="status", from_="New", to="Resolved")
    t = ticket(status="Resolved", history=(resolved,))
    p = plan(policy, tc, t, None, NOW, first_sync=at(10))
    assert "kb" in {n.key for n in p.diff.notes} and made == ["1"]
    assert "KB-ready resolution note" in next(n.text for n in p.diff.notes if n.key == "kb")
    p = plan(policy, tc, t, state(note_keys=frozenset({"kb", "breach:response"})), NOW,
             first_sync=at(10))
    assert "kb" not in {n.key for n in p.diff.notes}
    assert p.verdict.to_dict(note_texts=False)["notes"]
    assert made == ["1"]  # not made for the second plan


# -- a tracker that cannot tell when the escalation request label was added ----------------

# the tests' policy, with an escalation request answered within 2h
REQUEST_POLICY = POLICY + """\
escalation:
  levels:
    - {name: owner, after: {response: 100%}}
    - {name: coo, on_request: true}
  requested_label: escalation-requested
  request_response: 2h
"""


def _request_policy(tmp_path: Path):
    from tracker_bridge.policyfile import load_policy

    path = tmp_path / "request.yaml"
    path.write_text(REQUEST_POLICY)
    return load_policy(path)


def test_a_request_label_without_history_counts_from_the_first_cycle_that_saw_it(
        make_config, tmp_path: Path) -> None:
    from tracker_bridge.plan import with_label_history

    policy = _request_policy(tmp_path)
    tc = make_config().tracker("desk")
    asked = ticket(labels=("escalation-requested", "customer-label"))
    # first sight at 11:30: the request counts from then, and the store is told so
    p = plan(policy, tc, asked, None, NOW, first_sync=CREATED)
    assert p.label_seen == {"escalation-requested": NOW}
    assert p.record(policy).label_seen == {"escalation-requested": NOW}
    m = p.verdict.metrics["escalation_response"]
    assert (m.state, m.due) == ("running", NOW + timedelta(hours=2))
    # a later cycle still counts from the first sight, not from its own now
    later = NOW + timedelta(hours=3)
    p2 = plan(policy, tc, asked, state(label_seen={"escalation-requested": NOW}), later,
              first_sync=CREATED)
    assert p2.verdict.metrics["escalation_response"].state == "breached"
    assert p2.label_seen == {"escalation-requested": NOW}
    # a history that tells when it was added wins, and nothing is remembered
    told = ticket(labels=("escalation-requested",), history=(HistoryEvent(
        at=at(10, 30), kind="label", by="customer", added=("escalation-requested",)),))
    same, seen = with_label_history(told, policy, state(label_seen={"x": NOW}), later)
    assert same is told and seen == {}
    # ... unless it shows the label removed since: then the label's own return is unknown
    readded = ticket(labels=("escalation-requested",), history=(
        HistoryEvent(at=at(10, 30), kind="label", added=("escalation-requested",)),
        HistoryEvent(at=at(10, 40), kind="label", removed=("escalation-requested",))))
    _, seen = with_label_history(readded, policy, None, later)
    assert seen == {"escalation-requested": later}
    # without the label there is nothing to remember
    assert with_label_history(ticket(), policy, None, NOW)[1] == {}


def test_the_first_sight_survives_in_the_store(make_config, tmp_path: Path) -> None:
    from tracker_bridge.store import Store

    policy = _request_policy(tmp_path)
    tc = make_config().tracker("desk")
    p = plan(policy, tc, ticket(labels=("escalation-requested",)), None, NOW,
             first_sync=CREATED)
    rec = p.record(policy)
    with Store(tmp_path / "s.sqlite") as st, st.cycle():
        st.record_ticket("desk", "1", status=rec.status, status_group=rec.status_group,
                         is_open=rec.is_open, class_=rec.class_, plan=rec.plan,
                         labels=rec.labels, fields=rec.fields, next_change=rec.next_change,
                         retry=False, ticket_updated=None, evaluated_at=NOW, written=True,
                         label_seen=rec.label_seen)
    with Store(tmp_path / "s.sqlite") as st:
        stored = st.ticket("desk", "1")
    assert stored is not None and stored.label_seen == {"escalation-requested": NOW}
