"""HTTP failures become tracker_bridge.errors types; the token never appears in a message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from tracker_bridge.backend import Diff
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from tracker_bridge.plugins.jira import JiraBackend

from .conftest import TOKEN_ENV, payload
from .fakejira import BASE, TOKEN, FakeJira

API = f"{BASE}/rest/api/3"


def _no_secret(e: BaseException) -> None:
    assert TOKEN not in str(e)
    assert TOKEN not in repr(e.args)


def test_401_is_an_auth_error(rsps: responses.RequestsMock,
                              make_backend: Callable[..., JiraBackend]) -> None:
    rsps.get(f"{API}/myself", status=401, json=payload("error_401.json"))
    with pytest.raises(BackendAuthError, match="refused the credentials") as info:
        make_backend().fetch_changed(None)
    assert not info.value.retryable
    _no_secret(info.value)


def test_a_wrong_token_against_the_fake(fake: FakeJira, make_backend: Callable[..., JiraBackend],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    b = make_backend()
    b.session.auth = ("sync-bot@example.com", "wrong")
    with pytest.raises(BackendAuthError) as info:
        b.fetch_ticket("SD-1")
    assert "wrong" not in str(info.value)


def test_403_names_the_denial_reason(rsps: responses.RequestsMock,
                                     make_backend: Callable[..., JiraBackend]) -> None:
    rsps.get(f"{API}/myself", status=403,
             headers={"X-Authentication-Denied-Reason": "CAPTCHA_CHALLENGE; login-url=x"})
    with pytest.raises(BackendAuthError, match="CAPTCHA_CHALLENGE"):
        make_backend().fetch_changed(None)


def test_403_on_one_issue_is_that_issues_problem(
        fake: FakeJira, make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("secret issue")
    b = make_backend()
    fake.overrides[("PUT", f"/rest/api/3/issue/{key}")] = (
        403, {}, {"errorMessages": ["You do not have permission to edit issues in this "
                                    "project."], "errors": {}})
    with pytest.raises(TicketWriteRejected, match="may not change this issue"):
        b.apply(Diff(key, add_labels=frozenset({"sla-high"})))
    fake.overrides[("GET", f"/rest/api/3/issue/{key}")] = (403, {}, {"errorMessages": []})
    with pytest.raises(TicketNotFound, match="not visible"):
        b.fetch_ticket(key)
    # a denied login is the credentials, whatever the request
    fake.overrides[("GET", f"/rest/api/3/issue/{key}")] = (
        403, {"X-Authentication-Denied-Reason": "CAPTCHA_CHALLENGE"}, {})
    with pytest.raises(BackendAuthError, match="CAPTCHA_CHALLENGE"):
        b.fetch_ticket(key)


def test_missing_credentials(rsps: responses.RequestsMock,
                             make_backend: Callable[..., JiraBackend]) -> None:
    with pytest.raises(BackendAuthError, match="no credentials"):
        make_backend(credentials=None).fetch_changed(None)
    assert not rsps.calls


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (429, {"Retry-After": "17", "RateLimit-Reason": "jira-burst-based"}, 17.0),
    (503, {"Retry-After": "5"}, 5.0),
    (500, {}, None),
    (502, {}, None),
])
def test_rate_limit_and_server_errors_are_retryable(
        fake: FakeJira, make_backend: Callable[..., JiraBackend], status: int,
        headers: dict[str, str], retry_after: float | None) -> None:
    b = make_backend()
    key = fake.create("busy")
    b.fetch_ticket(key)
    fake.fail_with = (status, headers, payload("error_429.json"))
    with pytest.raises(BackendUnavailable) as info:
        b.fetch_changed(None)
    assert info.value.retryable
    assert info.value.retry_after == retry_after
    assert f"HTTP {status}" in str(info.value)


def test_429_without_retry_after_uses_the_reset_header(
        fake: FakeJira, make_backend: Callable[..., JiraBackend]) -> None:
    b = make_backend()
    reset = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%MZ")
    fake.fail_with = (429, {"X-RateLimit-Reset": reset}, {})
    with pytest.raises(BackendUnavailable) as info:
        b.fetch_changed(None)
    assert info.value.retry_after is not None and 55 < info.value.retry_after <= 120


@pytest.mark.parametrize("exc", [requests.ConnectionError("refused"),
                                 requests.ReadTimeout("slow")])
def test_connection_failures_are_retryable(rsps: responses.RequestsMock,
                                           make_backend: Callable[..., JiraBackend],
                                           exc: Exception) -> None:
    rsps.get(f"{API}/myself", body=exc)
    with pytest.raises(BackendUnavailable) as info:
        make_backend().fetch_changed(None)
    _no_secret(info.value)


def test_a_login_page_instead_of_json(rsps: responses.RequestsMock,
                                      make_backend: Callable[..., JiraBackend]) -> None:
    rsps.get(f"{API}/myself", body="<html>Log in</html>", content_type="text/html")
    with pytest.raises(BackendUnavailable, match="not JSON"):
        make_backend().fetch_changed(None)


def test_missing_issue(fake: FakeJira, make_backend: Callable[..., JiraBackend]) -> None:
    b = make_backend()
    with pytest.raises(TicketNotFound) as info:
        b.fetch_ticket("SD-999")
    assert info.value.key == "SD-999"
    with pytest.raises(TicketNotFound):
        b.apply(Diff("SD-999", notes=(Note("kb", "x"),)))


def test_a_refused_edit_is_rejected_for_that_issue_only(
        fake: FakeJira, make_backend: Callable[..., JiraBackend]) -> None:
    fake.editable.discard("customfield_10050")  # not on the edit screen
    key = fake.create("refused")
    with pytest.raises(TicketWriteRejected, match="not on the appropriate screen") as info:
        make_backend().apply(Diff(key, set_fields={"response_due": "2026-03-02T17:30:00+00:00"}))
    assert info.value.key == key and not info.value.retryable


def test_a_label_with_a_space_is_rejected(fake: FakeJira,
                                          make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("space")
    with pytest.raises(TicketWriteRejected, match="contains spaces"):
        make_backend().apply(Diff(key, add_labels=frozenset({"sla bad"})))


@pytest.mark.parametrize(("status", "text"), [(409, "conflicting update"),
                                               (422, "HTTP 422"), (400, "HTTP 400")])
def test_write_statuses(fake: FakeJira, rsps: responses.RequestsMock,
                        make_backend: Callable[..., JiraBackend], status: int, text: str) -> None:
    key = fake.create("conflict")
    fake.overrides[("PUT", f"/rest/api/3/issue/{key}")] = (status, {},
                                                           payload("error_400_edit.json"))
    with pytest.raises(TicketWriteRejected, match=text) as info:
        make_backend().apply(Diff(key, add_labels=frozenset({"sla-high"})))
    assert "customfield_10050" in str(info.value)  # JIRA's own reason is kept


def test_comment_limit_is_rejected(fake: FakeJira, rsps: responses.RequestsMock,
                                   make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("full")
    fake.overrides[("POST", f"/rest/api/3/issue/{key}/comment")] = (
        413, {}, {"errorMessages": ["Issue comment limit exceeded"], "errors": {}})
    with pytest.raises(TicketWriteRejected, match="comment limit"):
        make_backend().apply(Diff(key, notes=(Note("kb", "x"),)))


def test_a_bad_search_names_jira_reason(fake: FakeJira,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    with pytest.raises(BackendError, match="'NOPE' does not exist") as info:
        make_backend(projects=["NOPE"]).fetch_changed(None)
    assert not isinstance(info.value, TicketWriteRejected | TicketNotFound)


def test_no_time_zone_refuses_to_poll(fake: FakeJira,
                                      make_backend: Callable[..., JiraBackend]) -> None:
    fake.user_zone = None
    b = make_backend()
    with pytest.raises(BackendError, match="time zone"):
        b.fetch_changed(None)
    problems = b.check([])
    assert [p.where for p in problems] == ["account"]


def test_secret_comes_from_the_environment_only(fake: FakeJira,
                                                monkeypatch: pytest.MonkeyPatch,
                                                make_backend: Callable[..., JiraBackend]) -> None:
    b = make_backend()
    monkeypatch.delenv(TOKEN_ENV)
    # resolved once, when the config was read; never logged
    assert b.fetch_changed(None).cursor is None
    assert TOKEN not in repr(b.tracker)
