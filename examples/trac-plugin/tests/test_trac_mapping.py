"""The pure mapping (tracker_bridge_trac.mapping) on change-log rows shaped as Trac 1.6's
``Ticket.get_changelog()`` returns them: ``(time, author, field, oldvalue, newvalue,
permanent)``, a ``comment`` row in every change (empty without a comment), Trac's own UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tracenv import require_trac

require_trac(module=True)

from tracker_bridge_trac import mapping as m  # noqa: E402

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SPEC = m.Spec(fields={"priority": "priority", "plan": "support_plan"}, labels="keywords",
              deadlines={"response_due": "sla_response_due"})


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_keywords_split_on_blanks_and_commas_and_keep_their_order() -> None:
    assert m.split_labels("b a, c,,a  ") == ("b", "a", "c")
    assert m.split_labels(None) == m.split_labels("") == ()
    assert m.join_labels(["b", "a"]) == "b a"


def test_new_labels_keep_every_other_label_in_place() -> None:
    assert m.new_labels(["vip", "sla-low", "x"], {"sla-high"}, {"sla-low"}) == \
        ["vip", "x", "sla-high"]
    assert m.new_labels(["vip"], {"vip"}, set()) == ["vip"]


def test_history_from_changelog_rows() -> None:
    rows = [
        # one change: a status, a keyword and the empty comment row Trac writes with it
        (at(1), "nurse", "comment", "1", "", 1),
        (at(1), "nurse", "keywords", "vip sla-low", "vip escalation-requested", 1),
        (at(1), "nurse", "status", "new", "accepted", 1),
        (at(2), "agent", "comment", "2", "We are on it.", 1),
        (at(3), "agent", "priority", "major", "critical", 1),
        (at(3), "agent", "owner", "", "agent", 1),            # not mapped: left out
        (at(3), "agent", "sla_response_due", "", "2026", 1),  # the bridge's: left out
        (at(0), "customer", "comment", "1.1", "earlier", 1),  # out of order in the input
    ]
    h = m.history(rows, SPEC)
    assert [e.kind for e in h] == ["comment", "label", "status", "comment", "field"]
    assert [e.at for e in h] == sorted(e.at for e in h)
    label = h[1]
    assert (label.added, label.removed, label.by) == (("escalation-requested",), ("sla-low",),
                                                      "nurse")
    assert (h[2].from_, h[2].to) == ("new", "accepted")
    assert (h[4].field, h[4].from_, h[4].to) == ("priority", "major", "critical")
    assert all(e.public for e in h if e.kind == "comment")


def test_a_keywords_change_that_only_reorders_is_no_label_event() -> None:
    assert m.history([(at(1), "n", "keywords", "a b", "b, a", 1)], SPEC) == ()


def test_trac_times_are_utc_and_naive_ones_refused() -> None:
    from trac.util.datefmt import utc as trac_utc

    assert m.utc(datetime(2026, 3, 2, 10, tzinfo=trac_utc)).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        m.utc(datetime(2026, 3, 2, 10))


def test_to_ticket_reads_fields_deadlines_labels_and_the_default_plan() -> None:
    values = {"time": at(0), "changetime": at(5), "summary": "s", "description": "d",
              "status": "new", "reporter": "customer", "priority": "major",
              "support_plan": "", "keywords": "vip sla-low", "sla_response_due": ""}
    t = m.to_ticket("trac", "7", values, [], SPEC, url="http://trac/ticket/7",
                    default_plan="essentials")
    assert t.fields == {"priority": "major", "plan": "essentials", "response_due": None}
    assert t.labels == ("vip", "sla-low") and t.key == "7" and t.updated == at(5)


def test_the_cursor_keeps_the_pairs_of_the_overlap_window() -> None:
    c = m.make_cursor(1_000_000_000, {1: 1_000_000_000, 2: 400_000_000, 3: 999_000_000},
                      overlap_us=5_000_000)
    since, seen = m.parse_cursor(c, "trac")
    assert since == 1_000_000_000 and seen == {1: 1_000_000_000, 3: 999_000_000}
    assert m.make_cursor(None, {}, 0) is None and m.parse_cursor(None, "trac") == (None, {})
    for bad in ("garbage", '{"v": 2, "since": 1, "seen": {}}', "[]"):
        with pytest.raises(ValueError, match="trac: not a Trac cursor"):
            m.parse_cursor(bad, "trac")
