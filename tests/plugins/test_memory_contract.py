"""The in-memory backend passes the contract every backend must pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from tracker_bridge.backend import Backend
from tracker_bridge.config import parse_config
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryBackend, MemoryTracker
from tracker_bridge.testing import BackendContract, ContractTracker

WRITE = {"response_due": "SLA response due", "resolution_due": "SLA resolution due",
         "labels": "SLA labels", "notes": "journal"}


class _Person:
    """Edits the memory tracker directly, as a person in the tracker's UI would."""

    def __init__(self, tracker: MemoryTracker) -> None:
        self.tracker = tracker

    def create_ticket(self, subject: str) -> str:
        return self.tracker.create(subject).key

    def add_comment(self, key: str, text: str) -> None:
        self.tracker.update(key, comment=text)

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self.tracker.update(key, labels=labels)


def _backend(tmp_path, options: dict) -> Backend:
    cfg = parse_config({"policy": "unused.yaml", "trackers": [
        {"name": "mem", "backend": "memory", "options": options, "write": WRITE}]},
        base=tmp_path, pm=get_plugin_manager(load_entrypoints=False), load_policy=False)
    return MemoryBackend.from_config(cfg.trackers[0])


@pytest.fixture(autouse=True)
def _fresh_instances() -> Iterator[None]:
    MemoryTracker.forget_all()
    yield
    MemoryTracker.forget_all()


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path) -> Backend:
        return _backend(tmp_path, {"instance": "contract"})

    @pytest.fixture
    def contract_tracker(self) -> ContractTracker:
        return _Person(MemoryTracker.named("contract"))


class _FilePerson(_Person):
    """Edits the JSON file the backend reads, the way a second process would."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    def _edit(self, fn):
        tr = self.backend._open()
        out = fn(tr)
        self.backend._save(tr)
        return out

    def create_ticket(self, subject: str) -> str:
        return self._edit(lambda tr: tr.create(subject).key)

    def add_comment(self, key: str, text: str) -> None:
        self._edit(lambda tr: tr.update(key, comment=text))

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self._edit(lambda tr: tr.update(key, labels=labels))


class TestMemoryBackendFile(BackendContract):
    """The same backend keeping its tickets in a JSON file (how the CLI demo uses it)."""

    @pytest.fixture
    def backend(self, tmp_path) -> Backend:
        return _backend(tmp_path, {"file": "tickets.json"})

    @pytest.fixture
    def contract_tracker(self, backend) -> ContractTracker:
        return _FilePerson(backend)


class _LosingBackend(MemoryBackend):
    """A broken backend: its cursor runs ahead of what it returned (loses changes)."""

    name = "losing"

    def fetch_changed(self, cursor):
        result = super().fetch_changed(cursor)
        return type(result)(result.tickets[:-1], result.cursor)


class _LabelClobberingBackend(MemoryBackend):
    """A broken backend: it replaces the labels field with the bridge's labels."""

    name = "clobbering"

    def apply(self, diff):
        tr = self._open()
        t = tr.get(diff.key)
        tr.update(diff.key, labels=[x for x in t.labels if x.startswith("sla-")])
        super().apply(diff)


@pytest.mark.parametrize(("cls", "test_name"), [
    (_LosingBackend, "test_incremental_fetch_never_loses_a_change"),
    (_LabelClobberingBackend, "test_apply_keeps_labels_it_does_not_own"),
])
def test_the_contract_catches_a_broken_backend(tmp_path, cls, test_name) -> None:
    """The contract is not a formality: each of these bugs makes one of its tests fail."""
    good = _backend(tmp_path, {"instance": "broken"})
    broken = cls(good.tracker)
    person = _Person(MemoryTracker.named("broken"))
    with pytest.raises(AssertionError):
        getattr(BackendContract(), test_name)(broken, person)
