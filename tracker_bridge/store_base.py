"""What both state stores share: the schema, its migrations, every query, leases' types.

The SQLite store (:mod:`tracker_bridge.store`) and the PostgreSQL store
(:mod:`tracker_bridge.store_pg`) run the same SQL. The few dialect differences are isolated
here as class attributes and one DDL template: placeholders (``?`` here, turned into ``%s`` by
the PostgreSQL store), row ids (``INTEGER PRIMARY KEY`` vs an identity column), ``max`` vs
``greatest``, floating point and timestamp column types. Schema versions and migrations are
the same for both (in code, below: six small additive steps, run in one transaction under a
lock; a migration tool would add a dependency and a second schema history for no gain).

Times are stored as UTC ISO 8601 text with microseconds, which sorts as time does. Leases
(PostgreSQL only) are the exception: they are ``timestamptz`` compared with the database's
clock.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .core.verdict import Verdict
from .errors import ConfigError, StoreError
from .masking import mask_secrets

#: v6: the ``leases`` table (used by the PostgreSQL store; created, unused, in SQLite)
SCHEMA_VERSION = 6

# {id}: an auto-increment primary key; {real}: a double; {time}: a lease instant
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- the incremental-fetch position of each tracker, as the backend returned it
CREATE TABLE IF NOT EXISTS cursors (
    tracker     TEXT PRIMARY KEY,
    cursor      TEXT,
    advanced_at TEXT NOT NULL
);
-- the latest known state of each ticket the bridge has seen
CREATE TABLE IF NOT EXISTS tickets (
    tracker        TEXT NOT NULL,
    key            TEXT NOT NULL,
    status         TEXT,
    status_group   TEXT,
    is_open        INTEGER NOT NULL,
    class          TEXT,
    plan           TEXT,
    labels         TEXT NOT NULL DEFAULT '[]',  -- owned labels on the ticket after our writes
    fields         TEXT NOT NULL DEFAULT '{{}}',  -- deadline fields after our writes
    next_change    TEXT,      -- when the verdict changes by itself: re-fetch by key then
    retry          INTEGER NOT NULL DEFAULT 0,  -- a write failed: re-fetch next cycle
    ticket_updated TEXT,
    evaluated_at   TEXT,
    written_at     TEXT,
    breached       TEXT NOT NULL DEFAULT '[]',  -- metrics breached at the last evaluation
    -- already resolved/closed when the tracker's first sync found it: read, never written,
    -- until it is reopened (no KB notes or labels on years of history)
    adopted        INTEGER NOT NULL DEFAULT 0,
    -- {{label: first cycle that saw it}} for labels the policy reads (the escalation request)
    -- that the ticket carries with no history event adding them
    label_seen     TEXT NOT NULL DEFAULT '{{}}',
    -- for reports (v5): when the ticket was created, its web page, its subject (customer
    -- text: escaped wherever shown) and how often it went from resolved/closed back to open
    created        TEXT,
    url            TEXT,
    subject        TEXT,
    reopens        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tracker, key)
);
CREATE INDEX IF NOT EXISTS tickets_next_change ON tickets (next_change);
-- every note the bridge posted (the marker on the ticket is the primary record)
CREATE TABLE IF NOT EXISTS notes (
    tracker   TEXT NOT NULL,
    key       TEXT NOT NULL,
    note_key  TEXT NOT NULL,
    posted_at TEXT NOT NULL,
    PRIMARY KEY (tracker, key, note_key)
);
-- every evaluation, for reports (metrics also in verdict_metrics, so SQL can group them)
CREATE TABLE IF NOT EXISTS verdicts (
    id           {id},
    tracker      TEXT NOT NULL,
    key          TEXT NOT NULL,
    evaluated_at TEXT NOT NULL,
    status       TEXT,
    status_group TEXT,
    class        TEXT NOT NULL,
    class_rule   TEXT,
    plan         TEXT,
    tier         TEXT,
    level        TEXT,
    labels       TEXT NOT NULL,
    next_change  TEXT,
    verdict      TEXT NOT NULL   -- Verdict.to_dict() as JSON
);
CREATE INDEX IF NOT EXISTS verdicts_ticket ON verdicts (tracker, key, evaluated_at);
CREATE INDEX IF NOT EXISTS verdicts_time ON verdicts (evaluated_at);
CREATE TABLE IF NOT EXISTS verdict_metrics (
    verdict_id BIGINT NOT NULL REFERENCES verdicts (id) ON DELETE CASCADE,
    metric     TEXT NOT NULL,
    state      TEXT NOT NULL,
    elapsed_s  {real} NOT NULL,
    target_s   {real},
    due        TEXT,
    stopped_at TEXT,
    PRIMARY KEY (verdict_id, metric)
);
-- every diff written to a tracker
CREATE TABLE IF NOT EXISTS writes (
    id      {id},
    tracker TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      TEXT NOT NULL,
    diff    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS errors (
    id      {id},
    tracker TEXT NOT NULL,
    key     TEXT,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cycles (
    id          {id},
    now         TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    report      TEXT NOT NULL
);
-- v6: which daemon owns each tracker (PostgreSQL, see store_pg.py). token is the fencing
-- token: it grows by one whenever the lease changes hands and is checked at every commit
CREATE TABLE IF NOT EXISTS leases (
    tracker     TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    token       BIGINT NOT NULL,
    acquired_at {time} NOT NULL,
    renewed_at  {time} NOT NULL,
    expires_at  {time} NOT NULL,
    handovers   BIGINT NOT NULL DEFAULT 0
);
"""

#: the additive steps from each older version (run on stores at 1 <= version < N)
_STEPS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (2, ("ALTER TABLE tickets ADD COLUMN breached TEXT NOT NULL DEFAULT '[]'",)),
    (3, ("ALTER TABLE tickets ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0",)),
    (4, ("ALTER TABLE tickets ADD COLUMN label_seen TEXT NOT NULL DEFAULT '{}'",)),
    (5, tuple(f"ALTER TABLE tickets ADD COLUMN {c}" for c in (
        "created TEXT", "url TEXT", "subject TEXT", "reopens INTEGER NOT NULL DEFAULT 0"))),
    (6, ()),  # the leases table: created by _SCHEMA's CREATE TABLE IF NOT EXISTS
)


def ts(dt: datetime | None) -> str | None:
    """A tz-aware instant as sortable UTC text."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        msg = f"naive datetime {dt!r} (the store keeps instants only)"
        raise ValueError(msg)
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class TicketState:
    """What the store remembers about one ticket."""

    tracker: str
    key: str
    is_open: bool
    labels: frozenset[str]
    fields: Mapping[str, str | None]
    note_keys: frozenset[str]
    next_change: datetime | None
    retry: bool
    #: the metrics breached at the last evaluation
    breached: frozenset[str] = frozenset()
    #: closed before the bridge watched it: recorded, never written until reopened
    adopted: bool = False
    #: labels the policy reads that the ticket carries with no history event adding them:
    #: the first cycle that saw each (see plan.with_label_history)
    label_seen: Mapping[str, datetime] = field(default_factory=dict)


# -- leases ---------------------------------------------------------------------------------

def owner_id() -> str:
    """A daemon's identity in leases: ``host:pid:random8`` (unique per process start)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lease:
    """One daemon's ownership of one tracker, as the store granted it."""

    tracker: str
    owner: str
    #: the fencing token: +1 whenever the lease changes hands, checked at every commit
    token: int
    #: when this owner took it (database clock)
    acquired_at: datetime
    #: when it runs out unless renewed (database clock)
    expires_at: datetime
    ttl: timedelta
    #: ``time.monotonic()`` by which this owner must stop acting on the tracker: taken
    #: before the database call, plus ``ttl``, so it is never later than ``expires_at``
    deadline: float

    def remaining(self) -> float:
        """Seconds before ``deadline`` (<= 0: write nothing more to the tracker; renew)."""
        return self.deadline - time.monotonic()


@dataclass(frozen=True)
class LeaseInfo:
    """A lease as listed for status pages and metrics (all times: the database's clock)."""

    tracker: str
    owner: str
    token: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    #: times the lease changed owner (the first acquire is not one)
    handovers: int
    #: ``expires_at`` had passed when listed
    expired: bool
    #: how long the current owner has held it
    age: timedelta


class LeaseLost(StoreError):
    """The lease moved on (another owner took it, the token grew): nothing was recorded."""

    def __init__(self, lease: Lease, current_owner: str | None,
                 current_token: int | None) -> None:
        self.tracker, self.owner, self.token = lease.tracker, lease.owner, lease.token
        self.current_owner, self.current_token = current_owner, current_token
        now = ("nobody holds it" if current_owner is None
               else f"{current_owner} holds it with token {current_token}")
        super().__init__(f"lease on tracker {lease.tracker!r} lost by {lease.owner} "
                         f"(token {lease.token}): {now}; this cycle was rolled back")


# -- the store ------------------------------------------------------------------------------

class BaseStore:
    """The queries both stores run; subclasses provide the connection and the dialect.

    Use one per thread for cycles; ``cycle()`` wraps each sync cycle in one transaction.
    """

    #: several daemons may share this store (leases); False: one daemon (a file lock)
    shared: bool = False
    _ddl: Mapping[str, str] = {"id": "INTEGER PRIMARY KEY", "real": "REAL", "time": "TEXT"}
    _greatest = "max"

    def __init__(self) -> None:
        self._in_cycle = False

    # the dialect's connection, provided by subclasses
    def _x(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Execute one statement; returns a cursor (``fetchone``, ``fetchall``, iteration)."""
        raise NotImplementedError

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _begin(self, *, write: bool) -> None:
        raise NotImplementedError

    def _end(self, *, commit: bool) -> None:
        raise NotImplementedError

    def _in_transaction(self) -> bool:
        raise NotImplementedError

    def _check_fence_in_transaction(self, lease: Lease) -> None:
        """Raise LeaseLost unless ``lease`` still holds (called just before COMMIT)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The store for logs and messages (never a password)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def reopen(self) -> BaseStore:
        """A second, independent connection to the same state (one per worker thread)."""
        raise NotImplementedError

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------

    def _schema_statements(self) -> list[str]:
        text = _SCHEMA.format(**self._ddl)
        return [s for s in text.split(";") if s.strip()]

    def _migrate_in_transaction(self, version: int) -> None:
        """Bring a store at ``version`` (0: empty) to SCHEMA_VERSION (a transaction is open)."""
        if version > SCHEMA_VERSION:
            msg = (f"the state store {self.describe()} has schema version {version}; this "
                   f"tracker-bridge knows up to {SCHEMA_VERSION} (upgrade tracker-bridge)")
            raise ConfigError(self.describe(), [("state", msg)])
        if version == SCHEMA_VERSION:
            return
        for stmt in self._schema_statements():
            self._x(stmt)
        for to, stmts in _STEPS:
            if 1 <= version < to:
                for stmt in stmts:
                    self._x(stmt)
        self._x("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
                "SET value=excluded.value", (str(SCHEMA_VERSION),))

    @property
    def schema_version(self) -> int:
        row = self._x("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    # -- cycles -----------------------------------------------------------------------------

    @contextmanager
    def cycle(self, *, rollback: bool = False, fence: Lease | None = None) -> Iterator[Any]:
        """One transaction: committed when the block ends, rolled back on an exception.

        :param rollback: roll back even on success (a dry run records nothing)
        :param fence: the lease under which this cycle runs: checked in the same
            transaction just before COMMIT; if it moved on, everything is rolled back and
            :class:`LeaseLost` is raised
        """
        if self._in_cycle:
            msg = "cycles do not nest"
            raise RuntimeError(msg)
        # a real cycle takes the write lock at once (it will write); a dry run only reads,
        # so it does not wait for, or block, a daemon working on the same store
        self._begin(write=not rollback)
        self._in_cycle = True
        try:
            yield self
            if fence is not None and not rollback:
                self._check_fence_in_transaction(fence)
        except BaseException:
            # (a daemon abandoning a cycle may interrupt anything, even the COMMIT itself)
            if self._in_transaction():
                self._end(commit=False)
            raise
        else:
            self._end(commit=not rollback)
        finally:
            self._in_cycle = False

    # -- cursors ----------------------------------------------------------------------------

    def get_cursor(self, tracker: str) -> str | None:
        row = self._x("SELECT cursor FROM cursors WHERE tracker=?", (tracker,)).fetchone()
        return None if row is None else row[0]

    def set_cursor(self, tracker: str, cursor: str | None, *, at: datetime) -> None:
        self._x("INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT(tracker) DO UPDATE "
                "SET cursor=excluded.cursor, advanced_at=excluded.advanced_at",
                (tracker, cursor, ts(at)))

    def first_sync(self, tracker: str) -> datetime | None:
        """When the bridge first began syncing ``tracker`` (None: not recorded)."""
        row = self._x("SELECT value FROM meta WHERE key=?",
                      (f"first_sync:{tracker}",)).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def mark_first_sync(self, tracker: str, at: datetime) -> None:
        """Record the start of ``tracker``'s first sync, once, committed at once.

        Called before the first cycle's transaction: a cycle killed after writing to the
        tracker but before its commit must not move the mark, or tickets closed after that
        attempt would look like history and lose their KB note.
        """
        if self._in_cycle:
            msg = "mark_first_sync runs outside a cycle"
            raise RuntimeError(msg)
        self._x("INSERT INTO meta VALUES (?, ?) ON CONFLICT DO NOTHING",
                (f"first_sync:{tracker}", ts(at)))

    # -- tickets ----------------------------------------------------------------------------

    def ticket(self, tracker: str, key: str) -> TicketState | None:
        row = self._x("SELECT is_open, labels, fields, next_change, retry, breached, adopted, "
                      "label_seen FROM tickets WHERE tracker=? AND key=?",
                      (tracker, key)).fetchone()
        if row is None:
            return None
        is_open, labels, fields, next_change, retry, breached, adopted, label_seen = row
        return TicketState(
            tracker=tracker, key=key, is_open=bool(is_open),
            labels=frozenset(json.loads(labels)), fields=json.loads(fields),
            note_keys=frozenset(self.note_keys(tracker, key)),
            next_change=from_ts(next_change), retry=bool(retry),
            breached=frozenset(json.loads(breached or "[]")),
            adopted=bool(adopted),
            label_seen={k: datetime.fromisoformat(v)
                        for k, v in json.loads(label_seen or "{}").items()})

    def due_keys(self, tracker: str, now: datetime) -> list[str]:
        """Tickets whose verdict changes by ``now`` without an edit, or whose write failed."""
        rows = self._x(
            "SELECT key FROM tickets WHERE tracker=? AND (retry=1 OR next_change <= ?) "
            "ORDER BY next_change", (tracker, ts(now))).fetchall()
        return [r[0] for r in rows]

    def open_keys(self, tracker: str) -> set[str]:
        rows = self._x("SELECT key FROM tickets WHERE tracker=? AND is_open=1",
                       (tracker,)).fetchall()
        return {r[0] for r in rows}

    def earliest_next_change(self, trackers: Iterable[str] | None = None, *,
                             after: datetime | None = None) -> datetime | None:
        """The first instant any stored ticket's verdict changes by itself (for the daemon).

        :param after: only instants after this one (a ticket that stays due because its
            evaluation fails must not make a daemon wake in a loop)
        """
        sql = "SELECT min(next_change) FROM tickets WHERE next_change IS NOT NULL"
        args: list[Any] = []
        if after is not None:
            sql += " AND next_change > ?"
            args.append(ts(after))
        if trackers is not None:
            names = list(trackers)
            if not names:
                return None
            sql += f" AND tracker IN ({','.join('?' * len(names))})"
            args += names
        row = self._x(sql, args).fetchone()
        return from_ts(row[0]) if row and row[0] else None

    def record_ticket(self, tracker: str, key: str, *, status: str | None,
                      status_group: str | None, is_open: bool, class_: str | None,
                      plan: str | None, labels: Iterable[str],
                      fields: Mapping[str, str | None], next_change: datetime | None,
                      retry: bool, ticket_updated: datetime | None, evaluated_at: datetime,
                      written: bool, breached: Iterable[str] = (),
                      adopted: bool = False,
                      label_seen: Mapping[str, datetime] | None = None,
                      created: datetime | None = None, url: str | None = None,
                      subject: str | None = None, reopens: int = 0) -> None:
        """Upsert a ticket's state after it was evaluated (and written, if ``written``).

        ``created``, ``url``, ``subject`` and ``reopens`` are for reports only.
        """
        self._x(
            f"""INSERT INTO tickets (tracker, key, status, status_group, is_open, class, plan,
                   labels, fields, next_change, retry, ticket_updated, evaluated_at, written_at,
                   breached, adopted, label_seen, created, url, subject, reopens)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(tracker, key) DO UPDATE SET status=excluded.status,
                   status_group=excluded.status_group, is_open=excluded.is_open,
                   class=excluded.class, plan=excluded.plan, labels=excluded.labels,
                   fields=excluded.fields, next_change=excluded.next_change,
                   retry=excluded.retry, ticket_updated=excluded.ticket_updated,
                   evaluated_at=excluded.evaluated_at,
                   written_at=coalesce(excluded.written_at, tickets.written_at),
                   breached=excluded.breached, adopted=excluded.adopted,
                   label_seen=excluded.label_seen,
                   created=coalesce(excluded.created, tickets.created),
                   url=coalesce(excluded.url, tickets.url),
                   subject=coalesce(excluded.subject, tickets.subject),
                   reopens={self._greatest}(excluded.reopens, tickets.reopens)""",
            (tracker, key, status, status_group, int(is_open), class_, plan,
             json.dumps(sorted(labels)), json.dumps(dict(fields), sort_keys=True),
             ts(next_change), int(retry), ts(ticket_updated), ts(evaluated_at),
             ts(evaluated_at) if written else None, json.dumps(sorted(breached)),
             int(adopted),
             json.dumps({k: ts(v) for k, v in (label_seen or {}).items()}, sort_keys=True),
             ts(created), url, subject, int(reopens)))

    def breached_open(self, tracker: str) -> dict[tuple[str, str], int]:
        """Open tickets currently breached, by (class, metric) (for the metrics gauge)."""
        out: dict[tuple[str, str], int] = {}
        rows = self._x("SELECT class, breached FROM tickets WHERE tracker=? AND "
                       "is_open=1 AND breached != '[]'", (tracker,)).fetchall()
        for cls, breached in rows:
            for metric in json.loads(breached):
                k = (cls or "", str(metric))
                out[k] = out.get(k, 0) + 1
        return out

    def last_cycles(self, limit: int = 1) -> list[dict[str, Any]]:
        """The most recent cycles' reports, newest first (diagnostics)."""
        rows = self._x("SELECT report FROM cycles ORDER BY id DESC LIMIT ?",
                       (limit,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def mark_retry(self, tracker: str, key: str) -> None:
        """Fetch this ticket again next cycle (its write failed)."""
        self._x("INSERT INTO tickets (tracker, key, is_open, retry) VALUES (?, ?, 1, 1) "
                "ON CONFLICT(tracker, key) DO UPDATE SET retry=1", (tracker, key))

    def forget(self, tracker: str, key: str) -> None:
        """A ticket that no longer exists in the tracker: stop re-fetching it."""
        self._x("DELETE FROM tickets WHERE tracker=? AND key=?", (tracker, key))

    # -- notes ------------------------------------------------------------------------------

    def note_keys(self, tracker: str, key: str) -> set[str]:
        rows = self._x("SELECT note_key FROM notes WHERE tracker=? AND key=?",
                       (tracker, key)).fetchall()
        return {r[0] for r in rows}

    def record_notes(self, tracker: str, key: str, note_keys: Iterable[str],
                     at: datetime) -> None:
        self._many("INSERT INTO notes VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   [(tracker, key, k, ts(at)) for k in note_keys])

    # -- history for reports ----------------------------------------------------------------

    def record_verdict(self, tracker: str, key: str, verdict: Verdict, *,
                       status: str | None = None, status_group: str | None = None) -> int:
        d = verdict.to_dict(note_texts=False)
        row = self._x(
            """INSERT INTO verdicts (tracker, key, evaluated_at, status, status_group, class,
                   class_rule, plan, tier, level, labels, next_change, verdict)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id""",
            (tracker, key, ts(verdict.now), status, status_group, verdict.class_,
             verdict.class_rule, verdict.plan, verdict.tier, verdict.level,
             json.dumps(sorted(verdict.labels)), ts(verdict.next_change),
             json.dumps(d, sort_keys=True, default=str))).fetchone()
        vid = int(row[0])
        self._many(
            "INSERT INTO verdict_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(vid, name, m.state, m.elapsed.total_seconds(),
              None if m.target is None else m.target.total_seconds(), ts(m.due),
              ts(m.stopped_at)) for name, m in verdict.metrics.items()])
        return vid

    def record_write(self, tracker: str, key: str, diff: Mapping[str, Any],
                     at: datetime) -> None:
        self._x("INSERT INTO writes (tracker, key, at, diff) VALUES (?, ?, ?, ?)",
                (tracker, key, ts(at), json.dumps(diff, sort_keys=True)))

    def record_error(self, tracker: str, key: str | None, kind: str, message: str,
                     at: datetime) -> None:
        self._x("INSERT INTO errors (tracker, key, at, kind, message) VALUES (?, ?, ?, ?, ?)",
                (tracker, key, ts(at), kind, mask_secrets(message)))

    def record_cycle(self, now: datetime, finished_at: datetime, ok: bool,
                     report: Mapping[str, Any]) -> None:
        self._x("INSERT INTO cycles (now, finished_at, ok, report) VALUES (?,?,?,?)",
                (ts(now), ts(finished_at), int(ok), json.dumps(_masked(report), default=str)))

    def count(self, table: str, **where: Any) -> int:
        """Rows in a table (tests and diagnostics); ``where`` filters by equality."""
        if table not in {"tickets", "notes", "verdicts", "verdict_metrics", "writes", "errors",
                         "cycles", "cursors", "leases"}:
            msg = f"unknown table {table}"
            raise ValueError(msg)
        sql = f"SELECT count(*) FROM {table}"  # table is from the fixed set above
        if where:
            for k in where:
                if not k.isidentifier():
                    msg = f"unknown column {k!r}"
                    raise ValueError(msg)
            sql += " WHERE " + " AND ".join(f"{k}=?" for k in where)
        return int(self._x(sql, tuple(where.values())).fetchone()[0])

    # -- leases (the SQLite store: one daemon, a trivial lease; see store_pg for the real) ---

    def acquire(self, tracker: str, owner: str, ttl: timedelta) -> Lease | None:
        """Take ``tracker``'s lease (free, expired, or ``owner``'s already: renewed).

        :return: the lease, or None while another owner holds an unexpired one
        """
        raise NotImplementedError

    def renew(self, lease: Lease, ttl: timedelta | None = None) -> Lease:
        """Extend ``lease`` (same token); :class:`LeaseLost` if it moved on."""
        raise NotImplementedError

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up now (another daemon takes it at once); a no-op if it moved on."""
        raise NotImplementedError

    def check_fence(self, lease: Lease) -> None:
        """:class:`LeaseLost` unless ``lease`` is still the tracker's current lease."""
        raise NotImplementedError

    def leases(self) -> list[LeaseInfo]:
        """Every tracker's lease (status pages, metrics)."""
        raise NotImplementedError


class Reader:
    """A read-only view of a state store, for ``report`` and the status page: one snapshot
    (a read-only transaction), no migration, never a write, errors as :class:`StoreError`
    (the password masked). The few SQL dialect bits readers need (JSON in text columns) come
    from :meth:`json_int` and :meth:`json_text_array`, so readers' SQL stays shared. Open
    one with ``tracker_bridge.store.open_reader``."""

    #: "sqlite" or "postgresql"
    dialect: str = ""

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one query (``?`` placeholders)."""
        raise NotImplementedError

    def columns(self, table: str) -> set[str]:
        """The columns ``table`` has (a store from an older version lacks some)."""
        raise NotImplementedError

    def json_int(self, column: str, key: str) -> str:
        """SQL: the integer at top-level ``key`` of the JSON text in ``column`` (or NULL)."""
        raise NotImplementedError

    def json_text_array(self, expr: str) -> str:
        """SQL (an aggregate): the distinct non-NULL values of ``expr`` as JSON array text."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteReader(Reader):
    """A read-only connection to an SQLite store file (``mode=ro``: never created, never
    migrated; WAL lets it read while a daemon writes)."""

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str] | sqlite3.Connection, *,
                 timeout: float = 30) -> None:
        """:param path: the store file, or a connection already open (read as it is)"""
        if isinstance(path, sqlite3.Connection):
            self.db, self.path = path, "(an open connection)"
            return
        self.path = str(path)
        try:
            uri = f"{Path(path).resolve().as_uri()}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, timeout=timeout)
            self.db.execute("BEGIN")  # one snapshot for every query of this reader
        except sqlite3.Error as e:
            raise StoreError(f"cannot read the state store {self.path}: {e}") from None

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self.db.execute(sql, tuple(args))]
        except sqlite3.Error as e:
            raise StoreError(f"cannot read the state store {self.path}: {e}") from None

    def columns(self, table: str) -> set[str]:
        if not table.isidentifier():
            msg = f"unknown table {table!r}"
            raise ValueError(msg)
        return {r[1] for r in self.rows(f"PRAGMA table_info({table})")}

    def json_int(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def json_text_array(self, expr: str) -> str:
        return f"json_group_array(DISTINCT {expr}) FILTER (WHERE {expr} IS NOT NULL)"

    def describe(self) -> str:
        return self.path

    def close(self) -> None:
        self.db.close()


def _masked(value: Any) -> Any:
    """``value`` with every string in it masked (the last line of defence: callers mask with
    the tracker's own secret first; here only credential-shaped text is caught)."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value
