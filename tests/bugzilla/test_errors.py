"""Error mapping from Bugzilla's ``{"error": true, "code": N}`` answers and transport failures,
and the API key kept out of every message and log line."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses

from tracker_bridge.backend import Diff
from tracker_bridge.errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from tracker_bridge.plugins.bugzilla import BugzillaBackend

from .conftest import KEY_ENV, payload
from .fake import BASE, KEY, FakeBugzilla

ERRORS = payload("errors.json")


def _answer(rsps: responses.RequestsMock, method: str, path: str, error: str) -> None:
    e = ERRORS[error]
    rsps.add(method, f"{BASE}/rest/{path}", json=e["body"], status=e["status"])


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        r.get(f"{BASE}/rest/time", json=payload("time.json"))
        r.get(f"{BASE}/rest/field/bug", json=payload("fields.json"))
        yield r


def _no_key_in(exc: BaseException) -> None:
    assert KEY not in str(exc) and KEY not in repr(exc)


@pytest.mark.parametrize(("error", "exc"), [
    ("bug_not_found", TicketNotFound),
    # not visible to the API user: the contract's "no longer visible"
    ("bug_access_denied", TicketNotFound),
    ("login_required", BackendAuthError),
    ("api_key_not_valid", BackendAuthError),
])
def test_reading_one_bug(rsps: responses.RequestsMock, make_backend: Callable[..., Any],
                         error: str, exc: type[Exception]) -> None:
    """general.rst 'Errors' body; codes and HTTP statuses of WebService/Constants.pm."""
    _answer(rsps, "GET", "bug/36", error)
    with pytest.raises(exc) as info:
        make_backend().fetch_ticket("36")
    _no_key_in(info.value)
    assert "clinic-bz" in str(info.value)
    assert not info.value.retryable


@pytest.mark.parametrize(("error", "exc", "text"), [
    ("unknown_keyword", TicketWriteRejected, "no keyword named"),
    ("illegal_change", TicketWriteRejected, "only the assignee"),
    ("illegal_date", TicketWriteRejected, "not a legal date"),
    ("login_required", BackendAuthError, "You must log in"),
    ("bug_not_found", TicketNotFound, "does not exist"),
])
def test_writing_one_bug(rsps: responses.RequestsMock, make_backend: Callable[..., Any],
                         error: str, exc: type[Exception], text: str) -> None:
    rsps.get(f"{BASE}/rest/bug/36", json={"bugs": [payload("bug_get.json")["bugs"][1]],
                                          "faults": []})
    _answer(rsps, "PUT", "bug/36", error)
    with pytest.raises(exc, match=text) as info:
        make_backend().apply(Diff("36", add_labels=frozenset({"sla-low"})))
    _no_key_in(info.value)
    if exc is TicketWriteRejected:
        assert info.value.key == "36"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("error", "exc"), [
    ("login_required", BackendAuthError),
    ("api_key_not_valid", BackendAuthError),
    ("offset_without_limit", BackendError),
])
def test_polling(rsps: responses.RequestsMock, make_backend: Callable[..., Any], error: str,
                 exc: type[Exception]) -> None:
    _answer(rsps, "GET", "bug", error)
    with pytest.raises(exc) as info:
        make_backend().fetch_changed(None)
    assert type(info.value) is exc
    _no_key_in(info.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_are_retryable(rsps: responses.RequestsMock,
                                     make_backend: Callable[..., Any], status: int) -> None:
    rsps.get(f"{BASE}/rest/bug", body="<html>busy</html>", status=status,
             headers={"Retry-After": "7"})
    with pytest.raises(BackendUnavailable) as info:
        make_backend().fetch_changed(None)
    assert info.value.retryable and info.value.retry_after == 7.0
    assert f"HTTP {status}" in str(info.value)


@pytest.mark.parametrize("failure", [requests.ConnectionError, requests.Timeout])
def test_transport_failures_are_retryable_and_say_nothing_of_the_key(
        rsps: responses.RequestsMock, make_backend: Callable[..., Any],
        failure: type[Exception]) -> None:
    # requests puts the URL, query string and all, into these messages
    rsps.get(f"{BASE}/rest/bug", body=failure(f"HTTPSConnectionPool: Max retries exceeded "
                                              f"with url: /rest/bug?api_key={KEY}"))
    with pytest.raises(BackendUnavailable) as info:
        make_backend().fetch_changed(None)
    _no_key_in(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_page_that_is_not_bugzilla(rsps: responses.RequestsMock,
                                     make_backend: Callable[..., Any]) -> None:
    rsps.get(f"{BASE}/rest/bug", body="<html>login portal</html>", status=200)
    with pytest.raises(BackendError, match="not a JSON object"):
        make_backend().fetch_changed(None)


def test_no_credentials_makes_no_request(monkeypatch: pytest.MonkeyPatch,
                                         make_backend: Callable[..., Any]) -> None:
    with responses.RequestsMock() as r:  # any request would fail: none is registered
        backend = make_backend(credentials=None)
        for call in (lambda: backend.fetch_changed(None), lambda: backend.fetch_ticket("1"),
                     lambda: backend.apply(Diff("1", add_labels=frozenset({"sla-low"}))),
                     lambda: backend.check([])):
            with pytest.raises(BackendAuthError, match="no credentials"):
                call()
        assert len(r.calls) == 0


def test_the_key_is_a_parameter_never_a_header(fake: FakeBugzilla,
                                               backend: BugzillaBackend) -> None:
    """Bugzilla 5.0 reads the key only from api_key; with the X-BUGZILLA-API-KEY header alone
    a 5.2 served requests as the anonymous user (as Bugzilla 5.2 is documented to do)."""
    bid = fake.create_bug("x")
    backend.fetch_ticket(str(bid))
    backend.apply(Diff(str(bid), add_labels=frozenset({"sla-low"})))
    assert fake.calls
    for c in fake.calls:
        assert c.param("api_key") == KEY
        assert not any(h.lower().startswith("x-bugzilla") for h in c.headers)
        assert KEY not in json.dumps(c.body)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"bugs": [], "db_time": "2026-03-02T09:00:00Z"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_urllib3_debug_log_does_not_show_the_key(monkeypatch: pytest.MonkeyPatch,
                                                 make_backend: Callable[..., Any],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """urllib3 logs each request line, query string included, at DEBUG level: a real HTTP
    server on localhost, so that the request really goes through urllib3."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(KEY_ENV, KEY)
        backend = make_backend(url=f"http://127.0.0.1:{server.server_address[1]}")
        with caplog.at_level(logging.DEBUG):
            backend.fetch_changed(None)
    finally:
        server.shutdown()
        server.server_close()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/rest/bug?" in line for line in lines), lines  # the log line exists...
    assert any("api_key=***" in line for line in lines)
    assert not any(KEY in r.getMessage() for r in caplog.records)  # ...without the key
