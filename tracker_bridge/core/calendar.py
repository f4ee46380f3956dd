"""Business calendars (docs/semantics.md, "Calendars").

A calendar is an IANA zone, weekly opening windows in local wall-clock time, closed dates
(public holidays from the ``holidays`` package and explicit dates) and the length of a
business day. ``working(t0, t1)`` is the real elapsed time of ``[t0, t1)`` inside open
windows; ``add(t, d)`` is the earliest ``t' >= t`` with ``working(t, t') == d``.

How it stays fast over long spans: for each local year the calendar builds, once, the table
of that year's open intervals as UTC instants (integer microseconds, in ``array('q')``s: about
6 KiB for a year of weekday windows) with their running total, and the year's bounds as UTC
integers. ``working`` and ``add`` then cost an integer comparison to find the year (the last
year used is kept at hand; another year costs a binary search over the UTC years and two
cached bounds, never a time-zone conversion), a binary search for the start and, for ``add``,
one over the running totals, whether the span is 30 minutes or 60 business days (see
benchmarks/). Working in UTC microseconds makes the laws exact: DST days simply have 23 or 25
real hours of 00:00-24:00 window.

A window boundary that falls in a DST gap (a wall-clock time that does not exist) is moved
to the instant of the transition; in a DST fold the first occurrence is taken.

Bounds, so that every computation is short and nothing overflows: instants handed to the
calendar lie in 1970-01-01..2300-01-01 UTC (:data:`HORIZON`; the instants the bridge takes in
stop at 2200, ``durations.MAX_INSTANT``, leaving a century for deadlines computed from them),
``add`` raises :class:`CalendarError` when the time is not used up before the horizon (a
calendar with little or no open time) instead of searching on, and a calendar has at most
:data:`MAX_WINDOWS_PER_DAY` windows a day, :data:`MAX_HOLIDAY_SPECS` holiday countries and
:data:`MAX_CLOSED_DATES` closed dates: building a year's table is then a bounded amount of work,
and at most 331 years are ever built.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .durations import MAX_BUSINESS_DAY, MIN_INSTANT, format_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
DAY_MINUTES = 24 * 60

#: no instant the calendar computes with or returns lies after this
HORIZON = datetime(2300, 1, 1, tzinfo=UTC)
#: opening windows a day (after merging those that touch), holiday specs, closed dates
MAX_WINDOWS_PER_DAY = 8
MAX_HOLIDAY_SPECS = 8
MAX_CLOSED_DATES = 2000

#: weekly windows: for weekday 0 (Monday) .. 6, sorted (start_minute, end_minute) pairs
Week = tuple[tuple[tuple[int, int], ...], ...]


class CalendarError(ValueError):
    """An invalid calendar definition or argument."""


def to_us(dt: datetime) -> int:
    """An aware instant as integer microseconds since the epoch.

    Raises :class:`CalendarError` for a naive instant or one outside 1970-01-01..2300-01-01.
    """
    try:
        delta = dt - _EPOCH
    except TypeError:  # naive (or a tzinfo whose utcoffset is None): no instant at all
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise CalendarError(
                f"naive datetime {dt.isoformat()} (instants must carry a time zone)"
            ) from None
        raise
    # (days, seconds, microseconds) by hand: about twice as fast as delta // _US
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if not _MIN_US <= us <= _HORIZON_US:
        raise CalendarError(
            f"{dt.isoformat()} is outside the range the calendars compute in "
            f"({MIN_INSTANT.isoformat()} to {HORIZON.isoformat()})"
        )
    return us


def _raw_us(dt: datetime) -> int:
    """``to_us`` without the range check: wall-clock instants of the year tables only."""
    return (dt - _EPOCH) // _US


def from_us(us: int) -> datetime:
    """An instant in UTC from integer microseconds since the epoch."""
    return _EPOCH + timedelta(0, 0, us)  # positional: faster than microseconds=us


def _td_us(td: timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


_MIN_US = _raw_us(MIN_INSTANT)
_HORIZON_US = _raw_us(HORIZON)


def _check_us(us: int) -> None:
    if not _MIN_US <= us <= _HORIZON_US:
        raise CalendarError(
            f"instant {us} (microseconds since 1970) is outside the range the calendars "
            f"compute in ({MIN_INSTANT.isoformat()} to {HORIZON.isoformat()})"
        )


#: where a calendar gets a year's public holidays: ``(spec, year) -> dates``
HolidaySource = Callable[[str, int], Iterable[date]]


def holiday_dates(spec: str, year: int) -> set[date]:
    """Public holidays of ``COUNTRY`` or ``COUNTRY/SUBDIVISION`` in one year (the
    ``holidays`` package; imported on first use, as loading its countries takes a while)."""
    import holidays as holidays_lib

    country, _, subdiv = spec.partition("/")
    try:
        table = holidays_lib.country_holidays(country, subdiv=subdiv or None, years=year)
    except NotImplementedError:
        raise CalendarError(f"{spec!r}: unknown holiday country") from None
    except Exception as exc:  # the package raises NotImplementedError or a plain error
        raise CalendarError(f"{spec!r}: {exc}") from None
    return set(table.keys())


def validate_holiday_spec(spec: str) -> None:
    """Raise :class:`CalendarError` when ``spec`` is not a country (and subdivision) we know."""
    holiday_dates(spec, 2026)


_DAY_US = 86_400 * 1_000_000
#: past every instant: the end of each table's sentinel interval
_NEVER = 1 << 62


class _Year:
    """One local year's open intervals, as UTC microseconds in ``array('q')``s.

    ``lo``/``hi``: the UTC instants of local midnight on 1 January of the year and of the next
    (every interval lies in ``[lo, hi]``; a DST gap at midnight gives the transition instant).
    ``starts``/``ends``: the ``n`` intervals, ascending, disjoint, not touching, then a
    sentinel ``(hi, never)`` that ends every scan. ``cum[i]``: open time in the year before
    interval ``i`` (``cum[n] == total``). ``days[k]``: the first interval that ends after
    ``lo + k`` days, so that finding an instant's interval is an index and a step or two
    instead of a binary search.
    """

    __slots__ = ("cum", "days", "ends", "fhi", "flo", "hi", "lo", "n", "starts", "total", "year")

    def __init__(self, year: int, lo: int, hi: int, starts: list[int], ends: list[int]) -> None:
        self.year = year
        self.lo = lo
        self.hi = hi
        #: ``[lo, hi]`` within the range the calendars compute in: a span inside it needs no
        #: other check (only the tables of 1969 and 2300 reach outside)
        self.flo = max(lo, _MIN_US)
        self.fhi = min(hi, _HORIZON_US)
        n = self.n = len(starts)
        cum = [0] * (n + 1)
        total = 0
        for i in range(n):
            cum[i] = total
            total += ends[i] - starts[i]
        cum[n] = self.total = total
        days = []
        i = 0
        for k in range((hi - lo) // _DAY_US + 1):
            day_start = lo + k * _DAY_US
            while i < n and ends[i] <= day_start:
                i += 1
            days.append(i)
        self.starts = array("q", starts)
        self.starts.append(hi)
        self.ends = array("q", ends)
        self.ends.append(_NEVER)
        self.cum = array("q", cum)
        self.days = array("H" if n < 65535 else "L", days)

    def within(self, us: int) -> int:
        """Open time from ``lo`` to ``us`` (``lo <= us <= hi``)."""
        i = self.days[(us - self.lo) // _DAY_US]
        ends = self.ends
        while ends[i] <= us:
            i += 1
        start = self.starts[i]
        return self.cum[i] + (us - start if us > start else 0)

    def nbytes(self) -> int:
        """Bytes held by the table's arrays (their items)."""
        return sum(a.itemsize * len(a) for a in (self.starts, self.ends, self.cum, self.days))


#: no year: an empty range, so that the first lookup of a calendar always misses
_NO_YEAR = _Year(0, 0, 0, [], [])
_NO_YEAR.flo, _NO_YEAR.fhi = 1, 0

#: UTC instants of 1 January 00:00 of the years 1969..2302 (a local year is one of three
#: neighbouring UTC years: offsets are under 26 hours)
_FIRST_UTC_YEAR = 1969
_UTC_YEAR_STARTS = [
    (datetime(y, 1, 1, tzinfo=UTC) - _EPOCH) // _US
    for y in range(_FIRST_UTC_YEAR, HORIZON.year + 3)
]
#: the mean Gregorian year: an instant's UTC year index, to within one, by a division
_MEAN_YEAR_US = 146_097 * _DAY_US // 400


#: how notes name the built-in ``always`` calendar when the policy gives it no label
ALWAYS_WORDS = "24x7 (every hour of every day)"


class BusinessCalendar:
    """An SLA calendar. Instants in and out are aware datetimes; durations are timedeltas."""

    def __init__(
        self,
        name: str,
        zone: str | ZoneInfo = "UTC",
        week: Mapping[int, Sequence[tuple[int, int]]] | None = None,
        holidays: Iterable[str] = (),
        closed: Iterable[date] = (),
        business_day: timedelta | None = None,
        always: bool = False,
        holiday_source: HolidaySource | None = None,
        label: str | None = None,
    ) -> None:
        self.name = name
        #: the calendar in words for people (notes): the policy's ``label`` (e.g.
        #: ``Premium: 24x7``), else a wording of the built-in ``always`` or ``the NAME
        #: calendar``
        self.label: str | None = label
        self.words: str = label or (ALWAYS_WORDS if always else f"the {name} calendar")
        #: ``(spec, year) -> dates``: :func:`holiday_dates` unless the caller keeps a cache
        self.holiday_source: HolidaySource = holiday_source or holiday_dates
        self.always = always
        try:
            self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        except Exception:
            raise CalendarError(f"{zone!r} is not an IANA time zone") from None
        self.holiday_specs: tuple[str, ...] = tuple(dict.fromkeys(holidays))
        self.closed: frozenset[date] = frozenset(closed)
        if len(self.holiday_specs) > MAX_HOLIDAY_SPECS:
            raise CalendarError(
                f"calendar {name!r}: {len(self.holiday_specs)} holiday countries "
                f"(at most {MAX_HOLIDAY_SPECS})"
            )
        if len(self.closed) > MAX_CLOSED_DATES:
            raise CalendarError(
                f"calendar {name!r}: {len(self.closed)} closed dates (at most {MAX_CLOSED_DATES})"
            )
        self.week: Week = self._normalise_week(week or {}) if not always else ((),) * 7
        if always:
            default_day = timedelta(hours=24)
        else:
            default_day = timedelta(minutes=sum(e - s for s, e in self.week[0]))
        self.business_day: timedelta = business_day if business_day is not None else default_day
        if not always and not any(self.week):
            raise CalendarError(f"calendar {name!r} has no opening window in the week")
        if self.business_day <= timedelta(0):
            raise CalendarError(
                f"calendar {name!r}: business_day must be positive (Monday has no window; "
                "set business_day explicitly)"
            )
        if self.business_day > MAX_BUSINESS_DAY:
            raise CalendarError(f"calendar {name!r}: business_day is longer than 24 hours")
        self._years: dict[int, _Year] = {}
        #: the same tables by UTC year index (year - 1969), for the table of a UTC year that
        #: is also its local year: an instant's table is then found without a search
        self._by_utc_year: list[_Year | None] = [None] * len(_UTC_YEAR_STARTS)
        self._holidays: dict[int, frozenset[date]] = {}
        #: local year -> UTC microseconds of its 1 January 00:00 (filled as years are met)
        self._year_starts: dict[int, int] = {}
        #: the table used last (most calls fall in the year of the one before), and the one
        #: before it (tickets around new year, or from two years, alternate between two)
        self._hot: _Year = _NO_YEAR
        self._warm: _Year = _NO_YEAR

    @classmethod
    def always_open(cls, name: str = "always") -> BusinessCalendar:
        """Open 24x7x365, holidays ignored; a business day is 24 hours."""
        return cls(name, "UTC", always=True)

    @staticmethod
    def _normalise_week(week: Mapping[int, Sequence[tuple[int, int]]]) -> Week:
        days: list[tuple[tuple[int, int], ...]] = []
        for wd in range(7):
            windows = sorted(week.get(wd, ()))
            for s, e in windows:
                if not (0 <= s < e <= DAY_MINUTES):
                    raise CalendarError(f"window {s}-{e} (minutes) is not within a day")
            merged: list[tuple[int, int]] = []
            for s, e in windows:
                if merged and s < merged[-1][1]:
                    raise CalendarError("opening windows overlap")
                if merged and s == merged[-1][1]:
                    merged[-1] = (merged[-1][0], e)
                else:
                    merged.append((s, e))
            if len(merged) > MAX_WINDOWS_PER_DAY:
                raise CalendarError(
                    f"{len(merged)} opening windows on one day (at most {MAX_WINDOWS_PER_DAY})"
                )
            days.append(tuple(merged))
        return tuple(days)

    # -- closed dates --------------------------------------------------------------------------

    def closed_dates(self, year: int) -> frozenset[date]:
        """Every local date of ``year`` on which no window opens (holidays and closures)."""
        cached = self._holidays.get(year)
        if cached is None:
            dates: set[date] = {d for d in self.closed if d.year == year}
            for spec in self.holiday_specs:
                dates.update(self.holiday_source(spec, year))
            cached = self._holidays[year] = frozenset(dates)
        return cached

    def is_closed(self, day: date) -> bool:
        return day in self.closed_dates(day.year)

    # -- wall clock -> UTC ------------------------------------------------------------------------

    def _local_us(self, day: date, minute: int) -> int:
        """UTC microseconds of a local wall-clock time (DST gap: the transition instant)."""
        if minute >= DAY_MINUTES:
            day = day + timedelta(days=1)
            minute -= DAY_MINUTES
        naive = datetime.combine(day, time(minute // 60, minute % 60))
        first = naive.replace(tzinfo=self.zone, fold=0)
        first_us = _raw_us(first)
        back = from_us(first_us).astimezone(self.zone).replace(tzinfo=None)
        if back == naive:
            return first_us
        # A wall-clock time that does not exist (spring forward). fold=1 reads it with the
        # offset after the transition, fold=0 with the one before; the transition lies
        # between the two readings. Find it by bisection on whole seconds.
        lo = _raw_us(naive.replace(tzinfo=self.zone, fold=1))
        hi = first_us
        if lo > hi:
            lo, hi = hi, lo
        before = from_us(lo).astimezone(self.zone).utcoffset()
        lo_s, hi_s = lo // 1_000_000, -(-hi // 1_000_000)
        while hi_s - lo_s > 1:
            mid = (lo_s + hi_s) // 2
            if from_us(mid * 1_000_000).astimezone(self.zone).utcoffset() == before:
                lo_s = mid
            else:
                hi_s = mid
        return hi_s * 1_000_000

    # -- per-year tables ------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            table = self._years[year] = self._build_year(year)
            self._by_utc_year[year - _FIRST_UTC_YEAR] = table
        return table

    def _year_start(self, year: int) -> int:
        """UTC microseconds of local midnight starting 1 January of ``year`` (cached)."""
        us = self._year_starts.get(year)
        if us is None:
            us = self._year_starts[year] = self._local_us(date(year, 1, 1), 0)
        return us

    def _build_year(self, year: int) -> _Year:
        starts: list[int] = []
        ends: list[int] = []
        closed = self.closed_dates(year)
        day = date(year, 1, 1)
        one = timedelta(days=1)
        while day.year == year:
            if day not in closed:
                for s, e in self.week[day.weekday()]:
                    us0 = self._local_us(day, s)
                    us1 = self._local_us(day, e)
                    if us1 <= us0:
                        continue
                    if ends and us0 <= ends[-1]:  # windows meeting across midnight, or a fold
                        us0 = max(us0, ends[-1])
                        if us1 <= us0:
                            continue
                        if us0 == ends[-1]:
                            ends[-1] = us1
                            continue
                    starts.append(us0)
                    ends.append(us1)
            day += one
        return _Year(year, self._year_start(year), self._year_start(year + 1), starts, ends)

    def _table_at(self, us: int) -> _Year:
        """The table of the local year holding ``us`` (in range); it becomes the hot one."""
        table = self._hot
        if table.lo <= us < table.hi:
            return table
        warm = self._warm
        if warm.lo <= us < warm.hi:
            self._hot, self._warm = warm, table
            return warm
        self._warm = table
        # the UTC year, by a division corrected by one comparison either way
        k = (us - _UTC_YEAR_STARTS[0]) // _MEAN_YEAR_US
        if us < _UTC_YEAR_STARTS[k]:
            k -= 1
        elif us >= _UTC_YEAR_STARTS[k + 1]:
            k += 1
        found = self._by_utc_year[k]
        if found is not None and found.lo <= us < found.hi:
            self._hot = found
            return found
        # near new year the local year may be the one before or after: by its bounds
        year = k + _FIRST_UTC_YEAR
        if us < self._year_start(year):
            year -= 1
        elif us >= self._year_start(year + 1):
            year += 1
        table = self._hot = self._year(year)
        return table

    def _year_of(self, us: int) -> int:
        """The local year an instant falls in, by the year bounds (no zone conversion)."""
        return self._table_at(us).year

    # -- the two operations -----------------------------------------------------------------------

    def working_us(self, t0: int, t1: int) -> int:
        """``working`` on integer microseconds (both within 1970-01-01..2300-01-01)."""
        if not (_MIN_US <= t0 <= _HORIZON_US and _MIN_US <= t1 <= _HORIZON_US):
            _check_us(t0)
            _check_us(t1)
        if t1 <= t0:
            return 0
        if self.always:
            return t1 - t0
        table = self._hot
        if not table.lo <= t0 < table.hi:
            table = self._table_at(t0)
        if t1 <= table.hi:  # the same year (or its very end)
            return table.within(t1) - table.within(t0)
        result = table.total - table.within(t0)
        year = table.year + 1
        while True:
            table = self._year(year)
            if t1 <= table.hi:
                return result + table.within(t1)
            result += table.total
            year += 1

    def works_us(self, spans: Iterable[tuple[int, int]]) -> list[int]:
        """``working_us(a, b)`` for each ``(a, b)`` in ``spans``: one call for a clock's
        intervals (the engine's), without a method call and two range checks per span."""
        out: list[int] = []
        if self.always:
            for a, b in spans:
                if _MIN_US <= a <= _HORIZON_US and _MIN_US <= b <= _HORIZON_US:
                    out.append(b - a if b > a else 0)
                else:
                    out.append(self.working_us(a, b))  # raises
            return out
        table = self._hot
        flo, fhi, lo = table.flo, table.fhi, table.lo
        days, starts, ends, cum = table.days, table.starts, table.ends, table.cum
        for a, b in spans:
            if not flo <= a <= b <= fhi:
                if a == b and _MIN_US <= a <= _HORIZON_US:  # a running clock's (now, now)
                    out.append(0)
                    continue
                if not (a < b and a >= _MIN_US and b <= _HORIZON_US):
                    out.append(self.working_us(a, b))  # nothing, or the range error
                    continue
                table = self._table_at(a)
                flo, fhi, lo = table.flo, table.fhi, table.lo
                days, starts, ends, cum = table.days, table.starts, table.ends, table.cum
                if b > table.hi:  # across a new year
                    out.append(self.working_us(a, b))
                    continue
            # table.within(b) - table.within(a), inlined
            i = days[(a - lo) // _DAY_US]
            while ends[i] <= a:
                i += 1
            start = starts[i]
            w = -cum[i] - (a - start if a > start else 0)
            i = days[(b - lo) // _DAY_US]
            while ends[i] <= b:
                i += 1
            start = starts[i]
            out.append(w + cum[i] + (b - start if b > start else 0))
        return out

    def add_us(self, t: int, d: int) -> int:
        """``add`` on integer microseconds.

        Raises :class:`CalendarError` when ``d`` is not used up by :data:`HORIZON` (2300): a
        calendar with little or no open time is searched up to there, never further.
        """
        if d < 0:
            raise CalendarError("add() takes a non-negative duration")
        if not _MIN_US <= t <= _HORIZON_US:
            _check_us(t)
        if d == 0 or self.always:
            if d > _HORIZON_US - t:
                raise self._beyond_horizon(t, d)
            return t + d
        table = self._hot
        if not table.lo <= t < table.hi:
            table = self._table_at(t)
        # table.within(t), inlined: this is the hot path of every deadline
        i = table.days[(t - table.lo) // _DAY_US]
        ends = table.ends
        while ends[i] <= t:
            i += 1
        cum = table.cum
        start = table.starts[i]
        target = cum[i] + (t - start if t > start else 0) + d
        if i < table.n and target <= cum[i + 1]:  # used up in t's interval or the next one
            out = ends[i] - (cum[i + 1] - target)
            if out <= _HORIZON_US:
                return out
            raise self._beyond_horizon(t, d)
        while True:
            if target <= table.total:
                cum = table.cum
                # the first interval whose end reaches target (after i within t's year)
                j = bisect_left(cum, target, i + 2) - 1
                out = table.ends[j] - (cum[j + 1] - target)
                if out <= _HORIZON_US:
                    return out
                break
            if table.hi > _HORIZON_US:  # the year holding the horizon: search no further
                break
            target -= table.total
            table = self._year(table.year + 1)
            i = -1
        raise self._beyond_horizon(t, d)

    def _beyond_horizon(self, t: int, d: int) -> CalendarError:
        span = (
            format_duration(timedelta(microseconds=d))
            if d <= _HORIZON_US - _MIN_US
            else "more than 330 years"
        )
        return CalendarError(
            f"calendar {self.name!r}: {span} of open time "
            f"from {from_us(t).isoformat()} is not used up before {HORIZON.date().isoformat()}, "
            "the end of the range the calendars compute in (is the calendar open at all? "
            "check its week, closed dates and holidays)"
        )

    def working(self, t0: datetime, t1: datetime) -> timedelta:
        """Real elapsed time of ``[t0, t1)`` that lies inside open windows (0 if t1 <= t0)."""
        return timedelta(0, 0, self.working_us(to_us(t0), to_us(t1)))

    def add(self, t: datetime, d: timedelta) -> datetime:
        """The earliest instant ``t' >= t`` with ``working(t, t') == d``, in UTC.

        A duration used up exactly at a window's end gives that end, not the next opening.
        """
        return from_us(self.add_us(to_us(t), _td_us(d)))

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` lies inside an open window."""
        us = to_us(t)
        return self.always or self.working_us(us, us + 1) == 1

    def next_open(self, t: datetime) -> datetime:
        """``t`` if open, else the start of the next window."""
        if self.is_open(t):
            return t
        us = to_us(t)
        return from_us(self.add_us(us, 1) - 1)

    def __repr__(self) -> str:
        if self.always:
            return f"BusinessCalendar({self.name!r}, always)"
        return f"BusinessCalendar({self.name!r}, {self.zone.key!r})"
