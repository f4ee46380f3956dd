"""The backend contract (tracker_bridge.testing) against a real Bugzilla 5.2 under stock
mod_perl (.ci/install-bugzilla.sh): every test on fresh bugs of this session's own product."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tracker_bridge.backend import Backend
from tracker_bridge.plugins.bugzilla import BugzillaBackend
from tracker_bridge.testing import BackendContract


class RealBugzillaPerson:
    """The nurse, editing bugs over REST (not through the backend)."""

    def __init__(self, server: Any, product: str) -> None:
        self.server, self.product = server, product

    def create_ticket(self, subject: str) -> str:
        return str(self.server.create_bug(self.product, subject))

    def add_comment(self, key: str, text: str) -> None:
        self.server.update(key, comment={"body": text})

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self.server.update(key, keywords={"set": list(labels)})

    def change_field(self, key: str) -> str:
        self.server.update(key, priority="Highest")
        return "priority"


class TestRealBugzillaContract(BackendContract):
    @pytest.fixture
    def backend(self, make_real_backend: Callable[..., BugzillaBackend]) -> Backend:
        return make_real_backend()

    @pytest.fixture
    def contract_tracker(self, real_bugzilla: Any, real_product: str) -> RealBugzillaPerson:
        return RealBugzillaPerson(real_bugzilla, real_product)
