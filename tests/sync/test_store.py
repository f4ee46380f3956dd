"""The SQLite state store: schema version, one transaction per cycle, WAL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracker_bridge.errors import ConfigError
from tracker_bridge.store import SCHEMA_VERSION, Store

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _record(st: Store, key: str, next_change: datetime | None, is_open: bool = True) -> None:
    st.record_ticket("desk", key, status="New", status_group="new", is_open=is_open,
                     class_="high", plan="standard", labels=["sla-high"],
                     fields={"response_due": None}, next_change=next_change, retry=False,
                     ticket_updated=T0, evaluated_at=T0, written=True)


def test_schema_version_and_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        assert st.schema_version == SCHEMA_VERSION
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(tmp_path / "s.sqlite") as st:  # reopening migrates nothing, loses nothing
        assert st.schema_version == SCHEMA_VERSION


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "s.sqlite").close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        Store(tmp_path / "s.sqlite")


def test_a_cycle_is_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        with st.cycle():
            st.set_cursor("desk", "10", at=T0)
            _record(st, "1", T0)
        with pytest.raises(RuntimeError), st.cycle():
            st.set_cursor("desk", "20", at=T0)
            _record(st, "2", T0)
            raise RuntimeError("crash in the middle of a cycle")
        with st.cycle(rollback=True):  # a dry run
            st.set_cursor("desk", "30", at=T0)
    with Store(path) as st:
        assert st.get_cursor("desk") == "10"
        assert st.ticket("desk", "1") is not None and st.ticket("desk", "2") is None


def test_the_first_sync_mark_is_kept_once_and_outlives_a_cycle_rolled_back(
        tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        assert st.first_sync("desk") is None
        st.mark_first_sync("desk", T0)
        with pytest.raises(RuntimeError), st.cycle():
            raise RuntimeError("killed before the first cycle committed")
        st.mark_first_sync("desk", T0 + timedelta(hours=1))  # a later attempt: ignored
        with st.cycle(), pytest.raises(RuntimeError, match="outside a cycle"):
            st.mark_first_sync("ops", T0)
    with Store(path) as st:
        assert st.first_sync("desk") == T0 and st.first_sync("ops") is None


def test_cycles_do_not_nest(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st, st.cycle():
        nested = st.cycle()
        with pytest.raises(RuntimeError, match="do not nest"):
            nested.__enter__()


def test_due_keys_and_the_earliest_change(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st, st.cycle():
        _record(st, "1", T0 + timedelta(minutes=30))
        _record(st, "2", T0 + timedelta(minutes=10, microseconds=1))
        _record(st, "3", None, is_open=False)
        st.mark_retry("desk", "4")
        assert st.due_keys("desk", T0) == ["4"]
        assert st.due_keys("desk", T0 + timedelta(minutes=10)) == ["4"]
        assert set(st.due_keys("desk", T0 + timedelta(minutes=11))) == {"2", "4"}
        assert st.earliest_next_change() == T0 + timedelta(minutes=10, microseconds=1)
        assert st.earliest_next_change(["other"]) is None
        assert st.open_keys("desk") == {"1", "2", "4"}
        state = st.ticket("desk", "1")
        assert state.labels == {"sla-high"} and state.fields == {"response_due": None}
        st.record_notes("desk", "1", ["kb", "kb"], T0)
        assert st.ticket("desk", "1").note_keys == {"kb"}
        st.forget("desk", "1")
        assert st.ticket("desk", "1") is None


def test_naive_times_are_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st, st.cycle(), pytest.raises(ValueError):
        st.set_cursor("desk", "1", at=datetime(2026, 3, 2))


def test_a_busy_store_is_a_clear_error_and_a_dry_run_is_not_blocked(tmp_path: Path) -> None:
    from tracker_bridge.errors import StoreError

    path = tmp_path / "s.sqlite"
    with Store(path) as daemon, daemon.cycle():
        other = Store(path)
        other.db.execute("PRAGMA busy_timeout=100")
        with pytest.raises(StoreError, match="busy"), other.cycle():
            pass
        with other.cycle(rollback=True):  # a dry run only reads
            assert other.get_cursor("desk") is None
        other.close()


@pytest.mark.parametrize("old", [1, 2, 3, 4])
def test_older_stores_are_migrated_in_place(tmp_path: Path, old: int) -> None:
    # a store as version `old` wrote it: no report columns (v5), no `label_seen` column (v4),
    # no `adopted` (v3), no `breached` (v2) on v1
    path = tmp_path / "s.sqlite"
    with Store(path) as st, st.cycle():
        _record(st, "7", None)
    db = sqlite3.connect(path)
    for column in ("created", "url", "subject", "reopens"):
        db.execute(f"ALTER TABLE tickets DROP COLUMN {column}")
    if old <= 3:
        db.execute("ALTER TABLE tickets DROP COLUMN label_seen")
    if old <= 2:
        db.execute("ALTER TABLE tickets DROP COLUMN adopted")
    if old == 1:
        db.execute("ALTER TABLE tickets DROP COLUMN breached")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(old),))
    db.commit()
    db.close()
    with Store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        t = st.ticket("desk", "7")
        assert t is not None and t.labels == {"sla-high"}
        assert t.adopted is False and t.breached == frozenset() and t.label_seen == {}
        row = st.db.execute("SELECT created, url, subject, reopens FROM tickets "
                            "WHERE key='7'").fetchone()
        assert tuple(row) == (None, None, None, 0)  # unknown until the next sync records it
