"""A private PostgreSQL for the state-store tests (tests/pg/server.py).

Skipped with the reason when PostgreSQL cannot be started and ``$CI`` is unset; in CI that is
a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tracker_bridge.store_pg import PostgresStore

from .server import PgServer, start


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = start()
    except Exception as e:  # not installed, initdb/pg_ctl refused, no psycopg...
        msg = f"no private PostgreSQL for the tests: {e}"
        if _ci():
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database for this test (the password: ``pg_server.bridge_password``)."""
    return pg_server.new_database()


@pytest.fixture
def pg_store(pg_server: PgServer, pg_url: str) -> Iterator[PostgresStore]:
    st = PostgresStore(pg_url, password=pg_server.bridge_password)
    try:
        yield st
    finally:
        st.close()
