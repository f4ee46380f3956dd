#!/usr/bin/env python3
"""Benchmarks of the core engine, side by side with the ``businesstime`` package.

    python benchmarks/core_bench.py            # full run, under about a minute
    python benchmarks/core_bench.py --quick    # smaller samples, under about ten seconds

Prints, for the machine it runs on:

- deadline computations per second: ``BusinessCalendar.add`` for 30m, 8h and 15bd targets and
  ``working`` over a 6-month span, on a calendar with holidays (Europe/London, Mon-Fri
  09:00-17:30, GB/ENG), from random start instants over 2026-2027; cold (first call on a fresh
  calendar, its per-year tables not built yet) and warm (steady state);
- the same operations with ``businesstime`` (naive local times, one window a day, the same
  holiday dates), how many of its answers equal ours, and why the others differ;
- verdicts per second: ``evaluate(policy, ticket, now)`` on tickets with 20 history events, and
  the calendar arithmetic inside those verdicts replayed on both libraries;
- memory: what a calendar holds after covering 10 years, and its peak while building them.

Times come from ``time.perf_counter`` over batches, with a warm-up first and the garbage
collector off while a batch runs (as ``timeit`` does). Each figure is the median over several
repeats, with the min and max of the repeats beside it. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this script sits in, installed or not.
sys.path.insert(0, str(ROOT))

import benchmachine  # noqa: E402 (this folder: the script's own)

from tracker_bridge.core.calendar import BusinessCalendar, to_us  # noqa: E402
from tracker_bridge.core.engine import evaluate  # noqa: E402
from tracker_bridge.core.policy import Policy  # noqa: E402
from tracker_bridge.core.ticket import HistoryEvent, Ticket  # noqa: E402
from tracker_bridge.policyfile import load_policy  # noqa: E402

try:
    import businesstime as businesstime_pkg
    from businesstime import BusinessTime
except ImportError:  # declared in pyproject's `bench` extra
    businesstime_pkg = None
    BusinessTime = None

ZONE_NAME = "Europe/London"
ZONE = ZoneInfo(ZONE_NAME)
OPEN, CLOSE = 9 * 60, 17 * 60 + 30  # minutes: 09:00-17:30
HOLIDAYS = "GB/ENG"
SPAN_START = datetime(2026, 1, 1, tzinfo=ZONE)
SPAN_END = datetime(2028, 1, 1, tzinfo=ZONE)
SIX_MONTHS = timedelta(days=182)
POLICY_CANDIDATES = (
    ROOT / "examples" / "policies" / "care-pathway.yaml",
    ROOT / "tests" / "core" / "data" / "spec-example.yaml",
)


def office_calendar() -> BusinessCalendar:
    """A fresh calendar object: no per-year table built, no holiday year looked up."""
    return BusinessCalendar(
        "office", ZONE_NAME, {wd: [(OPEN, CLOSE)] for wd in range(5)}, holidays=[HOLIDAYS]
    )


# -- the machine ---------------------------------------------------------------------------------


def describe_machine() -> list[str]:
    return benchmachine.describe_machine(("tracker-bridge", "holidays", "businesstime", "tzdata", "pydantic", "PyYAML"))


# -- timing --------------------------------------------------------------------------------------


@dataclass
class Stat:
    """Per-operation times (seconds) of several repeats."""

    per_op: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.per_op)

    @property
    def best(self) -> float:
        """The fastest repeat: on a shared machine the one least disturbed by other load."""
        return min(self.per_op)

    def row(self, label: str, impl: str) -> str:
        us = [x * 1e6 for x in self.per_op]
        med = statistics.median(us)
        return (
            f"  {label:<24} {impl:<14} {1e6 / med:>10,.0f} ops/s {med:>11.2f} µs/op"
            f"   [{min(us):.2f} .. {max(us):.2f}] over {len(us)} repeats"
        )


class Jobs:
    """Measurements run round-robin: repeat 1 of every job, then repeat 2, and so on.

    On a shared machine a burst of load from elsewhere then slows one repeat of every figure
    (and shows in its max) instead of every repeat of one figure (and skewing its median).
    """

    def __init__(self) -> None:
        self._jobs: list[tuple[str, str, Callable[[], float], Stat]] = []

    def warm(self, label: str, impl: str, batch: Callable[[], Any], n_ops: int) -> Any:
        """Time ``batch`` (``n_ops`` operations); runs it once now as the warm-up and returns
        that run's result (for comparisons)."""
        first = batch()

        def once() -> float:
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                batch()
                return (time.perf_counter() - t0) / n_ops
            finally:
                gc.enable()

        self._jobs.append((label, impl, once, Stat([])))
        return first

    def cold(
        self,
        label: str,
        impl: str,
        make: Callable[[], Any],
        call: Callable[[Any, int], Any],
        samples: int,
    ) -> None:
        """Time the first ``call`` on a fresh ``make()`` object (built untimed), ``samples``
        times per repeat; ``call`` gets a running index to pick its input."""
        counter = itertools.count()

        def once() -> float:
            total = 0.0
            for _ in range(samples):
                k = next(counter)
                obj = make()
                gc.collect()
                gc.disable()
                try:
                    t0 = time.perf_counter()
                    call(obj, k)
                    total += time.perf_counter() - t0
                finally:
                    gc.enable()
            return total / samples

        self._jobs.append((label, impl, once, Stat([])))

    def run(self, repeats: int) -> list[str]:
        """Run every job ``repeats`` times, interleaved; one printed row per job, in order."""
        for _ in range(repeats):
            for _label, _impl, once, stat in self._jobs:
                stat.per_op.append(once())
        return [stat.row(label, impl) for label, impl, _once, stat in self._jobs]

    def stat(self, label: str, impl: str) -> Stat:
        """The times of one job (after :meth:`run`)."""
        return next(st for lb, im, _once, st in self._jobs if (lb, im) == (label, impl))


# -- businesstime --------------------------------------------------------------------------------


def naive_local(t: datetime, zone: ZoneInfo = ZONE) -> datetime:
    """The local wall-clock time of an instant, without its zone (what businesstime takes)."""
    return t.astimezone(zone).replace(tzinfo=None)


def bt_working(bt: Any, a: datetime, b: datetime) -> timedelta:
    """Working time on businesstime's own terms, exactly.

    ``businesstimedelta`` counts whole business days as ``days`` and the rest as seconds;
    ``businesstime_hours`` turns that into hours through a float. This is the same formula
    (days x the length of the business day, plus the rest) kept in integer timedeltas, so a
    search over it is not thrown off by float rounding.
    """
    btd = bt.businesstimedelta(a, b)
    return btd.days * bt.open_hours + timedelta(seconds=btd.seconds, microseconds=btd.microseconds)


def bt_add(bt: Any, start: datetime, d: timedelta) -> datetime:
    """The deadline ``d`` of working time after ``start``, with businesstime 0.3.0.

    businesstime has no add operation (its API is ``businesstimedelta``,
    ``businesstime_hours`` and the predicates ``isbusinessday``/``isduringbusinesshours``), so
    the deadline is the earliest whole second ``s >= start`` at which its own working time
    from ``start`` reaches ``d``: gallop forward doubling the span until reached, then bisect.
    Every calendar decision is businesstime's; the search assumes its working time only grows
    with ``s`` (where it does not, the search can land elsewhere: see the agreement report).
    """
    need = d
    if need <= timedelta(0):
        return start
    lo, hi = 0, max(1, int(d.total_seconds()))
    while bt_working(bt, start, start + timedelta(seconds=hi)) < need:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bt_working(bt, start, start + timedelta(seconds=mid)) >= need:
            hi = mid
        else:
            lo = mid
    return start + timedelta(seconds=hi)


def bt_for(cal: BusinessCalendar, years: range) -> Any | None:
    """A BusinessTime equal to ``cal``, or None when businesstime cannot express it.

    It can express: one window a day, the same on every open weekday, ending before 24:00;
    closed dates given as a set of dates; no time zone, so the window must stay clear of the
    night hours in which DST changes happen (then naive local differences are real time).
    """
    if BusinessTime is None or cal.always:
        return None
    windows = {w for w in cal.week if w}
    if len(windows) != 1:
        return None
    (only,) = windows
    if len(only) != 1:
        return None
    start, end = only[0]
    if start < 4 * 60 or end >= 24 * 60:
        return None
    weekends = tuple(wd for wd in range(7) if not cal.week[wd])
    holidays: set[date] = set()
    for y in years:
        holidays |= cal.closed_dates(y)
    return BusinessTime(
        business_hours=(dtime(start // 60, start % 60), dtime(end // 60, end % 60)),
        weekends=weekends,
        holidays=holidays,  # a set: membership tests stay O(1) (a list also works, slower)
    )


ONE_DAY = timedelta(days=1)


def walk_add(bt: Any, start: datetime, d: timedelta) -> datetime:
    """A deadline by a plain day-by-day walk: from ``start``'s day, each day businesstime's
    ``isbusinessday`` accepts gives its window (after ``start`` on the first day) until ``d``
    is used up. Naive local times, one window a day, as businesstime takes them: the
    reference the calendar's year tables are measured against."""
    open_t, close_t = bt.business_hours
    left = d
    day = start.date()
    while True:
        if bt.isbusinessday(day):
            a = max(start, datetime.combine(day, open_t))
            b = datetime.combine(day, close_t)
            if b > a:
                if b - a >= left:
                    return a + left
                left -= b - a
        day += ONE_DAY


def walk_working(bt: Any, start: datetime, end: datetime) -> timedelta:
    """Working time of ``[start, end)`` by the same day-by-day walk."""
    open_t, close_t = bt.business_hours
    total = timedelta(0)
    day, last = start.date(), end.date()
    while day <= last:
        if bt.isbusinessday(day):
            a = max(start, datetime.combine(day, open_t))
            b = min(end, datetime.combine(day, close_t))
            if b > a:
                total += b - a
        day += ONE_DAY
    return total


def after_close_on_business_day(bt: Any, local: datetime) -> bool:
    """Whether a start trips businesstime 0.3.0's span builder (see :data:`AFTER_CLOSE`)."""
    return bt.isbusinessday(local) and local.time() >= bt.business_hours[1]


AFTER_CLOSE = (
    "each starts after closing time on a business day. businesstime 0.3.0 then skips the"
    " start day, and when the end also lies after closing time on the next business day its"
    " span builder finds no business day and returns 0 for that whole day of work (its 'HACK'"
    " branches only handle a start on a non-business day). Its working time then drops back"
    " to 0 as the end moves past closing time, so a deadline searched over it lands at the"
    " next midnight instead"
)


# -- deadline computations ------------------------------------------------------------------------


def random_starts(rng: random.Random, n: int) -> list[datetime]:
    """Whole-second instants, uniform over 2026-2027 (local years), in UTC."""
    lo, hi = int(SPAN_START.timestamp()), int(SPAN_END.timestamp())
    return [datetime.fromtimestamp(rng.randrange(lo, hi), UTC) for _ in range(n)]


@dataclass
class Sizes:
    warm_ops: int
    bt_ops: int
    cold_samples: int
    repeats: int
    tickets: int
    cold_policies: int
    span_ops: int
    span_repeats: int


FULL = Sizes(warm_ops=4000, bt_ops=300, cold_samples=40, repeats=5, tickets=400, cold_policies=15,
             span_ops=600, span_repeats=9)
QUICK = Sizes(warm_ops=600, bt_ops=40, cold_samples=8, repeats=3, tickets=60, cold_policies=3,
              span_ops=60, span_repeats=3)
#: the spans the calendar is compared with the day-by-day walk at
SPANS = ("30m", "8h", "1bd", "15bd", "60bd")


def span(text: str, business_day: timedelta) -> timedelta:
    if text.endswith("bd"):
        return int(text[:-2]) * business_day
    return timedelta(minutes=int(text[:-1])) if text.endswith("m") else timedelta(
        hours=int(text[:-1]))


def bench_spans(sizes: Sizes, rng: random.Random, out: list[str]) -> None:
    """``add`` and ``working`` against a plain day-by-day walk over businesstime's
    ``isbusinessday``, span by span, on the same inputs; ratios of the best repeats."""
    cal = office_calendar()
    bt = bt_for(cal, range(2025, 2031))
    out.append("")
    out.append(
        f"calendar vs a day-by-day walk: add(t, d) and working(t, add(t, d)) on {ZONE_NAME}"
        f" Mon-Fri 09:00-17:30 with {HOLIDAYS} holidays, {sizes.span_ops} random starts over"
        f" 2026-2027 per span; the walk asks businesstime's isbusinessday day by day (naive"
        " local times); ours with datetimes (add, working) and on integer microseconds"
        " (add_us, working_us, what the engine calls)"
    )
    if bt is None:
        out.append("  businesstime not installed (pip install -e '.[bench]'): no walk to compare")
        return
    starts = random_starts(rng, sizes.span_ops)
    us = [to_us(t) for t in starts]
    local = [naive_local(t) for t in starts]
    for t in starts:  # build every year table the spans reach: warm figures only
        cal.add(t, span("60bd", cal.business_day))
    out.append(f"  {'operation':<24} {'implementation':<14} {'throughput':>16} {'median':>17}   [min .. max]")
    jobs = Jobs()
    agree: list[str] = []
    for text in SPANS:
        d = span(text, cal.business_day)
        d_us = d // timedelta(microseconds=1)
        ends = jobs.warm(f"add {text}", "ours", lambda d=d: [cal.add(t, d) for t in starts],
                         len(starts))
        jobs.warm(f"add {text}", "ours, µs ints", lambda d_us=d_us: [cal.add_us(u, d_us) for u in us],
                  len(us))
        walked = jobs.warm(f"add {text}", "day walk",
                           lambda d=d: [walk_add(bt, t, d) for t in local], len(local))
        ends_us = [to_us(e) for e in ends]
        ends_local = [naive_local(e) for e in ends]
        worked = jobs.warm(f"working {text}", "ours",
                           lambda ends=ends: [cal.working(a, b) for a, b in zip(starts, ends, strict=True)],
                           len(starts))
        jobs.warm(f"working {text}", "ours, µs ints",
                  lambda ends_us=ends_us: [cal.working_us(a, b) for a, b in zip(us, ends_us, strict=True)],
                  len(us))
        walked_w = jobs.warm(f"working {text}", "day walk",
                             lambda ends_local=ends_local: [walk_working(bt, a, b) for a, b in zip(local, ends_local, strict=True)],
                             len(local))
        same_add = sum(a == b for a, b in zip(ends_local, walked, strict=True))
        same_w = sum(a == b for a, b in zip(worked, walked_w, strict=True))
        agree.append(f"{text} add {same_add}/{len(starts)}, working {same_w}/{len(starts)}")
    out.extend(jobs.run(sizes.span_repeats))
    out.append("")
    out.append(
        f"  how many times faster than the day-by-day walk (best of {sizes.span_repeats} repeats,"
        " measured in this run; 'ints' = the integer-microsecond calls the engine makes):"
    )
    out.append(f"  {'span':<6} {'add':>8} {'add, ints':>11} {'working':>9} {'working, ints':>15}")
    for text in SPANS:
        row = []
        for op in ("add", "working"):
            walk = jobs.stat(f"{op} {text}", "day walk").best
            row.append(walk / jobs.stat(f"{op} {text}", "ours").best)
            row.append(walk / jobs.stat(f"{op} {text}", "ours, µs ints").best)
        out.append(f"  {text:<6} {row[0]:>7.1f}x {row[1]:>10.1f}x {row[2]:>8.1f}x {row[3]:>14.1f}x")
    out.append("  agreement with the walk (same inputs): " + "; ".join(agree))


def bench_deadlines(sizes: Sizes, rng: random.Random, out: list[str]) -> None:
    starts = random_starts(rng, sizes.warm_ops)
    warm_cal = office_calendar()
    bd = warm_cal.business_day
    targets = [("add 30m", timedelta(minutes=30)), ("add 8h", timedelta(hours=8)),
               ("add 15bd", 15 * bd)]
    bt = bt_for(warm_cal, range(2025, 2030))
    bt_starts = [naive_local(t) for t in starts[: sizes.bt_ops]]
    out.append("")
    out.append(
        f"deadline computations: calendar {ZONE_NAME} Mon-Fri 09:00-17:30 with {HOLIDAYS} holidays"
        f" (business day {bd}); start instants uniform over 2026-2027;"
    )
    out.append(
        f"  warm: {sizes.warm_ops} random inputs per repeat; cold: {sizes.cold_samples} fresh"
        f" calendars per repeat, first call only; businesstime: {sizes.bt_ops} of the same inputs"
    )
    out.append(f"  {'operation':<24} {'implementation':<14} {'throughput':>16} {'median':>17}   [min .. max]")
    agreements: list[str] = []
    jobs = Jobs()
    n_cold = sizes.cold_samples

    for label, d in targets:
        jobs.cold(
            label, "ours, cold", office_calendar,
            lambda cal, k, d=d: cal.add(starts[k % len(starts)], d), n_cold,
        )
        ours = jobs.warm(label, "ours, warm", lambda d=d: [warm_cal.add(t, d) for t in starts],
                         len(starts))
        if bt is None:
            continue
        theirs = jobs.warm(label, "businesstime", lambda d=d: [bt_add(bt, t, d) for t in bt_starts],
                           len(bt_starts))
        agreements.append(compare(
            label, [naive_local(x) for x in ours[: len(bt_starts)]], theirs,
            lambda i, d=d, label=label: f"start {fmt(bt_starts[i])} + {label[4:]} ({d})",
            lambda i: after_close_on_business_day(bt, bt_starts[i]),
        ))

    ends = [t + SIX_MONTHS for t in starts]
    label = "working 6 months"
    jobs.cold(
        label, "ours, cold", office_calendar,
        lambda cal, k: cal.working(starts[k % len(starts)], ends[k % len(ends)]), n_cold,
    )
    ours = jobs.warm(
        label, "ours, warm",
        lambda: [warm_cal.working(a, b) for a, b in zip(starts, ends, strict=True)], len(starts),
    )
    if bt is not None:
        bt_ends = [naive_local(t) for t in ends[: sizes.bt_ops]]
        theirs = jobs.warm(
            label, "businesstime",
            lambda: [bt.businesstime_hours(a, b) for a, b in zip(bt_starts, bt_ends, strict=True)],
            len(bt_starts),
        )
        agreements.append(compare(
            label, ours[: len(bt_starts)], theirs,
            lambda i: f"[{fmt(bt_starts[i])}, {fmt(bt_ends[i])})",
            lambda i: after_close_on_business_day(bt, bt_starts[i]),
        ))

    # What a cold call pays for: looking up one year's holidays, then building that year's
    # table of open intervals (two ZoneInfo conversions per window per day).
    years = [starts[k].astimezone(ZONE).year for k in range(len(starts))]
    jobs.cold(
        "cold part: holidays", "1 year, ours", office_calendar,
        lambda cal, k: cal.closed_dates(years[k % len(years)]), n_cold,
    )

    def prefetched() -> BusinessCalendar:
        cal = office_calendar()
        for y in set(years):
            cal.closed_dates(y)
        return cal

    jobs.cold(
        "cold part: year table", "1 year, ours", prefetched,
        lambda cal, k: cal._year(years[k % len(years)]), n_cold,
    )
    out.extend(jobs.run(sizes.repeats))
    if bt is None:
        out.append("  businesstime: not installed (pip install -e '.[bench]'); no comparison")

    if agreements:
        out.append("")
        out.append("agreement with businesstime (same inputs, its results vs ours):")
        out.extend(agreements)


def fmt(t: datetime) -> str:
    return t.strftime("%a %Y-%m-%d %H:%M:%S")


def compare(
    label: str,
    ours: Sequence[Any],
    theirs: Sequence[Any],
    describe: Callable[[int], str],
    known: Callable[[int], bool],
) -> str:
    """One line: how many results are equal; for the others an example and the cause."""
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    line = f"  {label:<28} {len(ours) - len(differ)}/{len(ours)} equal"
    if not differ:
        return line
    i = differ[0]
    show = fmt if isinstance(ours[i], datetime) else str
    unknown = [j for j in differ if not known(j)]
    line += f"; {len(differ)} differ, e.g. {describe(i)}: ours {show(ours[i])}, businesstime {show(theirs[i])}"
    if len(unknown) < len(differ):
        line += f"\n      {len(differ) - len(unknown)} of them: {AFTER_CLOSE}"
    if unknown:
        j = unknown[0]
        line += (
            f"\n      {len(unknown)} of them for a cause not diagnosed here, e.g. {describe(j)}:"
            f" ours {show(ours[j])}, businesstime {show(theirs[j])}"
        )
    return line


# -- verdicts ------------------------------------------------------------------------------------

AGENTS = ("agent.ann", "agent.bo")
REPORTER = "customer@example.org"
PRIORITIES = ("Urgent", "High", "Normal", "Low")
PLANS = ("essentials", "professional", "premium")
COMPONENTS = ("Pathways", "Reports", "Calendar", "EMR")
SUBJECTS = (
    "Report export shows wrong totals",
    "Pathway step not advancing",
    "Calendar unavailable for the whole clinic",  # a "Priority 1 regardless" override
    "Question about user permissions",
)


def policy_path() -> Path:
    return next(p for p in POLICY_CANDIDATES if p.exists())


def make_ticket(policy: Policy, rng: random.Random, key: int, events: int = 20) -> tuple[Ticket, datetime]:
    """A ticket with ``events`` history events: status changes (with waiting pauses, a
    resolution and sometimes a reopening), public/private comments by agents and the reporter,
    and field changes (priority, component, plan). Returns it with a ``now`` after its last event."""
    statuses = {g: list(names) for g, names in policy.statuses.items()}
    new = statuses.get("new", ["New"])[0]
    waiting = statuses.get("waiting", ["Feedback"])[0]
    resolved = statuses.get("resolved", ["Resolved"])[0]
    working = "In Progress"
    created = random_starts(rng, 1)[0]
    fields = {
        "priority": rng.choice(PRIORITIES),
        "plan": rng.choice(PLANS),
        "component": rng.choice(COMPONENTS),
    }
    status = new
    t = created
    history: list[HistoryEvent] = []
    for n in range(events):
        t = t + timedelta(seconds=rng.randrange(60, 3 * 3600))
        roll = rng.random()
        if status == new and (roll < 0.5 or n > 2):
            history.append(HistoryEvent(t, "status", AGENTS[0], from_=status, to=working))
            status = working
        elif roll < 0.35 and status != new:
            nxt = {working: rng.choice((waiting, waiting, resolved)), waiting: working,
                   resolved: working}.get(status, working)  # resolved -> working is a reopening
            by = REPORTER if status == waiting else rng.choice(AGENTS)
            history.append(HistoryEvent(t, "status", by, from_=status, to=nxt))
            status = nxt
        elif roll < 0.75:
            by = rng.choice((*AGENTS, REPORTER))
            history.append(HistoryEvent(
                t, "comment", by, public=rng.random() < 0.7,
                text=f"Update {n}: checked the logs; nothing conclusive yet.",
            ))
        else:
            name = rng.choice(("priority", "component", "plan"))
            pool = {"priority": PRIORITIES, "component": COMPONENTS, "plan": PLANS}[name]
            new_value = rng.choice([v for v in pool if v != fields[name]])
            history.append(HistoryEvent(t, "field", rng.choice(AGENTS), field=name,
                                        from_=fields[name], to=new_value))
            fields[name] = new_value
    assert len(history) == events
    ticket = Ticket(
        tracker="bench", key=str(key), created=created, status=status, updated=t,
        reporter=REPORTER, subject=rng.choice(SUBJECTS), description="Seen since this morning.",
        fields=fields, history=tuple(history),
    )
    now = t + timedelta(seconds=rng.randrange(0, 4 * 3600))
    return ticket, now


class CallRecorder:
    """Records the calendar calls ``evaluate`` makes, to replay them on businesstime."""

    def __init__(self, policy: Policy) -> None:
        self.calls: list[tuple[str, str, int, int]] = []
        self.inside = False
        for name, cal in policy.calendars.items():
            cal.working_us = self._wrap(name, "working", cal.working_us)  # type: ignore[method-assign]
            cal.add_us = self._wrap(name, "add", cal.add_us)  # type: ignore[method-assign]
            if hasattr(cal, "works_us"):  # a clock's spans in one call: recorded one by one
                cal.works_us = self._wrap_many(name, cal.works_us)  # type: ignore[method-assign]

    def _wrap_many(
        self, name: str, fn: Callable[[list[tuple[int, int]]], list[int]]
    ) -> Callable[[list[tuple[int, int]]], list[int]]:
        def recorded(spans: list[tuple[int, int]]) -> list[int]:
            self.calls.extend((name, "working", a, b) for a, b in spans)
            self.inside = True  # its own working_us calls are the spans just recorded
            try:
                return fn(spans)
            finally:
                self.inside = False

        return recorded

    def _wrap(self, name: str, op: str, fn: Callable[[int, int], int]) -> Callable[[int, int], int]:
        def recorded(a: int, b: int) -> int:
            if not self.inside:
                self.calls.append((name, op, a, b))
            return fn(a, b)

        return recorded


def us_dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def bench_verdicts(sizes: Sizes, rng: random.Random, out: list[str]) -> None:
    path = policy_path()
    policy = load_policy(path)
    cases = [make_ticket(policy, rng, k) for k in range(sizes.tickets)]
    out.append("")
    out.append(
        f"verdicts: evaluate(policy, ticket, now) on {path.relative_to(ROOT)}, {len(cases)} tickets"
        " with 20 history events each (status changes with waiting pauses, resolutions and"
        " reopenings, comments, priority/component/plan changes), now after the last event"
    )
    out.append(f"  {'operation':<24} {'implementation':<14} {'throughput':>16} {'median':>17}   [min .. max]")
    jobs = Jobs()
    jobs.cold(
        "verdict", "ours, cold", lambda: load_policy(path),
        lambda p, k: evaluate(p, *cases[k % len(cases)]), max(1, sizes.cold_policies),
    )
    verdicts = jobs.warm(
        "verdict", "ours, warm", lambda: [evaluate(policy, t, now) for t, now in cases], len(cases)
    )
    # The yardsticks a verdict is measured against in the same run (so that the ratio holds
    # on any machine): one calendar add, as in the deadline section, and the walk at 30m.
    yard_cal = office_calendar()
    yard_starts = random_starts(rng, len(cases))
    yard_us = [to_us(t) for t in yard_starts]
    eight = timedelta(hours=8)
    eight_us = eight // timedelta(microseconds=1)
    jobs.warm("one calendar add", "ours, warm", lambda: [yard_cal.add(t, eight) for t in yard_starts],
              len(yard_starts))
    jobs.warm("one calendar add_us", "ours, warm",
              lambda: [yard_cal.add_us(u, eight_us) for u in yard_us], len(yard_us))
    yard_bt = bt_for(yard_cal, range(2025, 2031))
    if yard_bt is not None:
        yard_local = [naive_local(t) for t in yard_starts]
        half_hour = timedelta(minutes=30)
        jobs.warm("one day walk, add 30m", "businesstime",
                  lambda: [walk_add(yard_bt, t, half_hour) for t in yard_local], len(yard_local))
    notes: list[str] = []
    states: dict[str, int] = {}
    for v in verdicts:
        for m in v.metrics.values():
            states[m.state] = states.get(m.state, 0) + 1
    notes.append(
        "  (metric states in the sample: "
        + ", ".join(f"{k} {n}" for k, n in sorted(states.items())) + ")"
    )

    # The calendar arithmetic inside those verdicts, replayed call for call on both libraries.
    # businesstime has no policy engine, so this is the only part of a verdict it can do.
    recorded_policy = load_policy(path)
    try:
        recorder = CallRecorder(recorded_policy)
    except (AttributeError, TypeError):  # a compiled calendar (mypyc) takes no patched methods
        out.extend(jobs.run(sizes.span_repeats))
        out.extend(verdict_ratios(jobs, sizes))
        out.extend(notes)
        out.append("  verdict calendar calls: not recorded (the calendar is compiled)")
        return
    for t, now in cases:
        evaluate(recorded_policy, t, now)
    calls = recorder.calls
    cals = policy.calendars
    bts = {name: bt_for(cal, range(2025, 2031)) for name, cal in cals.items()}
    # businesstime works in whole seconds here (bt_add searches to the second); the engine also
    # asks for instants 1 µs past a target (when a verdict turns to breached): not expressible.
    expressible = [
        c for c in calls if bts[c[0]] is not None and c[2] % 1_000_000 == 0 and c[3] % 1_000_000 == 0
    ]
    per_verdict = len(calls) / len(cases)
    notes.append(
        f"  calendar calls inside a verdict: {per_verdict:.1f} on average"
        f" ({sum(c[1] == 'working' for c in calls)} working, {sum(c[1] == 'add' for c in calls)} add);"
        f" {len(expressible)} of {len(calls)} expressible in businesstime (whole seconds, calendars"
        f" {', '.join(sorted(n for n, b in bts.items() if b is not None)) or 'none'})"
    )
    if BusinessTime is None or not expressible:
        out.extend(jobs.run(sizes.span_repeats))
        out.extend(verdict_ratios(jobs, sizes))
        out.extend(notes)
        out.append("  verdict calendar calls: businesstime not installed or nothing to replay")
        return
    replay = expressible[: max(50, len(expressible) // (3 if sizes is FULL else 4))]
    ours_in = [
        (cals[name], op, us_dt(a), (us_dt(b) if op == "working" else timedelta(microseconds=b)))
        for name, op, a, b in replay
    ]
    theirs_in = [
        (bts[name], op, naive_local(us_dt(a), cals[name].zone),
         naive_local(us_dt(b), cals[name].zone) if op == "working" else timedelta(microseconds=b))
        for name, op, a, b in replay
    ]

    def run_ours() -> list[Any]:
        return [cal.working(a, b) if op == "working" else cal.add(a, b) for cal, op, a, b in ours_in]

    def run_theirs() -> list[Any]:
        return [
            bt.businesstime_hours(a, b) if op == "working" else bt_add(bt, a, b)
            for bt, op, a, b in theirs_in
        ]

    label = "verdict calendar calls"
    ours = jobs.warm(label, "ours, warm", run_ours, len(replay))
    theirs = jobs.warm(label, "businesstime", run_theirs, len(replay))
    out.extend(jobs.run(sizes.span_repeats))
    out.extend(verdict_ratios(jobs, sizes))
    out.extend(notes)
    ours_cmp = [
        naive_local(x, cals[c[0]].zone) if isinstance(x, datetime) else x
        for x, c in zip(ours, replay, strict=True)
    ]
    out.append("")
    out.append("agreement with businesstime on the calendar calls inside verdicts:")
    out.append(compare(
        f"{label} ({len(replay)})", ours_cmp, theirs,
        lambda i: (
            f"working on {replay[i][0]} over [{fmt(theirs_in[i][2])}, {fmt(theirs_in[i][3])})"
            if replay[i][1] == "working"
            else f"add on {replay[i][0]}: {fmt(theirs_in[i][2])} + {theirs_in[i][3]}"
        ),
        lambda i: after_close_on_business_day(theirs_in[i][0], theirs_in[i][2]),
    ))


def verdict_ratios(jobs: Jobs, sizes: Sizes) -> list[str]:
    """Verdicts per second and what a verdict costs in calendar adds, from the best repeats
    of this run."""
    verdict = jobs.stat("verdict", "ours, warm")
    add = jobs.stat("one calendar add", "ours, warm").best
    add_us = jobs.stat("one calendar add_us", "ours, warm").best
    lines = [
        f"  verdicts per second, 20-event tickets: {1 / verdict.best:,.0f} (best of"
        f" {sizes.span_repeats} repeats; {1 / verdict.median:,.0f} at the median)",
        f"  a verdict costs {verdict.best / add:.1f} calendar adds (add 8h from random starts,"
        f" datetimes) or {verdict.best / add_us:.1f} add_us calls (integers), best repeats of"
        " this run",
    ]
    try:
        walk = jobs.stat("one day walk, add 30m", "businesstime").best
        lines.append(f"  ... or {verdict.best / walk:.1f} day-by-day walks of a 30m add")
    except StopIteration:
        pass
    return lines


# -- memory --------------------------------------------------------------------------------------


def bench_memory(out: list[str]) -> None:
    # Load the holidays package's modules first: they are the package's, not the calendar's.
    office_calendar().closed_dates(2020)
    gc.collect()
    tracemalloc.start()
    try:
        cal = office_calendar()
        t0, t1 = datetime(2026, 1, 1, tzinfo=ZONE), datetime(2036, 1, 1, tzinfo=ZONE)
        cal.working(t0, t1)
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tables = [cal._year(y) for y in range(2026, 2036)]
    intervals = sum(getattr(t, "n", len(t.starts)) for t in tables)
    out.append("")
    out.append(
        f"memory: a calendar after covering 10 years (2026-2035, {intervals} open intervals):"
        f" {held / 1024:,.0f} KiB held, {peak / 1024:,.0f} KiB peak while building (tracemalloc)"
    )
    arrays = (
        f"; its arrays hold {sum(t.nbytes() for t in tables) / len(tables) / 1024:.1f} KiB"
        if all(hasattr(t, "nbytes") for t in tables) else ""
    )
    out.append(
        f"  per calendar-year: {held / len(tables) / 1024:.1f} KiB held (tracemalloc, year table"
        f" and holiday dates){arrays}"
    )
    if BusinessTime is not None:
        gc.collect()
        tracemalloc.start()
        try:
            bt = bt_for(office_calendar(), range(2026, 2036))
            bt_held, bt_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        del bt
        out.append(
            f"  businesstime for comparison: {bt_held / 1024:,.0f} KiB held (the 10 years of"
            f" holiday dates it is given), {bt_peak / 1024:,.0f} KiB peak (incl. looking them up)"
        )


# -- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small samples (about 10 s)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed for the inputs")
    parser.add_argument(
        "--only", action="append", choices=("deadlines", "spans", "verdicts", "memory"),
        help="run only this section (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    began = time.perf_counter()
    out = describe_machine()
    out.append(f"run: {'quick' if args.quick else 'full'}, seed {args.seed}")
    for line in out:
        print(line, flush=True)
    sections = {"deadlines": bench_deadlines, "spans": bench_spans, "verdicts": bench_verdicts}
    for name, section in sections.items():
        if args.only and name not in args.only:
            continue
        part: list[str] = []
        section(sizes, rng, part)
        print("\n".join(part), flush=True)
    if not args.only or "memory" in args.only:
        part = []
        bench_memory(part)
        print("\n".join(part))
    print(f"\ntotal run time: {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
