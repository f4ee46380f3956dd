"""Small helpers every HTTP tracker backend needs, in one place.

Private to the built-in plugins (third-party plugins should not rely on it): reading a
server's ``Retry-After``, parsing the UTC timestamps that Redmine and Bugzilla send, naming a
transport failure, and surviving a server that drops kept-alive connections
(:func:`survive_dropped_connections`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import BackendError, BackendUnavailable

log = logging.getLogger(__name__)

#: methods a server handles the same however often they arrive (RFC 9110, 9.2.2), so one may
#: be sent again when its connection was dropped before an answer came
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    if isinstance(exc, requests.Timeout):
        return BackendUnavailable(tracker, f"{doing}: timed out after {timeout:g} s")
    if isinstance(exc, requests.ConnectionError):
        if dropped_connection(exc):
            return BackendUnavailable(
                tracker, f"{doing}: connection reset by {base_url} (the server closed the "
                "connection before it answered)")
        return BackendUnavailable(tracker, f"{doing}: cannot connect to {base_url}")
    return BackendError(tracker, f"{doing}: {type(exc).__name__}")


# -- dropped kept-alive connections ----------------------------------------------------------


def dropped_connection(exc: BaseException) -> bool:
    """True when ``exc`` (a ``requests``/urllib3 error, or what it wraps) says that an open
    connection was closed or reset by the other end: ``ConnectionResetError`` (errno 104),
    ``BrokenPipeError``, ``ConnectionAbortedError``, or ``http.client.RemoteDisconnected`` (the
    server closed it without a word). A refused connection or a timeout is not one."""
    import http.client

    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                          http.client.RemoteDisconnected)):
            return True
        if isinstance(e, ConnectionRefusedError):
            continue
        # requests wraps urllib3's MaxRetryError (.reason) or ProtocolError (args[1])
        todo.extend([e.__cause__, e.__context__, getattr(e, "reason", None), *e.args])
    return False


class DroppedConnectionRetry(Retry):
    """urllib3's ``Retry`` that sends an idempotent request again, on a new connection, when
    the pooled one was dropped before the answer came, and behaves exactly like ``requests``'
    default (no retry at all) for every other failure."""

    def increment(self, method: str | None = None, url: str | None = None,
                  *args: Any, **kwargs: Any) -> Retry:
        error = kwargs.get("error", args[1] if len(args) > 1 else None)
        if error is None or not dropped_connection(error):
            return _NO_RETRY.increment(method, url, *args, **kwargs)
        log.info("%s %s: the server dropped the kept-alive connection; %s", method,
                 _path_only(url), "sending it again on a new connection"
                 if (method or "").upper() in IDEMPOTENT_METHODS
                 else "not sent again (not idempotent)")
        return super().increment(method, url, *args, **kwargs)


#: what requests' HTTPAdapter does when no retries are configured
_NO_RETRY = Retry(0, read=False)


def _path_only(url: str | None) -> str:
    """A request URL without its query (which may carry an API key)."""
    return (url or "").split("?", 1)[0]


class KeepAliveSafeAdapter(HTTPAdapter):
    """A ``requests`` adapter for servers that may drop a kept-alive connection after any
    answer (stock Bugzilla under mod_perl does so after every one: ``Apache2::SizeLimit`` ends
    the child while the answer says ``Keep-Alive``).

    - A read (``GET``, ``HEAD``, ``OPTIONS``) whose pooled connection turns out dropped (reset,
      closed) before an answer is sent again on a new connection, up to ``retries`` times.
    - A write (any other method) is never sent twice. It goes out on a new connection
      instead of a pooled one: a pooled connection the server has already dropped would
      swallow it, and whether the server saw it could not be known. On a new connection it
      either reaches the server or fails to connect. A write that still fails is reported,
      and the bridge re-reads the ticket before it writes again (its usual retry).
    - Timeouts, refused connections and every other failure behave as without this adapter.
    """

    def __init__(self, retries: int = 2, **kwargs: Any) -> None:
        retry = DroppedConnectionRetry(total=retries, connect=0, read=retries, redirect=0,
                                       status=0, other=0, allowed_methods=IDEMPOTENT_METHODS,
                                       raise_on_status=False, raise_on_redirect=False,
                                       respect_retry_after_header=False)
        super().__init__(max_retries=retry, **kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        if (request.method or "GET").upper() not in IDEMPOTENT_METHODS:
            # close the idle pooled connections: the write opens a new one
            self.poolmanager.clear()
        return super().send(request, *args, **kwargs)


class _QuietRetryWarning(logging.Filter):
    """Drops urllib3's WARNING about our own retry of a dropped connection (we log it at
    INFO): against stock Bugzilla it would come with every other request."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.args
                    and isinstance(record.args, tuple)
                    and isinstance(record.args[0], DroppedConnectionRetry))


def survive_dropped_connections(session: requests.Session, retries: int = 2
                                ) -> requests.Session:
    """Mount :class:`KeepAliveSafeAdapter` on ``session`` for ``http://`` and ``https://``
    (keeping the session's other settings) and return it."""
    pool_log = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _QuietRetryWarning) for f in pool_log.filters):
        pool_log.addFilter(_QuietRetryWarning())
    for prefix in ("http://", "https://"):
        session.mount(prefix, KeepAliveSafeAdapter(retries=retries))
    return session


def base_url(tracker: Any, product: str) -> str:
    """The tracker's configured ``url`` without a trailing slash; a tracker without one is
    a :class:`BackendError` naming the product (``no url: configured for this Redmine
    tracker``)."""
    if not tracker.url:
        raise BackendError(tracker.name, f"no url: configured for this {product} tracker")
    return str(tracker.url).rstrip("/")
