"""A PostgreSQL store whose connection broke (the server ended it: a restart, a dropped
network) is usable again: the cycle that met the broken connection fails and records nothing,
the next one opens a new connection and records. Without that, a daemon cut off for less than
its lease would keep the lease and fail every cycle on the dead connection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tracker_bridge.errors import StoreError
from tracker_bridge.store_pg import PostgresStore

from .server import PgServer

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _terminate(server: PgServer, st: PostgresStore, dbname: str) -> None:
    with server.admin(dbname) as db:
        row = db.execute("SELECT pg_terminate_backend(%s)", (st.db.info.backend_pid,)).fetchone()
    assert row is not None and row[0] is True


def test_a_broken_connection_is_replaced_before_the_next_cycle(
        pg_server: PgServer, pg_url: str) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    st = PostgresStore(pg_url, password=pg_server.bridge_password)
    try:
        with st.cycle():
            st.record_error("desk", "1", "test", "before", NOW)
        _terminate(pg_server, st, dbname)
        with pytest.raises(StoreError) as e, st.cycle():
            st.record_error("desk", "2", "test", "on the dead connection", NOW)
        assert pg_server.bridge_password not in str(e.value)
        for _ in range(2):  # the next cycles: a new connection, recorded
            with st.cycle():
                st.record_error("desk", "3", "test", "after", NOW)
        assert st.count("errors") == 3
        assert st.count("errors", key="2") == 0
        # outside a cycle too (the first-sync mark is written before a cycle)
        _terminate(pg_server, st, dbname)
        with pytest.raises(StoreError):
            st.get_cursor("desk")
        st.mark_first_sync("desk", NOW)
        assert st.first_sync("desk") == NOW
    finally:
        st.close()
