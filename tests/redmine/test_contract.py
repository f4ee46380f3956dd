"""The Redmine backend passes the contract every backend must pass (tracker_bridge.testing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tracker_bridge.backend import Backend
from tracker_bridge.testing import BackendContract

from .conftest import RedmineEnv

pytestmark = pytest.mark.redmine


class RedminePerson:
    """Acts on Redmine over REST as a person would (not through the backend)."""

    def __init__(self, env: RedmineEnv, project: str) -> None:
        self.env, self.project = env, project

    def create_ticket(self, subject: str) -> str:
        return str(self.env.server.create_issue(self.project, subject)["id"])

    def add_comment(self, key: str, text: str) -> None:
        self.env.server.update_issue(key, notes=text)

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self.env.server.update_issue(key, custom_fields=[
            {"id": self.env.fields["SLA labels"], "value": list(labels)}])

    def change_field(self, key: str) -> str:
        """Raise the priority (mapped as ``priority`` in the tests' config) to another one."""
        prio = self.env.server.ids("issue_priorities")
        now = self.env.server.get_issue(key, journals=False)["priority"]["name"]
        self.env.server.update_issue(key, priority_id=prio["Urgent" if now != "Urgent"
                                                          else "Low"])
        return "priority"


@pytest.fixture(scope="module")
def contract_project(redmine: RedmineEnv) -> str:
    return redmine.project("contract")


class TestRedmineContract(BackendContract):
    @pytest.fixture
    def backend(self, make_backend: Any, contract_project: str) -> Backend:
        return make_backend([contract_project])  # type: ignore[no-any-return]

    @pytest.fixture
    def contract_tracker(self, redmine: RedmineEnv, contract_project: str) -> RedminePerson:
        return RedminePerson(redmine, contract_project)
