"""Which requests a Redmine write makes, and that fewer requests lose nothing.

A fake Redmine on `responses` (fake.py) counts them: after a poll, the issues written are
re-read in one batched list (``issue_id=1,2,...``) instead of one GET each; a full GET with
journals happens only when notes are to be posted and the issue moved since it was read (or
was too fresh to vouch for its journals); the first note rides in the fields' PUT. The same
behaviour on the real Redmine: test_backend.py, test_contract.py, test_sync_e2e.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
import responses

from tracker_bridge.backend import Diff, posted_note_keys
from tracker_bridge.config import parse_config
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import BackendUnavailable, TicketNotFound
from tracker_bridge.plugins.redmine import RedmineBackend
from tracker_bridge.plugins.redmine.backend import REREAD_MAX_AGE_SECONDS

from .conftest import FIELDS, POLICY, WRITE
from .fake import KEY, URL, FakeRedmine

DUE = "2026-03-02T17:30:00+00:00"
HOUR = timedelta(hours=1)


@pytest.fixture
def fake() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeRedmine().install(rsps)


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> RedmineBackend:
    monkeypatch.setenv("TB_FAKE_KEY", KEY)
    cfg = parse_config({"policy": str(POLICY), "trackers": [{
        "name": "fake", "backend": "redmine", "url": URL, "credentials": {"env": "TB_FAKE_KEY"},
        "projects": [], "fields": FIELDS, "write": WRITE}]}, load_policy=False)
    return RedmineBackend.from_config(cfg.trackers[0])


def since(fake: FakeRedmine, n: int) -> list[tuple[str, str, Any, Any]]:
    return fake.requests[n:]


def labels_diff(key: str, **kw: Any) -> Diff:
    return Diff(key, set_fields={"response_due": DUE}, add_labels=frozenset({"sla-high"}), **kw)


def test_a_poll_then_writes_re_reads_once_and_puts_once_per_issue(
        fake: FakeRedmine, backend: RedmineBackend) -> None:
    for iid in (1, 2, 3, 4, 5):
        fake.add_issue(iid, labels=["customer-vip"], updated=fake.now - HOUR)
    result = backend.fetch_changed(None)
    n, reads = len(fake.requests), len(fake.issue_reads())
    for t in result.tickets:
        backend.apply(labels_diff(t.key))
    assert fake.relists() == [[1, 2, 3, 4, 5]]
    # no issue read again, but the one read-back proving the fields stick (once per
    # project/tracker/status/field combination)
    assert fake.issue_reads()[reads:] == [1]
    assert [iid for iid, _ in fake.puts()] == [1, 2, 3, 4, 5]
    assert len(since(fake, n)) == 1 + 1 + 5
    for iid in (1, 2, 3, 4, 5):
        assert fake.cf(iid, "SLA labels") == ["customer-vip", "sla-high"]
        assert fake.cf(iid, "SLA response due") == DUE


def test_the_first_note_rides_with_the_fields(fake: FakeRedmine,
                                              backend: RedmineBackend) -> None:
    fake.add_issue(7, updated=fake.now - HOUR)
    backend.fetch_changed(None)
    reads = len(fake.issue_reads())
    backend.apply(labels_diff("7", notes=(Note("breach:response", "Response target missed."),
                                          Note("level:manager", "Escalated to the manager."))))
    (_, first), (_, second) = fake.puts()
    assert first["custom_fields"] and first["notes"].endswith(
        "[tracker-bridge:note=breach:response]")
    assert first["private_notes"] is False
    assert set(second) == {"notes", "private_notes"}
    assert second["notes"].endswith("[tracker-bridge:note=level:manager]")
    assert fake.issue_reads()[reads:] == [7]  # the read-back of the fields, nothing else
    assert posted_note_keys(backend.fetch_ticket("7")) == {"breach:response", "level:manager"}


def test_a_note_already_on_the_issue_is_not_posted_again(fake: FakeRedmine,
                                                        backend: RedmineBackend) -> None:
    fake.add_issue(8, updated=fake.now - 2 * HOUR)
    fake.now -= HOUR
    fake.person_edit(8, notes="Earlier.\n\n[tracker-bridge:note=kb]")
    fake.now += HOUR
    backend.fetch_changed(None)
    n = len(fake.requests)
    backend.apply(Diff("8", notes=(Note("kb", "For the KB."),)))
    assert fake.relists() == [[8]] and fake.puts() == []
    assert len(since(fake, n)) == 1


def test_an_issue_changed_since_the_poll_is_read_in_full_before_a_note(
        fake: FakeRedmine, backend: RedmineBackend) -> None:
    fake.add_issue(3, updated=fake.now - HOUR)
    backend.fetch_changed(None)
    fake.person_edit(3, notes="[tracker-bridge:note=kb] pasted by a person")  # moves updated_on
    reads = len(fake.issue_reads())
    backend.apply(Diff("3", notes=(Note("kb", "For the KB."),)))
    assert fake.relists() == [[3]]
    assert fake.issue_reads()[reads:] == [3]  # the journals, read again: the marker is there
    assert fake.puts() == []


def test_fresh_journals_are_read_in_full_without_a_batch(fake: FakeRedmine,
                                                         backend: RedmineBackend) -> None:
    # stamped in the second the server shows: a note could follow within that second
    fake.add_issue(4, updated=fake.now)
    backend.fetch_changed(None)
    reads = len(fake.issue_reads())
    backend.apply(Diff("4", notes=(Note("kb", "For the KB."),)))
    assert fake.relists() == []
    assert fake.issue_reads()[reads:] == [4]
    assert fake.notes(4)[-1].endswith("[tracker-bridge:note=kb]")


def test_a_label_a_person_added_after_the_poll_is_kept(fake: FakeRedmine,
                                                      backend: RedmineBackend) -> None:
    fake.add_issue(5, labels=["customer-vip"], updated=fake.now - HOUR)
    backend.fetch_changed(None)
    fake.person_edit(5, labels=["customer-vip", "escalation-requested"])
    reads = len(fake.issue_reads())
    backend.apply(Diff("5", add_labels=frozenset({"sla-high"})))
    assert fake.cf(5, "SLA labels") == ["customer-vip", "escalation-requested", "sla-high"]
    assert fake.issue_reads()[reads:] == [5]  # the read-back only: the batch showed the label


def test_a_batched_re_read_expires(fake: FakeRedmine, backend: RedmineBackend) -> None:
    for iid in (1, 2, 3):
        fake.add_issue(iid, updated=fake.now - HOUR)
    backend.fetch_changed(None)
    clock = [100.0]
    backend._clock = lambda: clock[0]
    backend.apply(labels_diff("1"))
    clock[0] += REREAD_MAX_AGE_SECONDS + 1
    backend.apply(labels_diff("2"))
    backend.apply(labels_diff("3"))
    assert fake.relists() == [[1, 2, 3], [2, 3]]


def test_a_ticket_fetched_again_is_re_read_again(fake: FakeRedmine,
                                                 backend: RedmineBackend) -> None:
    fake.add_issue(1, updated=fake.now - HOUR)
    fake.add_issue(2, labels=["customer-vip"], updated=fake.now - HOUR)
    backend.fetch_changed(None)
    backend.apply(labels_diff("1"))  # re-reads 1 and 2
    fake.person_edit(2, labels=["customer-vip", "escalation-requested"])
    backend.fetch_ticket("2")  # what the sync layer does before retrying a write
    backend.apply(Diff("2", add_labels=frozenset({"sla-high"})))
    assert fake.relists() == [[1, 2], [2]]
    assert fake.cf(2, "SLA labels") == ["customer-vip", "escalation-requested", "sla-high"]


def test_an_issue_gone_since_the_poll_is_not_found(fake: FakeRedmine,
                                                   backend: RedmineBackend) -> None:
    fake.add_issue(1, updated=fake.now - HOUR)
    fake.add_issue(2, updated=fake.now - HOUR)
    backend.fetch_changed(None)
    del fake.issues[2]
    backend.apply(labels_diff("1"))
    with pytest.raises(TicketNotFound):
        backend.apply(labels_diff("2"))


def test_a_lost_answer_to_a_second_note_is_not_repeated(fake: FakeRedmine,
                                                        backend: RedmineBackend) -> None:
    fake.add_issue(6, updated=fake.now - HOUR)
    backend.fetch_changed(None)
    diff = labels_diff("6", notes=(Note("breach:response", "Response target missed."),
                                   Note("level:manager", "Escalated to the manager.")))
    real = fake._update
    calls = [0]

    def lose_the_second_answer(iid: int, body: dict[str, Any], who: str) -> None:
        real(iid, body, who)
        calls[0] += 1
        if calls[0] == 2:
            raise requests.ReadTimeout("read timed out")  # applied, answer lost

    fake._update = lose_the_second_answer  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable):
        backend.apply(diff)
    fake._update = real  # type: ignore[method-assign]
    # the sync layer fetches the ticket again before retrying: nothing is left to write
    backend.fetch_ticket("6")
    backend.apply(diff)
    assert len(fake.puts()) == 2
    assert [n.rsplit("\n", 1)[-1] for n in fake.notes(6)] == [
        "[tracker-bridge:note=breach:response]", "[tracker-bridge:note=level:manager]"]
