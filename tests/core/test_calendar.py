"""Business calendars: worked examples, a brute-force oracle, and the laws of section 1."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker_bridge.core.calendar import BusinessCalendar, CalendarError

LONDON = ZoneInfo("Europe/London")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz: ZoneInfo = LONDON) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz)


def weekdays(*windows: tuple[int, int], days: range = range(5)) -> dict[int, list[tuple[int, int]]]:
    return {d: list(windows) for d in days}


H = 60  # minutes in an hour, for readable windows
OFFICE = weekdays((9 * H, 17 * H + 30))


@pytest.fixture(scope="module")
def office() -> BusinessCalendar:
    return BusinessCalendar("office", "Europe/London", OFFICE, holidays=["GB/ENG"])


# -- worked examples ------------------------------------------------------------------------


def test_business_day_defaults_to_mondays_windows(office: BusinessCalendar) -> None:
    assert office.business_day == timedelta(hours=8, minutes=30)
    split = BusinessCalendar("split", "UTC", weekdays((8 * H, 12 * H), (13 * H, 17 * H)))
    assert split.business_day == timedelta(hours=8)


def test_deadline_used_up_at_window_end_is_that_end(office: BusinessCalendar) -> None:
    # Monday 2026-03-02 17:00 GMT + 30 minutes ends exactly at the 17:30 close.
    assert office.add(at(2026, 3, 2, 17), timedelta(minutes=30)) == at(2026, 3, 2, 17, 30)
    # One more minute carries over to Tuesday 09:01.
    assert office.add(at(2026, 3, 2, 17), timedelta(minutes=31)) == at(2026, 3, 3, 9, 1)


def test_add_zero_is_identity_even_when_closed(office: BusinessCalendar) -> None:
    saturday = at(2026, 3, 7, 3, 17)
    assert office.add(saturday, timedelta(0)) == saturday


def test_start_outside_hours_waits_for_opening(office: BusinessCalendar) -> None:
    # Friday 2026-03-06 20:00: closed until Monday 09:00; +1h -> Monday 10:00.
    assert office.add(at(2026, 3, 6, 20), timedelta(hours=1)) == at(2026, 3, 9, 10)


def test_english_holidays_are_skipped(office: BusinessCalendar) -> None:
    # Thursday 24 Dec 2026 16:00: 1h30 left that day. Fri 25 Christmas, weekend, Mon 28 is
    # the Boxing Day substitute (26 Dec is a Saturday): so +2h ends Tue 29 Dec 09:30.
    assert office.add(at(2026, 12, 24, 16), timedelta(hours=2)) == at(2026, 12, 29, 9, 30)
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April are closed.
    assert office.add(at(2026, 4, 2, 17), timedelta(hours=1)) == at(2026, 4, 7, 9, 30)


def test_closed_dates_and_several_countries() -> None:
    cal = BusinessCalendar(
        "dublin", "Europe/Dublin", OFFICE, holidays=["GB/ENG", "IE"], closed=[date(2026, 3, 18)]
    )
    dublin = ZoneInfo("Europe/Dublin")
    # Tue 17 March 2026 is St Patrick's Day (IE), Wed 18 is an explicit closure.
    assert cal.add(at(2026, 3, 16, 17, tz=dublin), timedelta(hours=1)) == at(
        2026, 3, 19, 9, 30, tz=dublin
    )


def test_dst_days_have_23_and_25_real_hours() -> None:
    always_open_local = BusinessCalendar(
        "24h", "Europe/London", weekdays((0, 24 * H), days=range(7))
    )
    # Sunday 29 March 2026: clocks go forward at 01:00 GMT.
    assert always_open_local.working(at(2026, 3, 29), at(2026, 3, 30)) == timedelta(hours=23)
    # Sunday 25 October 2026: clocks go back at 02:00 BST.
    assert always_open_local.working(at(2026, 10, 25), at(2026, 10, 26)) == timedelta(hours=25)


def test_window_across_dst_gap_is_clamped_to_the_transition() -> None:
    # A 00:00-03:00 window on the spring-forward Sunday is 2 real hours (01:00-02:00 never is).
    cal = BusinessCalendar(
        "night", "Europe/London", {6: [(0, 3 * H)]}, business_day=timedelta(hours=3)
    )
    assert cal.working(at(2026, 3, 29), at(2026, 3, 30)) == timedelta(hours=2)
    # A window starting inside the gap (01:30-03:00) opens at the transition: 1 real hour.
    gap = BusinessCalendar(
        "gap", "Europe/London", {6: [(90, 3 * H)]}, business_day=timedelta(hours=1)
    )
    assert gap.working(at(2026, 3, 29), at(2026, 3, 30)) == timedelta(hours=1)
    assert gap.add(at(2026, 3, 29), timedelta(minutes=1)) == datetime(2026, 3, 29, 1, 1, tzinfo=UTC)


def test_windows_meeting_across_midnight_are_continuous() -> None:
    cal = BusinessCalendar(
        "nights", "UTC", {0: [(20 * H, 24 * H)], 1: [(0, 8 * H)]}, business_day=timedelta(hours=12)
    )
    utc = ZoneInfo("UTC")
    assert cal.add(at(2026, 3, 2, 23, tz=utc), timedelta(hours=2)) == at(2026, 3, 3, 1, tz=utc)
    assert cal.working(at(2026, 3, 2, tz=utc), at(2026, 3, 4, tz=utc)) == timedelta(hours=12)


def test_always_is_plain_elapsed_time() -> None:
    cal = BusinessCalendar.always_open()
    t = at(2026, 12, 25, 3)
    assert cal.add(t, timedelta(hours=4)) == t + timedelta(hours=4)
    assert cal.working(t, t + timedelta(days=400)) == timedelta(days=400)
    assert cal.business_day == timedelta(hours=24)


def test_long_spans_cross_years(office: BusinessCalendar) -> None:
    start = at(2026, 12, 31, 17)
    end = office.add(start, timedelta(hours=8, minutes=30) * 300)
    assert office.working(start, end) == timedelta(hours=8, minutes=30) * 300
    assert end.year == 2028


def test_naive_instants_are_refused(office: BusinessCalendar) -> None:
    with pytest.raises(CalendarError, match="naive"):
        office.working(datetime(2026, 3, 2, 9), at(2026, 3, 2, 10))


def test_invalid_definitions() -> None:
    with pytest.raises(CalendarError, match="time zone"):
        BusinessCalendar("x", "Mars/Olympus", OFFICE)
    with pytest.raises(CalendarError, match="no opening window"):
        BusinessCalendar("x", "UTC", {})
    with pytest.raises(CalendarError, match="business_day"):
        BusinessCalendar("x", "UTC", {5: [(9 * H, 12 * H)]})  # Monday closed, no business_day


# -- a brute-force oracle -------------------------------------------------------------------


def brute_working_minutes(
    cal_week: dict, zone: ZoneInfo, closed: set[date], t0: datetime, t1: datetime
) -> int:
    """Count the UTC minutes in [t0, t1) whose local wall-clock time is in an open window."""
    n = 0
    t = t0
    while t < t1:
        local = t.astimezone(zone)
        minute = local.hour * 60 + local.minute
        if local.date() not in closed and any(
            s <= minute < e for s, e in cal_week.get(local.weekday(), [])
        ):
            n += 1
        t += timedelta(minutes=1)
    return n


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 20)),
    span_minutes=st.integers(min_value=0, max_value=4 * 24 * 60),
    windows=st.sampled_from(
        [
            [(9 * H, 17 * H + 30)],
            [(8 * H, 12 * H), (13 * H, 20 * H)],
            [(0, 3 * H), (22 * H, 24 * H)],  # straddles DST changes at 01:00-03:00
            [(0, 24 * H)],
        ]
    ),
)
def test_working_matches_minute_by_minute_oracle(zone, start, span_minutes, windows) -> None:
    tz = ZoneInfo(zone)
    week = {d: windows for d in range(6)}  # Sunday closed
    cal = BusinessCalendar("c", zone, week, holidays=["GB"], business_day=timedelta(hours=8))
    t0 = start.replace(second=0, microsecond=0, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=span_minutes)
    closed = set(cal.closed_dates(t0.year)) | set(cal.closed_dates(t1.year))
    # the oracle reads wall-clock minutes; Chatham's +12:45 offset keeps minutes aligned
    assert cal.working(t0, t1) == timedelta(minutes=brute_working_minutes(week, tz, closed, t0, t1))


# -- the laws (hypothesis) ----------------------------------------------------------------------

CALENDARS = [
    BusinessCalendar("office", "Europe/London", OFFICE, holidays=["GB/ENG"]),
    BusinessCalendar(
        "sat", "Europe/Dublin", {**OFFICE, 5: [(9 * H, 12 * H + 30)]}, holidays=["GB/ENG", "IE"]
    ),
    BusinessCalendar(
        "ny", "America/New_York", weekdays((8 * H, 20 * H), days=range(7)), holidays=["US"]
    ),
    BusinessCalendar(
        "syd",
        "Australia/Sydney",
        weekdays((0, 2 * H + 30), (21 * H, 24 * H), days=range(7)),
        holidays=["AU/NSW"],
    ),
    BusinessCalendar("kol", "Asia/Kolkata", weekdays((9 * H + 30, 18 * H)), holidays=["IN"]),
    BusinessCalendar.always_open(),
]

instants = st.datetimes(
    min_value=datetime(2025, 6, 1), max_value=datetime(2028, 6, 1), timezones=st.just(UTC)
)
durations = st.integers(min_value=0, max_value=60 * 24 * 3600 * 10**6).map(
    lambda us: timedelta(microseconds=us)
)
cal_st = st.sampled_from(CALENDARS)


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, t=instants, d=durations)
def test_law_working_of_add_is_d(cal, t, d) -> None:
    end = cal.add(t, d)
    assert end >= t
    assert cal.working(t, end) == d


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, t=instants, a=durations, b=durations)
def test_law_add_is_associative(cal, t, a, b) -> None:
    assert cal.add(cal.add(t, a), b) == cal.add(t, a + b)


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, t=instants, d=durations)
def test_add_is_the_earliest_such_instant(cal, t, d) -> None:
    end = cal.add(t, d)
    if end > t:
        assert cal.working(t, end - timedelta(microseconds=1)) < d


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, ts=st.lists(instants, min_size=3, max_size=3))
def test_law_working_is_additive_and_monotone(cal, ts) -> None:
    a, b, c = sorted(ts)
    assert cal.working(a, c) == cal.working(a, b) + cal.working(b, c)
    assert cal.working(a, b) <= cal.working(a, c)
    assert cal.working(c, a) == timedelta(0) or a == c


# -- laws where the per-year tables meet: new year and DST, in each calendar's own zone -----

#: instants where a table ends or a day is not 24 hours long, in the calendars' zones
PIVOTS = [
    *(datetime(y, 1, 1, tzinfo=ZoneInfo(z)) for y in (2026, 2027, 2028) for z in (
        "Europe/London", "Europe/Dublin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"
    )),
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # Europe: spring forward
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # Europe: fall back
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York: spring forward
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York: fall back
    datetime(2026, 4, 4, 16, tzinfo=UTC),  # Sydney: fall back
    datetime(2026, 10, 3, 16, tzinfo=UTC),  # Sydney: spring forward
]
near_pivot = st.builds(
    lambda p, us: (p + timedelta(microseconds=us)).astimezone(UTC),
    st.sampled_from(PIVOTS),
    st.integers(min_value=-4 * 86_400 * 10**6, max_value=4 * 86_400 * 10**6),
)
#: spans up to 60 business days: past a year's end from anywhere in December
spans = st.integers(min_value=0, max_value=60 * 8 * 3600 * 10**6).map(
    lambda us: timedelta(microseconds=us)
)


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, a=near_pivot, b=near_pivot)
def test_law_add_of_working_across_years_and_dst(cal, a, b) -> None:
    a, b = min(a, b), max(a, b)
    w = cal.working(a, b)
    end = cal.add(a, w)
    assert a <= end <= b
    assert cal.working(a, end) == w
    # b inside open time (or at the end of a window): add lands on b itself
    if b > a and cal.is_open(b - timedelta(microseconds=1)):
        assert end == b


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, a=near_pivot, d=spans)
def test_law_working_of_add_across_years_and_dst(cal, a, d) -> None:
    end = cal.add(a, d)
    assert cal.working(a, end) == d
    if end > a:
        assert cal.working(a, end - timedelta(microseconds=1)) < d
    # split at any instant in between: the two parts add up (the year tables meet exactly)
    mid = a + (end - a) / 3
    assert cal.working(a, mid) + cal.working(mid, end) == d
    assert cal.add(mid, d - cal.working(a, mid)) == end or d == timedelta(0)


@settings(max_examples=300, deadline=None)
@given(cal=cal_st, t=st.one_of(near_pivot, instants))
def test_an_instant_is_in_the_table_of_its_local_year(cal, t) -> None:
    """The integer year bounds agree with the zone: an instant's table is its local year's,
    and the instant lies within the table's bounds (no zone conversion per call)."""
    if cal.always:
        return
    us = (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    table = cal._table_at(us)
    assert table.lo <= us < table.hi
    assert table.year == t.astimezone(cal.zone).year
    assert table.lo == (datetime(table.year, 1, 1, tzinfo=cal.zone) - datetime(
        1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert all(table.lo <= s < e <= table.hi for s, e in zip(
        table.starts[: table.n], table.ends[: table.n], strict=True))
    assert table.cum[table.n] == table.total == sum(
        e - s for s, e in zip(table.starts[: table.n], table.ends[: table.n], strict=True))


def test_a_year_table_is_arrays_of_64_bit_integers(office: BusinessCalendar) -> None:
    table = office._year(2026)
    assert {type(a).__name__ for a in (table.starts, table.ends, table.cum)} == {"array"}
    assert table.starts.typecode == table.ends.typecode == table.cum.typecode == "q"
    # 2026 in England: 253 weekdays that are not bank holidays, one window each
    assert table.n == 253
    assert table.nbytes() < 8 * 1024


#: spans as a clock has them: ordered, some empty (a running clock's (now, now)), some
#: crossing new year, some outside the range the calendars compute in
clock_spans = st.lists(
    st.tuples(
        st.one_of(near_pivot, instants, st.just(datetime(1970, 1, 1, tzinfo=UTC)),
                  st.just(datetime(2300, 1, 1, tzinfo=UTC))),
        st.integers(min_value=-10**6, max_value=40 * 86_400 * 10**6),
    ),
    max_size=5,
)


@pytest.mark.filterwarnings("ignore:Requested Holidays are available only")  # 1970, 2300
@settings(max_examples=300, deadline=None)
@given(cal=cal_st, spans=clock_spans)
def test_works_us_is_working_us_span_by_span(cal, spans) -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    pairs = [((t - epoch) // timedelta(microseconds=1), length) for t, length in spans]
    pairs = [(a, a + length) for a, length in pairs]

    def each(a: int, b: int) -> object:
        try:
            return cal.working_us(a, b)
        except CalendarError as exc:
            return str(exc)

    expected = [each(a, b) for a, b in pairs]
    first_error = next((e for e in expected if isinstance(e, str)), None)
    if first_error is None:
        assert cal.works_us(pairs) == expected
    else:
        with pytest.raises(CalendarError) as raised:
            cal.works_us(pairs)
        assert str(raised.value) == first_error
