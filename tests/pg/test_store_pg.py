"""The state store against a real PostgreSQL (and the same checks against SQLite): one
transaction per cycle, migrations, leases with fencing tokens, a sync over the memory backend.
Work is counted, never timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sync.conftest import POLICY, WRITE

from tracker_bridge.config import load_config
from tracker_bridge.errors import StoreError
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.store import (
    SCHEMA_VERSION,
    BaseStore,
    LeaseLost,
    Store,
    open_store,
    owner_id,
)
from tracker_bridge.store_pg import PostgresStore
from tracker_bridge.sync import run_once

from .server import PgServer

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def _record(st: BaseStore, key: str, next_change: datetime | None, is_open: bool = True,
            tracker: str = "desk") -> None:
    st.record_ticket(tracker, key, status="New", status_group="new", is_open=is_open,
                     class_="high", plan="standard", labels=["sla-high"],
                     fields={"response_due": None}, next_change=next_change, retry=False,
                     ticket_updated=T0, evaluated_at=T0, written=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    if request.param == "sqlite":
        with Store(tmp_path / "s.sqlite") as st:
            yield st
    else:
        yield request.getfixturevalue("pg_store")


# -- the same behaviour on both stores -----------------------------------------------------

def test_a_cycle_is_one_transaction(store: BaseStore) -> None:
    with store.cycle():
        store.set_cursor("desk", "10", at=T0)
        _record(store, "1", T0)
    with pytest.raises(RuntimeError), store.cycle():
        store.set_cursor("desk", "20", at=T0)
        _record(store, "2", T0)
        raise RuntimeError("crash in the middle of a cycle")
    with store.cycle(rollback=True):  # a dry run
        assert store.get_cursor("desk") == "10"
    assert store.get_cursor("desk") == "10"
    assert store.ticket("desk", "1") is not None and store.ticket("desk", "2") is None
    assert store.schema_version == SCHEMA_VERSION


def test_tickets_notes_and_due_keys(store: BaseStore) -> None:
    with store.cycle():
        _record(store, "1", T0 + timedelta(minutes=30))
        _record(store, "2", T0 + timedelta(minutes=10, microseconds=1))
        _record(store, "3", None, is_open=False)
        store.mark_retry("desk", "4")
        store.mark_retry("desk", "3")
        assert store.due_keys("desk", T0) in (["3", "4"], ["4", "3"])
        assert set(store.due_keys("desk", T0 + timedelta(minutes=11))) == {"2", "3", "4"}
        assert store.earliest_next_change() == T0 + timedelta(minutes=10, microseconds=1)
        assert store.earliest_next_change(["other"]) is None
        assert store.open_keys("desk") == {"1", "2", "4"}
        store.record_notes("desk", "1", ["kb", "kb"], T0)
        store.record_notes("desk", "1", ["kb"], T0)
        state = store.ticket("desk", "1")
        assert state is not None and state.note_keys == {"kb"}
        assert state.labels == {"sla-high"} and state.fields == {"response_due": None}
        store.record_error("desk", "1", "http", "GET https://u:hunter2@x/ failed", T0)
        store.forget("desk", "2")
    assert store.ticket("desk", "2") is None
    assert store.count("notes") == 1 and store.count("errors", kind="http") == 1
    assert store.count("tickets", tracker="desk") == 3


def test_the_first_sync_mark_is_kept_once(store: BaseStore) -> None:
    store.mark_first_sync("desk", T0)
    with pytest.raises(RuntimeError), store.cycle():
        raise RuntimeError("killed before the first cycle committed")
    store.mark_first_sync("desk", T0 + timedelta(hours=1))
    assert store.first_sync("desk") == T0 and store.first_sync("ops") is None


def test_open_store_picks_the_backend(tmp_path: Path, pg_server: PgServer,
                                      pg_url: str) -> None:
    with open_store(tmp_path / "x.sqlite") as st:
        assert isinstance(st, Store) and not st.shared
    with open_store(pg_url, password=pg_server.bridge_password) as st:
        assert isinstance(st, PostgresStore) and st.shared
        assert st.describe() == pg_url


# -- PostgreSQL only -------------------------------------------------------------------------

def test_a_wrong_password_is_a_clear_error_that_never_shows_it(pg_url: str) -> None:
    with pytest.raises(StoreError) as e:
        PostgresStore(pg_url, password="wrong-Password-42")
    assert "wrong-Password-42" not in str(e.value)
    assert "password authentication failed" in str(e.value)


def test_a_version_4_store_is_migrated(pg_server: PgServer, pg_url: str) -> None:
    with PostgresStore(pg_url, password=pg_server.bridge_password) as st, st.cycle():
        _record(st, "7", None)
    with pg_server.admin(pg_url.rsplit("/", 1)[1]) as db:  # as version 4 left it
        for column in ("created", "url", "subject", "reopens"):
            db.execute(f"ALTER TABLE tickets DROP COLUMN {column}")
        db.execute("DROP TABLE leases")
        db.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    with PostgresStore(pg_url, password=pg_server.bridge_password) as st:
        assert st.schema_version == SCHEMA_VERSION
        t = st.ticket("desk", "7")
        assert t is not None and t.labels == {"sla-high"}
        row = st._x("SELECT created, url, subject, reopens FROM tickets WHERE key='7'")
        assert tuple(row.fetchone()) == (None, None, None, 0)
        assert st.acquire("desk", "a", TTL) is not None  # v6: the leases table is there


def test_a_newer_store_is_refused(pg_server: PgServer, pg_url: str) -> None:
    PostgresStore(pg_url, password=pg_server.bridge_password).close()
    with pg_server.admin(pg_url.rsplit("/", 1)[1]) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    from tracker_bridge.errors import ConfigError

    with pytest.raises(ConfigError, match="schema version 99"):
        PostgresStore(pg_url, password=pg_server.bridge_password)


def test_leases_acquire_renew_release_and_list(pg_store: PostgresStore) -> None:
    a, b = owner_id(), owner_id()
    la = pg_store.acquire("desk", a, TTL)
    assert la is not None and la.token == 1 and la.owner == a and la.remaining() > 0
    assert pg_store.acquire("desk", b, TTL) is None  # held, unexpired
    again = pg_store.acquire("desk", a, TTL)  # its own owner again: renewed, same token
    assert again is not None and again.token == 1 and again.acquired_at == la.acquired_at
    renewed = pg_store.renew(la)
    assert renewed.token == 1 and renewed.expires_at >= la.expires_at
    (info,) = pg_store.leases()
    assert (info.tracker, info.owner, info.token, info.handovers, info.expired) == \
        ("desk", a, 1, 0, False)
    pg_store.release(renewed)
    lb = pg_store.acquire("desk", b, TTL)  # released: taken at once, the token moves on
    assert lb is not None and lb.token == 2
    (info,) = pg_store.leases()
    assert (info.owner, info.token, info.handovers) == (b, 2, 1)
    with pytest.raises(LeaseLost, match="lost by") as e:
        pg_store.renew(la)
    assert (e.value.current_owner, e.value.current_token) == (b, 2)


def test_an_expired_lease_is_taken_over_by_the_database_clock(pg_store: PostgresStore) -> None:
    a, b = owner_id(), owner_id()
    la = pg_store.acquire("desk", a, timedelta(milliseconds=200))
    assert la is not None
    lb = None
    done = threading.Event()
    for _ in range(600):  # the condition, not a duration: a ceiling of about a minute
        lb = pg_store.acquire("desk", b, TTL)
        if lb is not None:
            break
        done.wait(0.1)
    assert lb is not None and lb.token == la.token + 1
    with pytest.raises(LeaseLost):
        pg_store.check_fence(la)


def test_a_stale_fencing_token_commits_nothing(pg_server: PgServer, pg_url: str) -> None:
    old = PostgresStore(pg_url, password=pg_server.bridge_password)
    new = old.reopen()
    try:
        a, b = owner_id(), owner_id()
        la = old.acquire("desk", a, TTL)
        assert la is not None
        with old.cycle(fence=la):  # the owner's cycle commits
            old.set_cursor("desk", "1", at=T0)
            _record(old, "1", None)
        with pytest.raises(LeaseLost), old.cycle(fence=la):
            old.set_cursor("desk", "2", at=T0)
            _record(old, "2", None)
            old.record_write("desk", "2", {"labels": ["sla-high"]}, T0)
            old.release(la)  # (as if it expired) another daemon takes the tracker ...
            lb = new.acquire("desk", b, TTL)
            assert lb is not None and lb.token == 2
        # ... and nothing of the old owner's second cycle was recorded
        assert new.get_cursor("desk") == "1"
        assert new.ticket("desk", "2") is None and new.count("writes") == 0
        with new.cycle(fence=lb):
            new.set_cursor("desk", "3", at=T0)
        assert old.get_cursor("desk") == "3"
    finally:
        old.close()
        new.close()


def test_a_takeover_waits_for_the_owners_commit(pg_server: PgServer, pg_url: str) -> None:
    """The fence check locks the lease row: an acquire racing the commit waits for it, and
    then finds the lease still held (the commit came first) — never both."""
    owner = PostgresStore(pg_url, password=pg_server.bridge_password)
    rival = owner.reopen()
    try:
        la = owner.acquire("desk", "a", TTL)
        assert la is not None
        got: list[object] = []
        with owner.cycle(fence=la):
            owner.set_cursor("desk", "9", at=T0)
            owner._check_fence_in_transaction(la)  # the row is locked until our COMMIT
            t = threading.Thread(target=lambda: got.append(rival.acquire("desk", "b", TTL)))
            t.start()
            t.join(2)  # it cannot finish while we hold the row (it would need our lock)
            assert t.is_alive() and got == []
        t.join(120)
        assert got == [None] and rival.get_cursor("desk") == "9"
    finally:
        owner.close()
        rival.close()


# -- a sync over the memory backend ------------------------------------------------------------



def test_a_sync_over_the_memory_backend_with_the_postgresql_store(
        tmp_path: Path, pg_store: PostgresStore) -> None:
    MemoryTracker.forget_all()
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "policy": "policy.yaml", "trackers": [{"name": "desk", "backend": "memory",
                                               "options": {"instance": "desk"},
                                               "write": WRITE}]}))
    pm = get_plugin_manager(load_entrypoints=False)
    cfg = load_config(tmp_path / "c.yaml", pm=pm)
    desk = MemoryTracker.named("desk")
    desk.clock = lambda: T0
    desk.create("Printer down", key="1", created=T0, fields={"priority": "High"})
    desk.create("Question", key="2", created=T0, fields={"priority": "Low"})
    try:
        r1 = run_once(cfg, now=T0 + timedelta(minutes=30), pm=pm, store=pg_store)
        assert r1.ok, r1.errors
        writes = len(desk.writes)
        assert r1.trackers[0].writes["tickets"] == 2 and writes > 0
        r2 = run_once(cfg, now=T0 + timedelta(minutes=30), pm=pm, store=pg_store)
        assert r2.ok and r2.trackers[0].writes["tickets"] == 0 and len(desk.writes) == writes
        assert pg_store.count("tickets") == 2 and pg_store.count("cycles") == 2
        assert pg_store.count("verdicts") >= 2 and pg_store.count("verdict_metrics") >= 2
        assert pg_store.ticket("desk", "1").labels == {"sla-high"}
    finally:
        MemoryTracker.forget_all()
