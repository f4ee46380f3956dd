"""Small helpers every HTTP tracker backend needs, in one place.

Private to the built-in plugins (third-party plugins should not rely on it): reading a
server's ``Retry-After`` and parsing the UTC timestamps that Redmine and Bugzilla send.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date), else JIRA's
    ``X-RateLimit-Reset`` (ISO 8601); ``None`` when the server said nothing usable."""
    now = now or datetime.now(UTC)
    raw = headers.get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, (parsedate_to_datetime(raw) - now).total_seconds())
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
            if when.tzinfo is not None:
                return max(0.0, (when - now).total_seconds())
    return None


def parse_utc(text: str) -> datetime:
    """A UTC API timestamp (``2024-05-01T10:03:11Z``) as an aware UTC datetime."""
    dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def utc_literal(dt: datetime) -> str:
    """UTC with ``Z``, to the second: the only form Redmine's filters accept reliably, and
    the one Bugzilla's docs ask for."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
