"""Every HTTP call of the Bugzilla backend (Bugzilla 5.0 REST API, ``/rest/...``, plain ``requests``).

Why not python-bugzilla: its constructor already calls ``/rest/version``, it has no call for
``/rest/time`` (the database clock the cursor needs) nor for the full ``/rest/field/bug``
definitions without its private backend, its only timeout knob is a process-wide environment
variable, and it wraps search results in ``Bug`` objects we would only unwrap. What it would
add (``api_key`` as a parameter, the ``{"error": true}`` body, the key scrubbed from messages)
is done here in a few lines and tested.

Paging
    :meth:`BugzillaClient.scan` lists ``GET /rest/bug`` with the search parameters, ``limit``
    and ``last_change_time=T`` (inclusive, UTC ``Z``), ordered by ``changeddate,bug_id``. Pages
    are keyset restarts: each page starts again at the previous page's newest
    ``last_change_time`` (never a growing offset, which skips a bug when one ahead of it is
    edited during the scan); a page that lies entirely inside one second continues with the
    advanced-search clause ``f1=bug_id&o1=greaterthan&v1=N``.

Dropped connections
    Stock Bugzilla under mod_perl ends the Apache child after each answer (``Apache2::SizeLimit``)
    while the answer says ``Keep-Alive``; the next request on that pooled connection is reset.
    The session is mounted with :class:`.._http.KeepAliveSafeAdapter`: a read is sent again on
    a new connection, a write always goes out on a new connection and is never sent twice.

Errors
    The body ``{"error": true, "code": N, "message": ...}`` decides, not the HTTP status alone:
    codes 300-307 and 410 raise ``BackendAuthError``; on one bug, 100/101 (and 102, "not
    visible to you") raise ``TicketNotFound``, and any other refusal ``TicketWriteRejected``;
    5xx, 429, timeouts, refused and reset connections raise ``BackendUnavailable``. The API key is
    sent as the ``api_key`` parameter (Bugzilla 5.0 reads no header; with only the header
    5.2 silently serves an anonymous user) and is scrubbed from every message and from
    urllib3's debug log, which prints request URLs.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from ...errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from .._http import parse_utc, survive_dropped_connections, transport_error, utc_literal
from .._http import retry_after as _retry_after

#: Bugzilla's error codes that mean "who you are" failed (WebService/Constants.pm, 5.0)
AUTH_CODES = frozenset({300, 301, 302, 303, 305, 306, 307, 410})
#: codes that mean "no such bug" or "not one you may see"
MISSING_CODES = frozenset({100, 101, 102})


class _RedactKey(logging.Filter):
    """Masks ``api_key=...`` in log records: urllib3 logs every request URL at DEBUG level."""

    _re = re.compile(r"((?:Bugzilla_)?api_key=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._scrub(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._scrub(v) for k, v in record.args.items()}
        record.msg = self._scrub(record.msg)
        return True

    def _scrub(self, value: Any) -> Any:
        return self._re.sub(r"\1***", value) if isinstance(value, str) else value


def _install_log_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactKey) for f in target.filters):
        target.addFilter(_RedactKey())


@dataclass
class BugzillaError(Exception):
    """Bugzilla's ``{"error": true}`` answer (or an HTTP failure without one)."""

    status: int
    code: int | None
    message: str
    retry_after: float | None = None


class BugzillaClient:
    """The REST calls the backend makes, with the key as a parameter and errors decoded.

    :meth:`request` raises :class:`BugzillaError` for an answer Bugzilla refused and the
    ``requests`` exceptions for transport failures; the named calls (:meth:`bug`,
    :meth:`put_bug`, ...) turn both into ``tracker_bridge.errors`` types through
    :meth:`errors`, naming the bug a call was about.
    """

    def __init__(self, base_url: str, api_key: str | None, *, rest_path: str = "rest",
                 timeout: float = 30, verify: bool = True,
                 session: requests.Session | None = None, tracker: str = "bugzilla") -> None:
        self.base_url = base_url.rstrip("/")
        self.rest_url = f"{self.base_url}/{rest_path}"
        self._key = api_key
        self.timeout = timeout
        #: the tracker's configured name, for error messages
        self.tracker = tracker
        # stock Bugzilla under mod_perl drops the kept-alive connection after every answer
        self.session = survive_dropped_connections(session or requests.Session())
        self.session.verify = verify
        self.session.headers.update({"Accept": "application/json"})
        _install_log_redaction()

    def scrub(self, text: str) -> str:
        """``text`` without the API key (a message may quote a URL)."""
        return text.replace(self._key, "***") if self._key else text

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        query: dict[str, Any] = dict(params or {})
        if self._key:
            # Bugzilla 5.0 reads the key only from a parameter; 5.1+ also from a header, but
            # a 5.2 seen here answered header-only requests as the anonymous user
            query["api_key"] = self._key
        response = self.session.request(method, f"{self.rest_url}/{path.lstrip('/')}",
                                        params=query, json=body, timeout=self.timeout)
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("error"):
            raise BugzillaError(response.status_code, _int(data.get("code")),
                                self.scrub(str(data.get("message") or "").strip()),
                                _retry_after(response.headers))
        if response.status_code >= 400 or not isinstance(data, dict):
            what = f"HTTP {response.status_code}" if response.status_code >= 400 else \
                f"HTTP {response.status_code} with a body that is not a JSON object"
            raise BugzillaError(response.status_code, None, what, _retry_after(response.headers))
        return data

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params)

    def put(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, None, body)

    def close(self) -> None:
        self.session.close()

    # -- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, bid: int | None, doing: str, write: bool = False) -> Iterator[None]:
        """Turn a Bugzilla refusal or a transport failure into tracker_bridge.errors."""
        name = self.tracker
        try:
            yield
        except BugzillaError as e:
            what = f"{doing}: Bugzilla error {e.code}: {e.message}" if e.code is not None \
                else f"{doing}: {e.message}"
            what = self.scrub(what)
            if e.status == 429 or e.status >= 500:
                raise BackendUnavailable(name, what, retry_after=e.retry_after) from None
            if e.code in AUTH_CODES or (e.status == 401 and bid is None):
                raise BackendAuthError(name, f"{what} (check the API key and that the "
                                       "user may use the REST API)") from None
            if bid is not None and e.code in MISSING_CODES:
                raise TicketNotFound(name, str(bid), e.message or "no such bug") from None
            if bid is not None and e.code is None and e.status == 404:
                raise TicketNotFound(name, str(bid), "no such bug (HTTP 404)") from None
            if bid is not None and write:
                raise TicketWriteRejected(name, str(bid), self.scrub(
                    f"Bugzilla refused the write (error {e.code}): {e.message}")) from None
            raise BackendError(name, what) from None
        except requests.RequestException as e:
            raise transport_error(name, doing, e, timeout=self.timeout,
                                  base_url=self.base_url) from None

    # -- the calls -------------------------------------------------------------------------

    def db_time(self) -> datetime:
        """The database clock (``db_time``): the clock that stamps ``last_change_time``."""
        with self.errors(None, "reading the server time (/rest/time)"):
            return parse_utc(self.get("time")["db_time"])

    def parameters(self) -> dict[str, Any]:
        with self.errors(None, "reading /rest/parameters"):
            return dict(self.get("parameters").get("parameters") or {})

    def products(self, names: list[str]) -> list[dict[str, Any]]:
        with self.errors(None, "reading /rest/product"):
            return list(self.get("product", names=names,
                                 include_fields="name,components.name").get("products") or ())

    def field_defs(self) -> dict[str, dict[str, Any]]:
        """``/rest/field/bug`` by internal name."""
        with self.errors(None, "reading the bug fields (/rest/field/bug)"):
            data = self.get("field/bug")
        return {str(f["name"]): f for f in data.get("fields") or ()}

    def search(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.errors(None, "searching bugs"):
            return list(self.get("bug", **params).get("bugs") or ())

    def bug(self, bid: int, include_fields: str) -> dict[str, Any]:
        with self.errors(bid, f"reading bug {bid}"):
            bugs = self.get(f"bug/{bid}", include_fields=include_fields)
        found = [b for b in bugs.get("bugs") or () if int(b.get("id", -1)) == bid]
        if not found:
            raise TicketNotFound(self.tracker, str(bid))
        return found[0]

    def history(self, bid: int) -> list[dict[str, Any]]:
        with self.errors(bid, f"reading the history of bug {bid}"):
            hist = self.get(f"bug/{bid}/history")
        history: list[dict[str, Any]] = []
        for b in hist.get("bugs") or ():
            if int(b.get("id", bid)) == bid:
                history.extend(b.get("history") or ())
        return history

    def comments(self, bid: int) -> list[dict[str, Any]]:
        with self.errors(bid, f"reading the comments of bug {bid}"):
            data = self.get(f"bug/{bid}/comment")
        entry = (data.get("bugs") or {}).get(str(bid)) or {}
        return list(entry.get("comments") or ())

    def put_bug(self, bid: int, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        """``Bug.update`` of one bug (``ids`` added); a refusal is ``TicketWriteRejected``."""
        with self.errors(bid, f"writing bug {key}", write=True):
            return self.put(f"bug/{bid}", {"ids": [bid], **body})

    # -- paging ----------------------------------------------------------------------------

    def scan(self, base: Mapping[str, Any], lower: datetime,
             limit: int) -> Iterator[dict[str, Any]]:
        """Every bug with ``last_change_time >= lower``, by keyset on (time, id)."""
        t = lower
        while True:
            page = self.search(dict(base, last_change_time=utc_literal(t)))
            yield from page
            if len(page) < limit:
                return
            first = parse_utc(page[0]["last_change_time"])
            last = parse_utc(page[-1]["last_change_time"])
            if first == last:
                yield from self._scan_second(base, last, int(page[-1]["id"]), limit)
                t = last + timedelta(seconds=1)
            elif last <= t:
                # cannot happen when Bugzilla honours the order; never loop forever on it
                raise BackendError(self.tracker, "Bugzilla did not sort bugs by "
                                   "last_change_time; cannot page safely")
            else:
                t = last  # restart inclusive: bugs sharing `last` are listed again (deduped)

    def _scan_second(self, base: Mapping[str, Any], second: datetime, after_id: int,
                     limit: int) -> Iterator[dict[str, Any]]:
        """The bugs stamped exactly ``second`` with an id above ``after_id``, by id keyset."""
        while True:
            page = self.search(dict(base, last_change_time=utc_literal(second),
                                    f1="bug_id", o1="greaterthan", v1=after_id))
            same = [b for b in page if parse_utc(b["last_change_time"]) == second]
            if any(int(b["id"]) <= after_id for b in page):
                raise BackendError(self.tracker, "Bugzilla ignored the bug_id search "
                                   "clause (f1/o1/v1); cannot page through one second")
            yield from same
            if len(page) < limit or len(same) < len(page):
                return
            after_id = int(page[-1]["id"])


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
