"""The Bugzilla backend passes the contract every backend passes (tracker_bridge.testing),
against a stateful fake Bugzilla (tests/bugzilla/fake.py), in both label modes; the same
contract against a real Bugzilla 5.2 is test_real_contract.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest

from tracker_bridge.backend import Backend
from tracker_bridge.plugins.bugzilla import BugzillaBackend
from tracker_bridge.testing import BackendContract

from .fake import AGENT, FakeBugzilla


class BugzillaPerson:
    """Edits the fake Bugzilla as a person in its UI would, not through the backend."""

    def __init__(self, fake: FakeBugzilla, labels: str) -> None:
        self.fake, self.labels = fake, labels

    def create_ticket(self, subject: str) -> str:
        return str(self.fake.create_bug(subject))

    def add_comment(self, key: str, text: str) -> None:
        self.fake.comment(int(key), text, who=AGENT)

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        if self.labels == "keywords":
            self.fake.update(int(key), keywords={"set": list(labels)})
        else:
            self.fake.update(int(key), whiteboard=" ".join(labels))

    def change_field(self, key: str) -> str:
        self.fake.update(int(key), priority="P1")
        return "priority"


@pytest.fixture
def polled_fake(fake: FakeBugzilla) -> FakeBugzilla:
    """The fake whose clock moves on between polls, as a real server's does: without it a
    ticket would stay inside the backend's overlap window for ever."""
    fake.poll_advance = timedelta(seconds=10)
    return fake


class TestBugzillaKeywordsContract(BackendContract):
    @pytest.fixture
    def backend(self, polled_fake: FakeBugzilla,
                make_backend: Callable[..., BugzillaBackend]) -> Backend:
        return make_backend()

    @pytest.fixture
    def contract_tracker(self, fake: FakeBugzilla) -> BugzillaPerson:
        return BugzillaPerson(fake, "keywords")


class TestBugzillaWhiteboardContract(BackendContract):
    # the whiteboard takes any word: the human label needs no keyword defined
    HUMAN_LABEL = "[needs-triage]"

    @pytest.fixture
    def backend(self, polled_fake: FakeBugzilla,
                make_backend: Callable[..., BugzillaBackend]) -> Backend:
        return make_backend(write={"labels": "whiteboard"})

    @pytest.fixture
    def contract_tracker(self, fake: FakeBugzilla) -> BugzillaPerson:
        return BugzillaPerson(fake, "whiteboard")
