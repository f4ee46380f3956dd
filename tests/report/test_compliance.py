"""The pure aggregation (tracker_bridge.compliance) on hand-made tickets, numbers by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tracker_bridge.compliance import (
    TicketFacts,
    aggregate,
    compliance,
    metric_outcome,
    percentile,
    rollup,
    to_csv,
)

NOV = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def m(state: str, elapsed: float = 0, target: float | None = 3600, **extra: Any) -> dict:
    return {"state": state, "elapsed_s": elapsed, "target_s": target, **extra}


def t(key: str, metrics: dict, *, created: datetime = NOV, class_: str = "high",
      plan: str = "premium", tracker: str = "clinic", **kw: Any) -> TicketFacts:
    return TicketFacts(tracker=tracker, key=key, created=created, class_=class_, plan=plan,
                       metrics=metrics, **kw)


def test_percentile_interpolates_between_the_nearest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7], 0.9) == 7
    assert percentile([10, 20], 0.5) == 15
    # sorted 1800, 2400, 3000, 3600: h = 3 * 0.9 = 2.7 -> 3000 + 0.7 * 600
    assert percentile([3600, 1800, 3000, 2400], 0.9) == pytest.approx(3420)
    assert percentile([1, 2, 3, 4, 5], 0.5) == 3


@pytest.mark.parametrize(("state", "counts"), [
    ("met", "met"), ("breached", "breached"), ("running", "running"),
    ("at_risk", "running"), ("paused", "running"), ("no_target", None),
    ("not_started", None),
])
def test_each_state_counts_as_the_contract_says(state: str, counts: str | None) -> None:
    assert metric_outcome("response", m(state)) == counts


def test_a_recurring_metric_counts_per_ticket_from_its_occurrences() -> None:
    ended_ok = {"ended_at": "x", "breached": False, "elapsed_s": 100}
    ended_bad = {"ended_at": "x", "breached": True, "elapsed_s": 900}
    open_ok = {"ended_at": None, "breached": False, "elapsed_s": 50}
    # the metric's own state is the last occurrence's: an earlier breach still counts
    assert metric_outcome("update", m("running", occurrences=[ended_bad, open_ok])) \
        == "breached"
    assert metric_outcome("update", m("running", occurrences=[ended_ok, open_ok])) == "running"
    assert metric_outcome("update", m("met", occurrences=[ended_ok, ended_ok])) == "met"
    assert metric_outcome("update", m("not_started", occurrences=[])) is None


def test_compliance_is_met_over_met_and_breached() -> None:
    assert compliance(10, 2) == 0.8333
    assert compliance(9, 1) == 0.9
    assert compliance(0, 0) is None
    assert compliance(0, 3) == 0.0


def test_rows_group_by_month_tracker_class_and_plan_with_hand_computed_numbers() -> None:
    tickets = [
        t("1", {"response": m("met", 1800), "resolution": m("met", 20000, 28800)}),
        t("2", {"response": m("met", 3000), "resolution": m("breached", 30000, 28800)}),
        t("3", {"response": m("breached", 4000), "resolution": m("running", 100, 28800)}),
        t("4", {"response": m("paused", 10), "resolution": m("no_target", 5, None)}),
        t("5", {"response": m("met", 600)}, class_="low"),
        t("6", {"response": m("met", 60)}, created=DEC),
        t("7", {"response": m("met", 60)}, plan="essentials"),
        t("8", {"response": m("met", 60)}, tracker="other"),
    ]
    doc = aggregate(tickets, goal=0.9)
    keys = [(r["month"], r["tracker"], r["class"], r["plan"]) for r in doc["rows"]]
    assert keys == [("2026-11", "clinic", "high", "essentials"),
                    ("2026-11", "clinic", "high", "premium"),
                    ("2026-11", "clinic", "low", "premium"),
                    ("2026-11", "other", "high", "premium"),
                    ("2026-12", "clinic", "high", "premium")]
    row = doc["rows"][1]
    assert row["tickets"] == 4
    assert row["metrics"]["response"] == {"met": 2, "breached": 1, "running": 1,
                                          "compliance": 0.6667}
    assert row["metrics"]["resolution"] == {"met": 1, "breached": 1, "running": 1,
                                            "compliance": 0.5}
    # times over the tickets that met or breached: 1800, 3000, 4000
    assert row["p50_s"]["response"] == 3000
    assert row["p90_s"]["response"] == 3800  # 3000 + 0.8 * 1000
    assert row["p50_s"]["resolution"] == 25000
    assert row["p90_s"]["resolution"] == 29000  # 20000 + 0.9 * 10000
    assert doc["goal"] == 0.9 and doc["since"] is None and doc["until"] is None


def test_since_until_and_tracker_filter_by_creation_day() -> None:
    tickets = [t("1", {"response": m("met")}, created=datetime(2026, 10, 31, 23, 59,
                                                                  tzinfo=UTC)),
               t("2", {"response": m("met")}, created=NOV),
               t("3", {"response": m("met")}, created=DEC),
               t("4", {"response": m("met")}, created=NOV, tracker="other")]
    doc = aggregate(tickets, goal=0.9, since=date(2026, 11, 1), until=date(2026, 12, 1))
    assert [(r["tracker"], r["tickets"]) for r in doc["rows"]] == [("clinic", 1), ("other", 1)]
    assert doc["since"] == "2026-11-01" and doc["until"] == "2026-12-01"
    doc = aggregate(tickets, goal=0.9, trackers=["other"])
    assert [r["tracker"] for r in doc["rows"]] == ["other"]


def test_a_ticket_counts_in_its_utc_month() -> None:
    # 00:30 on 1 December in Berlin is still November in UTC
    from zoneinfo import ZoneInfo

    created = datetime(2026, 12, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    doc = aggregate([t("1", {"response": m("met")}, created=created)], goal=0.9)
    assert doc["rows"][0]["month"] == "2026-11"


def test_recurring_metrics_count_tickets_and_occurrences() -> None:
    occ = [{"ended_at": "a", "breached": False, "elapsed_s": 600},
           {"ended_at": "b", "breached": True, "elapsed_s": 9000},
           {"ended_at": None, "breached": False, "elapsed_s": 30}]
    tickets = [t("1", {"update": m("running", occurrences=occ)}),
               t("2", {"update": m("met", occurrences=occ[:1])}),
               t("3", {"update": m("not_started", occurrences=[])})]
    row = aggregate(tickets, goal=0.9)["rows"][0]
    assert row["metrics"]["update"] == {"met": 1, "breached": 1, "running": 0,
                                        "compliance": 0.5}
    assert row["occurrences"]["update"] == {"met": 2, "breached": 1, "running": 1,
                                            "compliance": 0.6667}
    # times of the occurrences that ended: 600, 9000, 600
    assert row["p50_s"]["update"] == 600
    assert row["p90_s"]["update"] == 7320  # 600 + 0.8 * 8400


def test_escalations_and_reopens_are_summed_per_row() -> None:
    tickets = [t("1", {}, level="manager", level_index=1, tiers=frozenset({"L1", "L2"}),
                 reopens=2),
               t("2", {}, level="director", level_index=2, tiers=frozenset({"L1"})),
               t("3", {}, level="manager", level_index=1, reopens=1),
               t("4", {})]
    row = aggregate(tickets, goal=0.9)["rows"][0]
    assert row["escalations"] == {"tickets": 3, "levels": {"director": 1, "manager": 2},
                                  "tiers": {"L1": 2, "L2": 1}}
    assert row["reopens"] == 3 and row["reopened_tickets"] == 2


def test_slowest_lists_the_most_resolution_time_first() -> None:
    tickets = [t(str(i), {"resolution": m("running", 100 * i, 28800)}) for i in range(1, 15)]
    tickets.append(t("nt", {"resolution": m("no_target", 99999, None)}))
    slow = aggregate(tickets, goal=0.9)["slowest"]
    assert [s["key"] for s in slow] == [str(i) for i in range(14, 4, -1)]


def test_rollup_sums_rows_of_one_metric() -> None:
    tickets = [t("1", {"response": m("met")}), t("2", {"response": m("breached")}, plan="x"),
               t("3", {"response": m("met")}, class_="low")]
    doc = aggregate(tickets, goal=0.9)
    per = rollup(doc["rows"], "response", by=("month", "class"))
    assert per[("2026-11", "high")] == {"met": 1, "breached": 1, "running": 0,
                                        "compliance": 0.5}
    assert rollup(doc["rows"], "response", by=())[()]["compliance"] == 0.6667


def test_csv_has_one_line_per_row_and_metric_and_no_formulas() -> None:
    import csv
    import io

    tickets = [t("1", {"response": m("met", 60), "resolution": m("breached", 90)},
                 class_="=cmd|' /C calc'!A0")]
    lines = list(csv.DictReader(io.StringIO(to_csv(aggregate(tickets, goal=0.9)))))
    assert [(x["metric"], x["met"], x["breached"], x["compliance"]) for x in lines] == [
        ("response", "1", "0", "1.0"), ("resolution", "0", "1", "0.0")]
    assert lines[0]["class"].startswith("'=")


def test_tickets_closed_without_the_customer_s_confirmation_count_apart() -> None:
    # confirmed_closure's label on the latest verdict (any prefix) marks the ticket
    closed = {"response": m("met", 600), "resolution": m("met", 1800)}
    doc = aggregate([t("1", closed, labels=frozenset({"sla-high", "sla-closed-unconfirmed"})),
                     t("2", closed, labels=frozenset({"sla-high"})),
                     t("3", closed, labels=frozenset({"desk-closed-unconfirmed"}))], goal=0.9)
    (row,) = doc["rows"]
    assert row["tickets"] == 3 and row["closed_unconfirmed"] == 2
    header, first, *_ = to_csv(doc).splitlines()
    assert header.endswith(",reopens,closed_unconfirmed") and first.endswith(",0,2")
