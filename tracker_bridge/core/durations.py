"""Durations as policies write them (SLA-SEMANTICS.md section 2).

``30m``, ``0.5h``, ``4h``, ``8h30m``, ``90s``, ``2d`` (24-hour days of working time),
``1bd``/``5bd`` (business days: n x the calendar's ``business_day``) and ``none``.
A duration that names business days can only be turned into time once its calendar is
known, so parsing yields a :class:`Duration` that is resolved against a calendar later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)(bd|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:bd|d|h|m|s))+")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


class DurationError(ValueError):
    """Text that is not a duration; the message quotes it."""


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed duration: fixed time plus a number of business days."""

    fixed: timedelta = timedelta(0)
    business_days: Fraction = Fraction(0)
    text: str = ""

    def resolve(self, business_day: timedelta) -> timedelta:
        """The working time this duration stands for on a calendar with that business day."""
        if not self.business_days:
            return self.fixed
        us = Fraction(business_day // timedelta(microseconds=1)) * self.business_days
        return self.fixed + timedelta(microseconds=round(us))

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
    """``100%`` -> 1, ``150%`` -> 3/2; a bare number is taken as a fraction (0.75)."""
    if isinstance(text, bool):
        raise DurationError(f"{text!r} is not a percentage")
    if isinstance(text, int | float):
        return Fraction(str(text))
    if isinstance(text, str):
        m = _PERCENT.fullmatch(text.strip())
        if m:
            return Fraction(m.group(1)) / 100
        try:
            return Fraction(text.strip())
        except ValueError:
            pass
    raise DurationError(f'"{text}" is not a percentage (e.g. 75% or 0.75)')


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
