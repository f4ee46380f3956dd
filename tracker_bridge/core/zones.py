"""Checking that a configured value names an IANA time zone.

Shared by the config file (``write.timezone``) and backend options (Bugzilla's
``server_timezone``), so that plugins need not import the config module for it.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def iana_zone(v: str, example: str = "Europe/London") -> str:
    """A config value that must name an IANA time zone (a pydantic field validator's body).

    :return: ``v`` unchanged
    :raises ValueError: naming the value and giving ``example`` as a valid one
    """
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{v!r} is not an IANA time zone (e.g. UTC, {example})"
        raise ValueError(msg) from None
    return v
