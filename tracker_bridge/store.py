"""The state store: cursors, what the bridge wrote, and every verdict.

SQLite by default (``state: FILE`` in the config: one file, zero setup, one daemon holding a
file lock), or PostgreSQL (``state: postgresql://user@host/db``: several daemons sharing the
trackers through leases, :mod:`tracker_bridge.store_pg`). Both run the same SQL and schema
(:mod:`tracker_bridge.store_base`); open either with :func:`open_store`.

SQLite runs in WAL mode so that ``report`` can read while the daemon writes. A sync cycle runs
inside ``with store.cycle():``, one transaction: either everything the cycle learned is
recorded, or (a crash, a kill) nothing is, and the next cycle starts from the previous cursor.
That is safe because nothing in here is the only record of a write:

- a tracker's *cursor* only moves after that tracker's writes are done, so a lost cycle is
  re-fetched and re-diffed, and the diff of a ticket already written is empty;
- *notes* are found on the ticket itself by their marker (``backend.posted_note_keys``); the
  ``notes`` table is a second line of defence (a tracker whose history lags), never the first.

So deleting the file loses history for reports, never correctness.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import ConfigError, StoreError
from .store_base import (
    SCHEMA_VERSION,
    BaseStore,
    Lease,
    LeaseInfo,
    LeaseLost,
    Reader,
    SqliteReader,
    TicketState,
    from_ts,
    owner_id,
    ts,
)

__all__ = [
    "SCHEMA_VERSION", "BaseStore", "Lease", "LeaseInfo", "LeaseLost", "Reader", "Store",
    "TicketState", "from_ts", "is_postgresql_url", "open_reader", "open_store", "owner_id",
    "ts",
]

_FAR = datetime(9999, 1, 1, tzinfo=UTC)


def is_postgresql_url(state: object) -> bool:
    """Whether the config's ``state`` names a PostgreSQL database rather than a file."""
    return isinstance(state, str) and state.lower().startswith(("postgresql://",
                                                                "postgres://"))


def open_store(state: str | Path, *, password: str | None = None) -> BaseStore:
    """The store the config's ``state`` names: a file path → :class:`Store` (SQLite), a
    ``postgresql://user@host:port/db`` URL → ``PostgresStore`` (``password``: the resolved
    ``state_credentials``)."""
    if is_postgresql_url(state):
        from .store_pg import PostgresStore

        return PostgresStore(str(state), password=password)
    return Store(state)


def open_reader(state: str | Path, *, password: str | None = None) -> Reader:
    """A read-only view of the store ``state`` names (``report``, the status page): never
    creates, migrates or writes it; :class:`StoreError` (password masked) when it cannot be
    read."""
    if is_postgresql_url(state):
        from .store_pg import PostgresReader

        return PostgresReader(str(state), password=password)
    return SqliteReader(state)


class Store(BaseStore):
    """The SQLite store. Use one per process; ``cycle()`` wraps each sync cycle."""

    shared = False

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in cycle())
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        except sqlite3.Error as e:
            raise ConfigError(str(path), [("state", f"cannot open the state store: {e}")]) \
                from None
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints
        self._leases: dict[str, tuple[Lease, datetime]] = {}
        self._lease_lock = threading.Lock()
        self._migrate()

    def describe(self) -> str:
        return str(self.path)

    def reopen(self) -> Store:
        return Store(self.path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def _x(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, args)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    def _begin(self, *, write: bool) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as e:
            msg = (f"the state store {self.path} is busy ({e}); is another tracker-bridge "
                   "using it?")
            raise StoreError(msg) from None

    def _end(self, *, commit: bool) -> None:
        self.db.execute("COMMIT" if commit else "ROLLBACK")

    def _in_transaction(self) -> bool:
        return self.db.in_transaction

    def _version(self) -> int:
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return  # the common case needs no write lock (a daemon may hold it)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("CREATE TABLE IF NOT EXISTS meta "
                            "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._migrate_in_transaction(self._version())
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # -- leases: one daemon per SQLite file (its fcntl lock), so every lease is granted -----

    def acquire(self, tracker: str, owner: str, ttl: timedelta) -> Lease | None:
        with self._lease_lock:
            held = self._leases.get(tracker)
            if held is not None and held[0].owner == owner:
                return held[0]
            now = datetime.now(UTC)
            lease = Lease(tracker, owner, 1 if held is None else held[0].token + 1, now, _FAR,
                          ttl, float("inf"))
            self._leases[tracker] = (lease, now)
            return lease

    def renew(self, lease: Lease, ttl: timedelta | None = None) -> Lease:
        self.check_fence(lease)
        return lease

    def release(self, lease: Lease) -> None:
        with self._lease_lock:
            held = self._leases.get(lease.tracker)
            if held is not None and held[0] == lease:
                del self._leases[lease.tracker]

    def check_fence(self, lease: Lease) -> None:
        with self._lease_lock:
            held = self._leases.get(lease.tracker)
        if held is None or held[0] != lease:
            raise LeaseLost(lease, None if held is None else held[0].owner,
                            None if held is None else held[0].token)

    def _check_fence_in_transaction(self, lease: Lease) -> None:
        self.check_fence(lease)

    def leases(self) -> list[LeaseInfo]:
        now = datetime.now(UTC)
        with self._lease_lock:
            held = sorted(self._leases.values(), key=lambda h: h[0].tracker)
        return [LeaseInfo(le.tracker, le.owner, le.token, le.acquired_at, at, le.expires_at,
                          0, False, now - le.acquired_at) for le, at in held]

