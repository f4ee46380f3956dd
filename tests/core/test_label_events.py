"""The ``label`` history event: its JSON forms, its errors, and the memory tracker's events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tracker_bridge.core.ticket import MAX_EVENT_LABELS, Ticket, TicketError
from tracker_bridge.plugins.memory import MemoryTracker


def _ticket(*events: dict) -> Ticket:
    return Ticket.from_dict({"tracker": "t", "key": "7", "created": "2026-03-02T09:00:00Z",
                             "status": "New", "history": list(events)})


def test_added_removed_round_trip() -> None:
    ev = {"at": "2026-03-02T10:00:00+00:00", "kind": "label", "by": "nurse",
          "added": ["escalation-requested"], "removed": ["sla-high"]}
    t = _ticket(ev)
    assert t.history[0].added == ("escalation-requested",)
    assert t.history[0].removed == ("sla-high",)
    assert t.to_dict()["history"] == [ev]
    assert Ticket.from_dict(t.to_dict()) == t


def test_from_to_lists_become_added_and_removed() -> None:
    t = _ticket({"at": "2026-03-02T10:00:00Z", "kind": "label",
                 "from": ["a", "b", "c"], "to": ["c", "d", "b", "e"]})
    assert (t.history[0].added, t.history[0].removed) == (("d", "e"), ("a",))
    assert "from" not in t.to_dict()["history"][0]


@pytest.mark.parametrize(("event", "where", "what"), [
    ({"added": [], "removed": []}, "history[0]", "at least one label"),
    ({"from": ["a"], "to": ["a"]}, "history[0]", "at least one label"),
    ({"added": "escalation-requested"}, "history[0].added", "list of labels"),
    ({"added": ["ok", 3]}, "history[0].added[1]", "non-empty string"),
    ({"removed": [""]}, "history[0].removed[0]", "non-empty string"),
    ({"added": ["a"], "to": ["a"]}, "history[0]", "not both"),
    ({"added": ["x"] * (MAX_EVENT_LABELS + 1)}, "history[0].added", "more than"),
])
def test_bad_label_events_name_their_path(event: dict, where: str, what: str) -> None:
    with pytest.raises(TicketError) as err:
        _ticket({"at": "2026-03-02T10:00:00Z", "kind": "label", **event})
    assert err.value.where == f"t:7 {where}"
    assert what in err.value.message


def test_memory_tracker_records_label_changes_by_people_and_by_the_bridge() -> None:
    from tracker_bridge.backend import Diff

    tr = MemoryTracker("mem-labels")
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    t = tr.create("s", labels=["customer-label"])
    tr.update(t.key, labels=["customer-label", "escalation-requested"], by="nurse", at=at)
    tr.update(t.key, labels=["customer-label", "escalation-requested"], by="nurse")  # no change
    tr.apply(Diff(key=t.key, add_labels=("sla-high",), remove_labels=("customer-label",)))
    events = [e for e in tr.get(t.key).history if e.kind == "label"]
    assert [(e.by, e.added, e.removed) for e in events] == [
        ("nurse", ("escalation-requested",), ()),
        ("tracker-bridge", ("sla-high",), ("customer-label",)),
    ]
    assert events[0].at == at
