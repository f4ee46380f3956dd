"""HTTP failures a real test Redmine cannot produce on demand (429, 503, 422 on a write...),
mapped to the bridge's error types. HTTP is faked with `responses`; everything else is real."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from tracker_bridge.backend import Diff
from tracker_bridge.config import parse_config
from tracker_bridge.errors import (
    BackendAuthError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from tracker_bridge.plugins.redmine import RedmineBackend

from .conftest import FIELDS, POLICY, WRITE

URL = "http://redmine.invalid"
KEY = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> RedmineBackend:
    monkeypatch.setenv("TB_FAKE_KEY", KEY)
    cfg = parse_config({"policy": str(POLICY), "trackers": [{
        "name": "fake", "backend": "redmine", "url": URL, "credentials": {"env": "TB_FAKE_KEY"},
        "projects": [], "fields": FIELDS, "write": WRITE}]}, load_policy=False)
    return RedmineBackend.from_config(cfg.trackers[0])


def ok_user(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{URL}/users/current.json", json={"user": {"id": 1, "api_key": KEY}})


def issue(iid: int) -> dict[str, Any]:
    return {"issue": {"id": iid, "project": {"id": 1}, "tracker": {"id": 1},
                      "status": {"id": 1, "name": "New"}, "created_on": "2026-03-02T10:00:00Z",
                      "updated_on": "2026-03-02T10:00:00Z", "subject": "s",
                      "custom_fields": [{"id": 7, "name": "SLA labels", "multiple": True,
                                         "value": ["customer-vip"]}], "journals": []}}


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (429, {"Retry-After": "7"}, 7.0),
    (503, {"Retry-After": "120"}, 120.0),
    (502, {}, None),
    (500, {}, None),
])
def test_overload_and_server_errors_are_unavailable(backend: RedmineBackend, status: int,
                                                    headers: dict[str, str],
                                                    retry_after: float | None) -> None:
    with responses.RequestsMock() as rsps:
        ok_user(rsps)
        rsps.get(f"{URL}/issues.json", status=status, headers=headers, body="busy")
        with pytest.raises(BackendUnavailable) as e:
            backend.fetch_changed(None)
    assert e.value.retryable and e.value.retry_after == retry_after
    assert KEY not in str(e.value)


def test_forbidden_is_an_auth_error(backend: RedmineBackend) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{URL}/users/current.json", status=403)
        with pytest.raises(BackendAuthError):
            backend.fetch_changed(None)


def test_forbidden_on_one_issue_concerns_that_issue_only(backend: RedmineBackend) -> None:
    # a private issue must not suspend the whole tracker as a credentials failure would
    with responses.RequestsMock() as rsps:
        ok_user(rsps)
        rsps.get(f"{URL}/issues/9.json", status=403)
        with pytest.raises(TicketNotFound) as e:
            backend.fetch_ticket("9")
    assert e.value.key == "9" and "403" in str(e.value)


def test_forbidden_write_is_a_rejected_write(backend: RedmineBackend) -> None:
    with responses.RequestsMock() as rsps:
        ok_user(rsps)
        rsps.get(f"{URL}/custom_fields.json", status=403)
        rsps.get(f"{URL}/issues/42.json", json=issue(42))
        rsps.put(f"{URL}/issues/42.json", status=403)
        with pytest.raises(TicketWriteRejected) as e:
            backend.apply(Diff("42", add_labels=frozenset({"sla-high"})))
    assert e.value.key == "42" and not e.value.retryable


def test_timeout_is_unavailable(backend: RedmineBackend) -> None:
    import requests

    with responses.RequestsMock() as rsps:
        rsps.get(f"{URL}/users/current.json", body=requests.Timeout("read timed out"))
        with pytest.raises(BackendUnavailable) as e:
            backend.fetch_ticket("1")
    assert "timed out" in str(e.value)


def test_write_refused_names_the_ticket(backend: RedmineBackend) -> None:
    with responses.RequestsMock() as rsps:
        ok_user(rsps)
        rsps.get(f"{URL}/custom_fields.json", status=403)
        rsps.get(f"{URL}/issues/42.json", json=issue(42))
        rsps.put(f"{URL}/issues/42.json", status=422,
                 json={"errors": ["SLA labels is not included in the list"]})
        with pytest.raises(TicketWriteRejected) as e:
            backend.apply(Diff("42", add_labels=frozenset({"sla-high"})))
        put = next(c.request for c in rsps.calls if c.request.method == "PUT")
        # the write keeps the person's value next to the bridge's
        sent = json.loads(put.body)["issue"]["custom_fields"]
        assert sent == [{"id": 7, "value": ["customer-vip", "sla-high"]}]
    assert e.value.key == "42" and "not included in the list" in str(e.value)


def test_missing_issue_is_not_found(backend: RedmineBackend) -> None:
    with responses.RequestsMock() as rsps:
        ok_user(rsps)
        rsps.get(f"{URL}/issues/5.json", status=404)
        with pytest.raises(TicketNotFound):
            backend.fetch_ticket("5")
