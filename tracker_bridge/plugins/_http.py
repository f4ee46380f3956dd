"""Small helpers every HTTP tracker backend needs, in one place.

Private to the built-in plugins (third-party plugins should not rely on it): reading a
server's ``Retry-After`` and parsing the UTC timestamps that Redmine and Bugzilla send.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import BackendError, BackendUnavailable

log = logging.getLogger(__name__)


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


def read_seen_cursor(
    cursor: str | None,
    version: int,
    *,
    what: str,
    parse_time: Callable[[str], datetime] = parse_utc,
    key: Callable[[Any], Any] = int,
) -> tuple[datetime | None, dict[Any, str]]:
    """Read a ``{"v", "since", "seen"}`` cursor: the watermark and the ``(id, timestamp)``
    pairs already returned. An unreadable cursor (garbage, another version) means "read
    everything again": logged, never fatal, because re-reading loses nothing.
    """
    if not cursor:
        return None, {}
    try:
        data = json.loads(cursor)
        if data.get("v") != version:
            raise ValueError("unknown cursor version")
        since = parse_time(data["since"]) if data.get("since") else None
        seen = {key(k): str(v) for k, v in (data.get("seen") or {}).items()}
        for v in seen.values():
            parse_time(v)
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("unreadable %s cursor %r: reading everything again", what, cursor[:80])
        return None, {}
    return since, seen


class HttpOptions(BaseModel):
    """The ``options:`` every HTTP backend has; each backend's model adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(30, gt=0, le=600, description="HTTP timeout per request")
    verify_tls: bool = Field(True, description="verify the server's TLS certificate")


def transport_error(tracker: str, doing: str, exc: Exception, *, timeout: float,
                    base_url: str) -> BackendError:
    """The bridge's error for a request that got no answer: a timeout and a refused or
    dropped connection are worth retrying (``BackendUnavailable``), anything else from
    ``requests`` is named by its type. The message names no more than the base URL."""
    import requests

    if isinstance(exc, requests.Timeout):
        return BackendUnavailable(tracker, f"{doing}: timed out after {timeout:g} s")
    if isinstance(exc, requests.ConnectionError):
        return BackendUnavailable(tracker, f"{doing}: cannot connect to {base_url}")
    return BackendError(tracker, f"{doing}: {type(exc).__name__}")


def base_url(tracker: Any, product: str) -> str:
    """The tracker's configured ``url`` without a trailing slash; a tracker without one is
    a :class:`BackendError` naming the product (``no url: configured for this Redmine
    tracker``)."""
    if not tracker.url:
        raise BackendError(tracker.name, f"no url: configured for this {product} tracker")
    return str(tracker.url).rstrip("/")
