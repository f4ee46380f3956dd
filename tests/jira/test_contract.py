"""The JIRA backend passes the contract every backend must pass, against the stateful fake.

The fake reads JQL dates in the searching user's zone (America/New_York here) and pages
like an offset, so the contract's incremental-fetch checks only pass if the backend's
literal, overlap and cursor are right. The same suite runs in Data Center mode (REST v2,
startAt paging, embedded changelog, wiki-text comments, a Bearer token), whose changelog
items carry no ``fieldId`` as on older Data Center versions: the history-order check then
finds the Impact change only by the field's display name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import responses

from tracker_bridge.backend import Backend
from tracker_bridge.testing import BackendContract

from .fakejira import FakeJira


class JiraPerson:
    """Acts on the fake JIRA as a person would (not through the backend)."""

    def __init__(self, fake: FakeJira) -> None:
        self.fake = fake

    def create_ticket(self, subject: str) -> str:
        return self.fake.create(subject)

    def add_comment(self, key: str, text: str) -> None:
        self.fake.comment(key, text)

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self.fake.set_labels(key, labels)

    def change_field(self, key: str) -> str:
        """Change the mapped custom field Impact (``fields: {impact: "cf:Impact"}``)."""
        now = (self.fake.issues[key]["fields"].get("customfield_10052") or {}).get("value")
        value = "Single user" if now == "Software wide" else "Software wide"
        self.fake.set_field(key, "customfield_10052", {"value": value, "id": "10021"})
        return "impact"


class TestJiraCloudContract(BackendContract):
    @pytest.fixture
    def backend(self, fake: FakeJira, make_backend: Callable[..., Any]) -> Backend:
        return make_backend()  # type: ignore[no-any-return]

    @pytest.fixture
    def contract_tracker(self, fake: FakeJira) -> JiraPerson:
        return JiraPerson(fake)


class TestJiraDataCenterContract(BackendContract):
    @pytest.fixture
    def dc(self, rsps: responses.RequestsMock) -> FakeJira:
        return FakeJira(cloud=False, user_zone="Europe/Berlin", server_zone="Europe/Berlin",
                        field_ids=False).install(rsps)

    @pytest.fixture
    def backend(self, dc: FakeJira, make_backend: Callable[..., Any]) -> Backend:
        # no email: the token goes as a Bearer PAT; deployment found through serverInfo
        return make_backend(options={"email": None, "deployment": "auto"})  # type: ignore[no-any-return]

    @pytest.fixture
    def contract_tracker(self, dc: FakeJira) -> JiraPerson:
        return JiraPerson(dc)
