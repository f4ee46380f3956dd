"""The in-memory backend passes the contract every backend must pass."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tracker_bridge.backend import Backend, FetchResult
from tracker_bridge.config import parse_config
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryBackend, MemoryTracker
from tracker_bridge.testing import BackendContract, ContractTracker, ContractWarning

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

    def change_field(self, key: str) -> str:
        self.tracker.update(key, fields={"priority": "Urgent"})
        return "priority"


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

    def change_field(self, key: str) -> str:
        self._edit(lambda tr: tr.update(key, status="In Progress"))
        return "status"


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


class _CommentBlindBackend(MemoryBackend):
    """A broken backend that loses comment-only changes, yet passes a suite that never waits.

    It lists tickets by their last status, field or label change (a comment alone moves
    nothing it looks at) and, like a backend re-reading an overlap window, keeps returning a
    ticket until that stamp is a second old; from then on it skips the ticket while the stamp
    stays the same. A comment made within that second is still found, so a test that comments
    right after a fetch passes.
    """

    name = "comment-blind"
    SETTLE = timedelta(seconds=1)

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        tr = self._open()
        seen: dict[str, str] = json.loads(cursor) if cursor else {}
        now = tr.clock()
        tickets, settled = [], {}
        for key in sorted(tr.keys()):
            t = tr.get(key)
            stamp = max([t.created, *(e.at for e in t.history if e.kind != "comment")])
            if seen.get(key) != stamp.isoformat():
                tickets.append(self._ticket(t))
            if now - stamp >= self.SETTLE:
                settled[key] = stamp.isoformat()
        return FetchResult(tickets, json.dumps(settled))


class _ReversedHistoryBackend(MemoryBackend):
    """A broken backend: it gives the history newest first (a tracker's display order)."""

    name = "reversed"

    def _ticket(self, t):
        t = super()._ticket(t)
        return replace(t, history=tuple(reversed(t.history)))


class _LabelBlindBackend(MemoryBackend):
    """A broken backend: it reports the labels but leaves their changes out of the history."""

    name = "label-blind"

    def _ticket(self, t):
        t = super()._ticket(t)
        return replace(t, history=tuple(e for e in t.history if e.kind != "label"))


def _run_contract_test(tmp_path, cls: type[MemoryBackend], test_name: str) -> None:
    good = _backend(tmp_path, {"instance": "broken"})
    broken = cls(good.tracker)
    person = _Person(MemoryTracker.named("broken"))
    getattr(BackendContract(), test_name)(broken, person)


@pytest.mark.parametrize(("cls", "test_name", "reason"), [
    (_CommentBlindBackend, "test_a_comment_alone_is_a_change", "a comment-only change was lost"),
    (_ReversedHistoryBackend, "test_history_is_in_time_order", "history must be in time order"),
    (_LabelBlindBackend, "test_label_changes_are_in_history", "has no label event"),
    (_LabelBlindBackend, "test_history_is_in_time_order", "no label event adds"),
])
def test_the_stricter_contract_catches(tmp_path, cls, test_name, reason) -> None:
    """Each planted bug fails its contract test, and for the reason it was planted."""
    with pytest.raises(AssertionError, match=reason):
        _run_contract_test(tmp_path, cls, test_name)


class _SlowSettlingCommentBlindBackend(_CommentBlindBackend):
    """The comment-blind backend with a window longer than any test waits in one go."""

    name = "comment-blind-slow"
    SETTLE = timedelta(hours=1)


@pytest.mark.parametrize(("cls", "test_name"), [
    (_ReversedHistoryBackend, "test_fetch_from_scratch_returns_every_ticket"),
    (_ReversedHistoryBackend, "test_incremental_fetch_never_loses_a_change"),
    (_ReversedHistoryBackend, "test_fetch_ticket_is_normalized"),
    (_SlowSettlingCommentBlindBackend, "test_incremental_fetch_never_loses_a_change"),
    (_SlowSettlingCommentBlindBackend, "test_fetch_ticket_is_normalized"),
])
def test_the_planted_bugs_hide_from_the_other_fetch_tests(tmp_path, cls, test_name) -> None:
    """Why the stricter tests are needed: a newest-first history passes the older checks
    (their tickets have at most one event), and so does a comment-blind backend inside its
    re-read window (the older incremental test comments right after a fetch)."""
    _run_contract_test(tmp_path, cls, test_name)


def test_the_comment_test_waits_only_as_long_as_the_window(tmp_path) -> None:
    """The comment-blind backend's window is one second: the suite waits it out by fetching
    again (a handful of fetches), while the memory backend needs one fetch."""
    good = _backend(tmp_path, {"instance": "broken"})
    person = _Person(MemoryTracker.named("broken"))
    key = person.create_ticket("window")
    contract = BackendContract()
    _, cursor = contract._drain(good, None)
    assert contract._wait_out_the_window(good, key, cursor)[1] == 1
    blind = _CommentBlindBackend(good.tracker)
    _, cursor = contract._drain(blind, None)
    cursor, fetches = contract._wait_out_the_window(blind, key, cursor)
    assert fetches is not None and fetches > 1
    # it stopped returning the ticket only once the stamp had settled
    created = MemoryTracker.named("broken").get(key).created
    assert datetime.now(created.tzinfo) - created >= _CommentBlindBackend.SETTLE


class _RereadAllBackend(MemoryBackend):
    """A correct but wasteful backend: every fetch returns every ticket."""

    name = "reread-all"

    def fetch_changed(self, cursor):
        result = super().fetch_changed(None)
        return FetchResult(result.tickets, result.cursor)


def test_a_backend_rereading_everything_passes_with_a_warning(tmp_path) -> None:
    """It cannot lose a comment; the suite says it could not test past a window."""

    class Short(BackendContract):
        WINDOW_MAX_FETCHES = 3
        WINDOW_MAX_PAUSE = 0.05

    good = _backend(tmp_path, {"instance": "broken"})
    person = _Person(MemoryTracker.named("broken"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Short().test_a_comment_alone_is_a_change(_RereadAllBackend(good.tracker), person)
    assert [w for w in caught if issubclass(w.category, ContractWarning)
            and "every one of 3 incremental fetches" in str(w.message)]
