"""Test helpers for plugin authors: the backend contract suite.

Every backend passes :class:`BackendContract`. Subclass it in your plugin's tests and provide
two fixtures::

    from tracker_bridge.testing import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend(self, ...):
            # a configured backend whose tracker config has every ``write:`` key set
            # (response_due, resolution_due, labels, notes) and whose labels field accepts
            # OWNED_LABELS and HUMAN_LABEL
            ...

        @pytest.fixture
        def contract_tracker(self, ...):
            # a ContractTracker acting on the same tracker as a person would
            ...

The rules checked are the ones in ``tracker_bridge/backend.py``'s docstring: incremental
fetch never loses a change (repeats allowed), not even a comment alone made after the
backend's re-read window has passed; history is in time order and shows label changes as
``label`` events; ``apply`` writes only the diff, keeps labels it does not own, marks its
notes so that ``posted_note_keys`` finds them; an empty diff is no write at all; a missing
ticket raises ``TicketNotFound``.

A backend that re-reads recent changes again (an overlap window behind its watermark) keeps
returning a ticket for a while after it changed. The comment-only test waits that out: it
fetches again from the latest cursor until the ticket stops coming back, pausing a little
longer each time (0.05 s doubling up to ``WINDOW_MAX_PAUSE``), at most ``WINDOW_MAX_FETCHES``
fetches; a backend without such a window costs one fetch. Raise the ceiling for a backend
whose window is longer than about two minutes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from .backend import Backend, Diff, FetchResult, Problem, note_marker, posted_note_keys
from .core.ticket import HistoryEvent, Ticket
from .core.verdict import Note
from .errors import BackendError, TicketNotFound

__all__ = ["BackendContract", "ContractTracker", "ContractWarning", "FieldChangingTracker"]


class ContractWarning(UserWarning):
    """A contract check that passed without reaching the case it is there for (e.g. the
    backend kept returning an unchanged ticket for longer than the suite waited)."""


@runtime_checkable
class ContractTracker(Protocol):
    """Acts on the tracker under test the way a person would, not through the backend."""

    def create_ticket(self, subject: str) -> str:
        """Open a ticket in a project the backend reads; return its key."""

    def add_comment(self, key: str, text: str) -> None:
        """Post a public comment (any visible change to the ticket would do)."""

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        """Set the labels field to exactly ``labels``, as a person editing the ticket."""


@runtime_checkable
class FieldChangingTracker(ContractTracker, Protocol):
    """A :class:`ContractTracker` that can also change a field the backend maps (optional:
    without it the history-order test leaves the field change out, with a warning)."""

    def change_field(self, key: str) -> str:
        """Change a status or a mapped field of the ticket to another value, as a person
        would; return what the history event names: ``"status"`` for a status change, else
        the normalized field name (``"priority"``)."""


class BackendContract:
    """The tests every tracker backend must pass (a pytest mixin, see the module docstring)."""

    #: labels the bridge owns in these tests (your labels field must accept them)
    OWNED_LABELS: ClassVar[tuple[str, ...]] = ("sla-high", "sla-at-risk-resolution")
    #: a label a person set, which the bridge must never remove
    HUMAN_LABEL: ClassVar[str] = "customer-label"
    #: a key no ticket has
    MISSING_KEY: ClassVar[str] = "987654321"
    #: deadline values written in the tests
    DUE_1: ClassVar[str] = "2026-03-02T17:30:00+00:00"
    DUE_2: ClassVar[str] = "2026-03-03T09:15:00+00:00"
    #: most incremental fetches spent waiting for an unchanged ticket to stop coming back
    WINDOW_MAX_FETCHES: ClassVar[int] = 60
    #: longest pause (seconds) between two of those fetches; pauses start at 0.05 s, doubling
    WINDOW_MAX_PAUSE: ClassVar[float] = 2.0

    # -- fixtures the subclass provides -----------------------------------------------------

    @pytest.fixture
    def backend(self) -> Backend:
        pytest.fail("a BackendContract subclass must provide the `backend` fixture")

    @pytest.fixture
    def contract_tracker(self) -> ContractTracker:
        pytest.fail("a BackendContract subclass must provide the `contract_tracker` fixture")

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _keys(result: FetchResult) -> set[str]:
        return {t.key for t in result.tickets}

    @staticmethod
    def _comments(ticket: Ticket) -> list[str]:
        return [e.text or "" for e in ticket.history if e.kind == "comment"]

    def _drain(self, backend: Backend, cursor: str | None) -> tuple[set[str], str | None]:
        result = backend.fetch_changed(cursor)
        assert isinstance(result, FetchResult)
        return self._keys(result), result.cursor

    def _wait_out_the_window(self, backend: Backend, key: str,
                             cursor: str | None) -> tuple[str | None, int | None]:
        """Fetch from the latest cursor until ``key`` is no longer returned.

        Returns the latest cursor and the number of fetches it took, or ``None`` when the
        ticket still came back after ``WINDOW_MAX_FETCHES`` fetches.
        """
        pause = 0.05
        for n in range(1, self.WINDOW_MAX_FETCHES + 1):
            keys, cursor = self._drain(backend, cursor)
            if key not in keys:
                return cursor, n
            time.sleep(pause)
            pause = min(pause * 2, self.WINDOW_MAX_PAUSE)
        return cursor, None

    @staticmethod
    def _time_order_problem(ticket: Ticket) -> str | None:
        for i in range(1, len(ticket.history)):
            a, b = ticket.history[i - 1], ticket.history[i]
            if b.at < a.at:
                return (f"ticket {ticket.key}: history[{i}] ({b.kind} at {b.at.isoformat()}) "
                        f"is earlier than history[{i - 1}] ({a.kind} at {a.at.isoformat()}): "
                        "history must be in time order")
        return None

    @staticmethod
    def _label_events(ticket: Ticket) -> list[HistoryEvent]:
        return [e for e in ticket.history if e.kind == "label"]

    # -- fetching ---------------------------------------------------------------------------

    def test_fetch_from_scratch_returns_every_ticket(self, backend: Backend,
                                                    contract_tracker: ContractTracker) -> None:
        a = contract_tracker.create_ticket("contract: first")
        b = contract_tracker.create_ticket("contract: second")
        keys, cursor = self._drain(backend, None)
        assert {a, b} <= keys
        assert cursor is None or isinstance(cursor, str)

    def test_incremental_fetch_never_loses_a_change(self, backend: Backend,
                                                    contract_tracker: ContractTracker) -> None:
        a = contract_tracker.create_ticket("contract: incremental A")
        _, cursor = self._drain(backend, None)
        for round_ in range(3):
            b = contract_tracker.create_ticket(f"contract: incremental B{round_}")
            contract_tracker.add_comment(a, f"change {round_} on A")
            keys, cursor = self._drain(backend, cursor)
            assert {a, b} <= keys, f"round {round_}: a change since the cursor was lost"
            assert isinstance(cursor, str), "a cursor after a fetch is text"

    def test_a_comment_alone_is_a_change(self, backend: Backend,
                                         contract_tracker: ContractTracker) -> None:
        """A comment and nothing else, made once the backend no longer re-reads the ticket,
        comes back from the next incremental fetch (a comment does not move every field a
        backend might list by)."""
        key = contract_tracker.create_ticket("contract: comment only")
        _, cursor = self._drain(backend, None)
        cursor, fetches = self._wait_out_the_window(backend, key, cursor)
        text = "contract: a comment and nothing else"
        contract_tracker.add_comment(key, text)
        result = backend.fetch_changed(cursor)
        found = [t for t in result.tickets if t.key == key]
        waited = (f"after {fetches} fetches no longer returned it" if fetches else
                  f"still returned it after {self.WINDOW_MAX_FETCHES} fetches")
        assert found, (f"a comment-only change was lost: ticket {key} got a comment, yet the "
                       f"next incremental fetch did not return it (the backend {waited})")
        assert text in self._comments(found[-1]), (
            f"ticket {key} came back without the comment it got")
        if fetches is None:
            warnings.warn(ContractWarning(
                f"{type(backend).__name__} returned ticket {key} from every one of "
                f"{self.WINDOW_MAX_FETCHES} incremental fetches although it did not change: "
                "a backend re-reading everything cannot lose a comment, but one whose window "
                "is longer than the suite waited was not tested past it (raise "
                "WINDOW_MAX_FETCHES)"), stacklevel=1)

    def test_history_is_in_time_order(self, backend: Backend,
                                      contract_tracker: ContractTracker) -> None:
        """Several changes of several kinds come back in the order they were made."""
        key = contract_tracker.create_ticket("contract: history order")
        texts = [f"contract history {i}" for i in (1, 2, 3)]
        contract_tracker.add_comment(key, texts[0])
        contract_tracker.set_labels(key, [self.HUMAN_LABEL])
        contract_tracker.add_comment(key, texts[1])
        changed: str | None = None
        if isinstance(contract_tracker, FieldChangingTracker):
            changed = contract_tracker.change_field(key)
        contract_tracker.add_comment(key, texts[2])
        listed = [t for t in backend.fetch_changed(None).tickets if t.key == key]
        assert listed, f"ticket {key} is missing from a fetch from scratch"
        for how, t in (("fetch_ticket", backend.fetch_ticket(key)),
                       ("fetch_changed", listed[-1])):
            problem = self._time_order_problem(t)
            assert problem is None, f"{how}: {problem}"
            mine = [c for c in self._comments(t) if c in texts]
            assert mine == texts, (f"{how}: the comments came back as {mine}, not in the "
                                   f"order they were posted ({texts})")
            at = {e.text: e.at for e in t.history if e.kind == "comment" and e.text in texts}
            added = [e for e in self._label_events(t) if self.HUMAN_LABEL in e.added]
            assert added, f"{how}: no label event adds {self.HUMAN_LABEL!r}: {t.history}"
            assert at[texts[0]] <= added[0].at <= at[texts[1]], (
                f"{how}: the label event is at {added[0].at.isoformat()}, not between the "
                "comments posted before and after it")
            if changed is not None:
                kind = "status" if changed == "status" else "field"
                moved = [e for e in t.history if e.kind == kind
                         and (kind == "status" or e.field == changed)]
                assert moved, f"{how}: no {kind} event for the change of {changed!r}"
                assert at[texts[1]] <= moved[-1].at <= at[texts[2]], (
                    f"{how}: the {changed} change is at {moved[-1].at.isoformat()}, not "
                    "between the comments posted before and after it")
        if changed is None:
            warnings.warn(ContractWarning(
                f"{type(contract_tracker).__name__} has no change_field(key): the history "
                "order was checked on comments and a label change only"), stacklevel=1)

    def test_label_changes_are_in_history(self, backend: Backend,
                                          contract_tracker: ContractTracker) -> None:
        """A person's change of the labels field is a ``label`` event naming what it added
        and removed."""
        key = contract_tracker.create_ticket("contract: label events")
        both = [self.HUMAN_LABEL, self.OWNED_LABELS[0]]
        contract_tracker.set_labels(key, both)
        t = backend.fetch_ticket(key)
        events = self._label_events(t)
        assert events, f"ticket {key}: labels {both} were set, but its history has no label event"
        added = {x for e in events for x in e.added}
        assert set(both) <= added, f"the label events add {sorted(added)}, not {both}"
        for e in events:
            assert isinstance(e.added, tuple) and isinstance(e.removed, tuple)
            assert all(isinstance(x, str) and x for x in (*e.added, *e.removed))
            assert e.added or e.removed, "a label event that changes nothing"
            assert e.from_ is None and e.to is None, "a label event has added/removed only"
        contract_tracker.set_labels(key, [self.OWNED_LABELS[0]])
        t = backend.fetch_ticket(key)
        later = self._label_events(t)[len(events):]
        assert any(self.HUMAN_LABEL in e.removed for e in later), (
            f"{self.HUMAN_LABEL!r} was taken off, but no later label event removes it: {later}")
        assert not any(self.OWNED_LABELS[0] in e.removed for e in later), (
            f"{self.OWNED_LABELS[0]!r} stayed, but a label event says it was removed")
        assert Ticket.from_dict(t.to_dict()).to_dict() == t.to_dict()

    def test_fetch_ticket_is_normalized(self, backend: Backend,
                                        contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: normalized")
        contract_tracker.add_comment(key, "a public comment")
        t = backend.fetch_ticket(key)
        assert isinstance(t, Ticket)
        assert t.key == key
        assert t.tracker == backend.tracker.name
        assert t.created.tzinfo is not None
        assert t.status
        assert [e.at for e in t.history] == sorted(e.at for e in t.history)
        assert "a public comment" in "\n".join(self._comments(t))
        # the JSON form round-trips: every instant is aware, every event well formed
        assert Ticket.from_dict(t.to_dict()).to_dict() == t.to_dict()

    def test_fetch_missing_ticket_raises_ticket_not_found(self, backend: Backend) -> None:
        with pytest.raises(TicketNotFound):
            backend.fetch_ticket(self.MISSING_KEY)

    # -- writing ----------------------------------------------------------------------------

    def test_apply_sets_and_clears_deadline_fields(self, backend: Backend,
                                                   contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: fields")
        backend.apply(Diff(key, set_fields={"response_due": self.DUE_1,
                                            "resolution_due": self.DUE_2}))
        t = backend.fetch_ticket(key)
        assert t.fields.get("response_due") == self.DUE_1
        assert t.fields.get("resolution_due") == self.DUE_2
        backend.apply(Diff(key, set_fields={"response_due": None}))
        t = backend.fetch_ticket(key)
        assert not t.fields.get("response_due")
        assert t.fields.get("resolution_due") == self.DUE_2

    def test_apply_writes_only_the_diff(self, backend: Backend,
                                        contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: only the diff")
        contract_tracker.set_labels(key, [self.HUMAN_LABEL])
        backend.apply(Diff(key, set_fields={"response_due": self.DUE_1,
                                            "resolution_due": self.DUE_2},
                           add_labels=frozenset({self.OWNED_LABELS[0]})))
        before = backend.fetch_ticket(key)
        backend.apply(Diff(key, set_fields={"resolution_due": self.DUE_1}))
        after = backend.fetch_ticket(key)
        assert after.fields.get("response_due") == self.DUE_1
        assert after.fields.get("resolution_due") == self.DUE_1
        assert sorted(after.labels) == sorted(before.labels)
        assert self._comments(after) == self._comments(before)
        assert after.status == before.status
        assert after.subject == before.subject

    def test_apply_keeps_labels_it_does_not_own(self, backend: Backend,
                                                contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: labels")
        contract_tracker.set_labels(key, [self.HUMAN_LABEL])
        backend.apply(Diff(key, add_labels=frozenset(self.OWNED_LABELS)))
        t = backend.fetch_ticket(key)
        assert set(t.labels) == {self.HUMAN_LABEL, *self.OWNED_LABELS}
        backend.apply(Diff(key, remove_labels=frozenset({self.OWNED_LABELS[0]}),
                           add_labels=frozenset()))
        t = backend.fetch_ticket(key)
        assert set(t.labels) == {self.HUMAN_LABEL, self.OWNED_LABELS[1]}
        # a person adds a label between two writes: the next write keeps it
        contract_tracker.set_labels(key, [*t.labels, self.OWNED_LABELS[0]])
        backend.apply(Diff(key, remove_labels=frozenset({self.OWNED_LABELS[1]})))
        t = backend.fetch_ticket(key)
        assert set(t.labels) == {self.HUMAN_LABEL, self.OWNED_LABELS[0]}

    def test_apply_is_safe_to_repeat(self, backend: Backend,
                                     contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: repeat")
        diff = Diff(key, set_fields={"response_due": self.DUE_1},
                    add_labels=frozenset({self.OWNED_LABELS[0]}),
                    remove_labels=frozenset({self.OWNED_LABELS[1]}))
        backend.apply(diff)
        first = backend.fetch_ticket(key)
        backend.apply(diff)
        second = backend.fetch_ticket(key)
        assert sorted(second.labels) == sorted(first.labels)
        assert list(second.labels).count(self.OWNED_LABELS[0]) == 1
        assert second.fields.get("response_due") == self.DUE_1

    def test_notes_carry_their_marker(self, backend: Backend,
                                      contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: notes")
        contract_tracker.add_comment(key, "a person's comment")
        assert posted_note_keys(backend.fetch_ticket(key)) == set()
        backend.apply(Diff(key, notes=(Note("breach:resolution", "Resolution target missed."),
                                       Note("kb", "Resolution note for the knowledge base."))))
        t = backend.fetch_ticket(key)
        assert posted_note_keys(t) == {"breach:resolution", "kb"}
        texts = self._comments(t)
        assert any("Resolution target missed." in x and note_marker("breach:resolution") in x
                   for x in texts)
        assert "a person's comment" in texts

    def test_empty_diff_writes_nothing(self, backend: Backend,
                                       contract_tracker: ContractTracker) -> None:
        key = contract_tracker.create_ticket("contract: empty diff")
        backend.apply(Diff(key, add_labels=frozenset({self.OWNED_LABELS[0]})))
        before = backend.fetch_ticket(key)
        backend.apply(Diff(key))
        after = backend.fetch_ticket(key)
        assert after.updated == before.updated, "an empty diff moved the ticket's updated time"
        assert after.to_dict() == before.to_dict()

    def test_apply_to_missing_ticket_is_an_error(self, backend: Backend) -> None:
        with pytest.raises(BackendError) as info:
            backend.apply(Diff(self.MISSING_KEY, add_labels=frozenset({self.OWNED_LABELS[0]})))
        assert not info.value.retryable, "a missing ticket will not appear by retrying"

    # -- setup check ------------------------------------------------------------------------

    def test_check_returns_problems(self, backend: Backend) -> None:
        problems: Any = backend.check(list(self.OWNED_LABELS))
        assert isinstance(problems, list)
        assert all(isinstance(p, Problem) for p in problems)
        assert problems == [], f"the contract tracker is set up, yet check says {problems}"
