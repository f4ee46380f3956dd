"""Durations as policies write them (docs/policy.md, "Durations").

``30m``, ``0.5h``, ``4h``, ``8h30m``, ``90s``, ``2d`` (24-hour days of working time),
``1bd``/``5bd`` (business days: n x the calendar's ``business_day``) and ``none``.
A duration that names business days can only be turned into time once its calendar is
known, so parsing yields a :class:`Duration` that is resolved against a calendar later.

Bounds, so that no calendar computation can overflow or run for long: a duration is at most
:data:`MAX_DURATION` (10 years: ``3653d``, ``87672h``, ``5260320m``, ``3653bd``, a business day
being at most 24 hours), a percentage at most :data:`MAX_PERCENT` (1000%), and an instant the
bridge takes in lies in ``[MIN_INSTANT, MAX_INSTANT]`` (1970-01-01 to 2200-01-01 UTC).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)(bd|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:bd|d|h|m|s))+")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FRACTION = re.compile(r"\d{1,30}(?:\.\d{1,30})?|\.\d{1,30}")

#: the longest duration a policy may give (targets, tier times, escalation after: created)
MAX_DURATION = timedelta(days=3653)
#: the longest business day (a calendar's ``business_day``): so that n bd <= n days
MAX_BUSINESS_DAY = timedelta(hours=24)
#: the largest percentage (escalation thresholds such as ``resolution: 150%``)
MAX_PERCENT = Fraction(10)
#: the earliest and latest instants the bridge takes in (ticket times, --now, --start, closed
#: dates): far enough from datetime's limits that no arithmetic on them can overflow
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
#: a duration's text is at most this long (longer is refused before any number is converted)
_MAX_TEXT = 64
_US_PER_DAY = 86_400 * 1_000_000
_LIMITS = "at most 10 years: 3653d, 87672h, 5260320m or 3653bd"


class DurationError(ValueError):
    """Text that is not a duration; the message quotes it."""


def instant_problem(dt: datetime) -> str | None:
    """Why an instant cannot be taken in (naive, or outside the range), else ``None``."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return "has no UTC offset (naive timestamps are refused)"
    if not MIN_INSTANT <= dt <= MAX_INSTANT:
        return "is outside the range the bridge computes in (1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z)"
    return None


def date_problem(day: date) -> str | None:
    """Why a calendar date (a ``closed:`` date) is outside the range, else ``None``."""
    if not MIN_INSTANT.date() <= day < MAX_INSTANT.date():
        return f"{day.isoformat()} is outside the range the bridge computes in (1970-01-01 to 2199-12-31)"
    return None


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed duration: fixed time plus a number of business days."""

    fixed: timedelta = timedelta(0)
    business_days: Fraction = Fraction(0)
    text: str = ""

    def resolve(self, business_day: timedelta) -> timedelta:
        """The working time this duration stands for on a calendar with that business day.

        Raises :class:`DurationError` when the result is longer than :data:`MAX_DURATION`
        (only a :class:`Duration` built by hand can be; a parsed one cannot).
        """
        if not self.business_days:
            return self.fixed
        us = Fraction(business_day // timedelta(microseconds=1)) * self.business_days
        total = self.fixed // timedelta(microseconds=1) + round(us)
        if total > MAX_DURATION // timedelta(microseconds=1):
            raise DurationError(f'"{self}" is longer than 10 years of working time')
        return timedelta(microseconds=total)

    def __str__(self) -> str:
        return self.text or format_duration(self.fixed)


def parse_duration(text: object) -> Duration | None:
    """Parse a policy duration; ``none`` gives ``None`` (no target).

    Raises :class:`DurationError` with a message like ``"1x" is not a duration``.
    """
    if isinstance(text, bool) or text is None:
        raise DurationError(f"{text!r} is not a duration (use e.g. 30m, 4h, 1bd or none)")
    if isinstance(text, int | float):
        raise DurationError(f'{text!r} is not a duration: give a unit, e.g. "{text}h" or "{text}m"')
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a duration")
    s = text.strip().lower().replace(" ", "")
    if s == "none":
        return None
    if len(s) > _MAX_TEXT:
        raise DurationError(f'"{text[:_MAX_TEXT]}..." is not a duration (too long)')
    if not s or not _WHOLE.fullmatch(s):
        raise DurationError(
            f'"{text}" is not a duration (use e.g. 30m, 0.5h, 8h30m, 2d, 5bd or none)'
        )
    fixed_us = Fraction(0)
    bd = Fraction(0)
    for number, unit in _PART.findall(s):
        n = Fraction(number)
        if unit == "bd":
            bd += n
        else:
            fixed_us += n * _UNIT_SECONDS[unit] * 1_000_000
    # a business day is at most 24 hours, so this is the longest the duration can resolve to
    if fixed_us + bd * _US_PER_DAY > MAX_DURATION // timedelta(microseconds=1):
        raise DurationError(f'"{text.strip()}" is too long ({_LIMITS})')
    return Duration(
        fixed=timedelta(microseconds=round(fixed_us)), business_days=bd, text=text.strip()
    )


def parse_fixed_duration(text: object) -> timedelta:
    """A duration that must not depend on a calendar (no ``bd``, not ``none``)."""
    d = parse_duration(text)
    if d is None:
        raise DurationError(f'"{text}" must be a duration here, not none')
    if d.business_days:
        raise DurationError(f'"{text}": business days are not allowed here')
    return d.fixed


def parse_percent(text: object) -> Fraction:
    """``100%`` -> 1, ``150%`` -> 3/2; a bare number is taken as a fraction (0.75).

    At most :data:`MAX_PERCENT` (1000%); longer numbers and exponents are refused.
    """
    if isinstance(text, bool):
        raise DurationError(f"{text!r} is not a percentage")
    value: Fraction | None = None
    if isinstance(text, int):
        value = Fraction(min(text, int(MAX_PERCENT) + 1))
    elif isinstance(text, float):
        if not math.isfinite(text):
            raise DurationError(f"{text!r} is not a percentage")
        value = Fraction(str(text)) if abs(text) <= MAX_PERCENT else Fraction(MAX_PERCENT + 1)
    elif isinstance(text, str) and len(text) <= _MAX_TEXT:
        t = text.strip()
        m = _PERCENT.fullmatch(t)
        if m and len(m.group(1)) <= 40:
            value = Fraction(m.group(1)) / 100
        elif _FRACTION.fullmatch(t):
            value = Fraction(t)
    shown: object = text
    if (isinstance(text, int) and abs(text) >= 10**_MAX_TEXT) or (
        isinstance(text, str) and len(text) > _MAX_TEXT
    ):
        shown = "this number" if isinstance(text, int) else text[:_MAX_TEXT] + "..."
    if value is None:
        raise DurationError(f'"{shown}" is not a percentage (e.g. 75% or 0.75)')
    if value > MAX_PERCENT:
        raise DurationError(f'"{shown}" is too large (at most 1000%)')
    return value


def format_duration(td: timedelta) -> str:
    """A compact human form: ``1h30m``, ``45m``, ``42h30m``, ``0s``; negative with a minus.

    No days: these are working times, and "1d18h" would read as business days.
    """
    total = int(td.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rem = divmod(total, 3600)
    minutes, secs = divmod(rem, 60)
    parts = [f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return sign + ("".join(parts) or "0s")
