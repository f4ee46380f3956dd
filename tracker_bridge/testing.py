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
fetch never loses a change (repeats allowed); ``apply`` writes only the diff, keeps labels it
does not own, marks its notes so that ``posted_note_keys`` finds them; an empty diff is no
write at all; a missing ticket raises ``TicketNotFound``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from .backend import Backend, Diff, FetchResult, Problem, note_marker, posted_note_keys
from .core.ticket import Ticket
from .core.verdict import Note
from .errors import BackendError, TicketNotFound

__all__ = ["BackendContract", "ContractTracker"]


@runtime_checkable
class ContractTracker(Protocol):
    """Acts on the tracker under test the way a person would, not through the backend."""

    def create_ticket(self, subject: str) -> str:
        """Open a ticket in a project the backend reads; return its key."""

    def add_comment(self, key: str, text: str) -> None:
        """Post a public comment (any visible change to the ticket would do)."""

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        """Set the labels field to exactly ``labels``, as a person editing the ticket."""


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
