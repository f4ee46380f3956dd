"""``check``: fields and statuses exist and fit; labels need no admin action on JIRA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import responses

from tracker_bridge.plugins.jira import JiraBackend

from .conftest import payload
from .fakejira import BASE

API = f"{BASE}/rest/api/3"
LABELS = ["sla-critical", "sla-high", "sla-at-risk-response", "sla-level-support-manager"]


@pytest.fixture
def site(rsps: responses.RequestsMock) -> responses.RequestsMock:
    """A JIRA answering with the example payloads: fields, statuses, one project SD."""
    rsps.get(f"{API}/myself", json=payload("myself_new_york.json"))
    rsps.get(f"{API}/field", json=payload("field.json"))
    rsps.get(f"{API}/status", json=payload("status.json"))
    rsps.get(f"{API}/project/SD", json={"id": "10000", "key": "SD", "name": "Service desk"})
    rsps.get(f"{API}/project/NOPE", status=404,
             json={"errorMessages": ["No project could be found with key 'NOPE'."]})
    return rsps


def _problems(b: JiraBackend, labels: list[str] = LABELS) -> dict[str, str]:
    return {p.where: p.message for p in b.check(labels)}


def test_a_correct_setup_has_no_problem(site: responses.RequestsMock,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    assert make_backend(fields={"component": "components"}).check(LABELS) == []


def test_labels_need_no_admin_action(site: responses.RequestsMock,
                                     make_backend: Callable[..., JiraBackend]) -> None:
    # any label is accepted on first use: nothing for an admin to add, whatever the policy
    problems = make_backend().check([*LABELS, "sla-never-seen-before"])
    assert problems == []
    assert all(not p.missing_values for p in problems)


def test_labels_jira_would_refuse(site: responses.RequestsMock,
                                  make_backend: Callable[..., JiraBackend]) -> None:
    got = _problems(make_backend(), [*LABELS, "sla at risk", "sla-" + "x" * 260])
    assert "'sla at risk'" in got["write.labels"]
    assert "spaces" in got["write.labels"]


@pytest.mark.parametrize(("over", "where", "text"), [
    ({"fields": {"tier": "cf:Tier"}}, "fields.tier", "2 custom fields are named 'Tier'"),
    ({"fields": {"tier": "cf:Level"}}, "fields.tier", "no custom field named 'Level'"),
    ({"fields": {"x": "assignee_typo"}}, "fields.x", "no field with id 'assignee_typo'"),
    ({"write": {"response_due": "cf:Notes for agents"}}, "write.response_due",
     "cannot hold a deadline"),
    ({"write": {"resolution_due": "priority"}}, "write.resolution_due",
     "cannot hold a deadline"),
    ({"write": {"labels": "cf:Impact"}}, "write.labels", "not a labels field"),
    ({"write": {"notes": "journal"}}, "write.notes", "only be written as 'comment'"),
    ({"statuses": {"waiting": ["Pending"]}}, "statuses.waiting", "no status 'Pending'"),
    ({"projects": ["SD", "NOPE"]}, "projects", "'NOPE' does not exist"),
])
def test_misconfigurations_are_named(site: responses.RequestsMock,
                                     make_backend: Callable[..., JiraBackend],
                                     over: dict[str, Any], where: str, text: str) -> None:
    got = _problems(make_backend(**over))
    assert list(got) == [where]
    assert text in got[where]


def test_fitting_alternatives_are_accepted(site: responses.RequestsMock,
                                           make_backend: Callable[..., JiraBackend]) -> None:
    b = make_backend(fields={"tier": "customfield_10056"},  # an id resolves a duplicate name
                     write={"labels": "cf:SLA tags", "response_due": "cf:SLA due (picker)"})
    assert b.check(LABELS) == []
