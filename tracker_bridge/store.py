"""The SQLite state store: cursors, what the bridge wrote, and every verdict.

One file (``state:`` in the config), WAL mode so that ``report`` can read while the daemon
writes. A sync cycle runs inside ``with store.cycle():``, one transaction: either everything
the cycle learned is recorded, or (a crash, a kill) nothing is, and the next cycle starts from
the previous cursor. That is safe because nothing in here is the only record of a write:

- a tracker's *cursor* only moves after that tracker's writes are done, so a lost cycle is
  re-fetched and re-diffed, and the diff of a ticket already written is empty;
- *notes* are found on the ticket itself by their marker (``backend.posted_note_keys``); the
  ``notes`` table is a second line of defence (a tracker whose history lags), never the first.

So deleting the file loses history for reports, never correctness.

Times are stored as UTC ISO 8601 text with microseconds, which sorts as time does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .core.verdict import Verdict
from .errors import ConfigError, StoreError
from .masking import mask_secrets

SCHEMA_VERSION = 5

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
    fields         TEXT NOT NULL DEFAULT '{}',  -- deadline fields after our writes
    next_change    TEXT,      -- when the verdict changes by itself: re-fetch by key then
    retry          INTEGER NOT NULL DEFAULT 0,  -- a write failed: re-fetch next cycle
    ticket_updated TEXT,
    evaluated_at   TEXT,
    written_at     TEXT,
    breached       TEXT NOT NULL DEFAULT '[]',  -- metrics breached at the last evaluation
    -- already resolved/closed when the tracker's first sync found it: read, never written,
    -- until it is reopened (no KB notes or labels on years of history)
    adopted        INTEGER NOT NULL DEFAULT 0,
    -- {label: first cycle that saw it} for labels the policy reads (the escalation request)
    -- that the ticket carries with no history event adding them
    label_seen     TEXT NOT NULL DEFAULT '{}',
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
    id           INTEGER PRIMARY KEY,
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
    verdict_id INTEGER NOT NULL REFERENCES verdicts (id) ON DELETE CASCADE,
    metric     TEXT NOT NULL,
    state      TEXT NOT NULL,
    elapsed_s  REAL NOT NULL,
    target_s   REAL,
    due        TEXT,
    stopped_at TEXT,
    PRIMARY KEY (verdict_id, metric)
);
-- every diff written to a tracker
CREATE TABLE IF NOT EXISTS writes (
    id      INTEGER PRIMARY KEY,
    tracker TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      TEXT NOT NULL,
    diff    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS errors (
    id      INTEGER PRIMARY KEY,
    tracker TEXT NOT NULL,
    key     TEXT,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cycles (
    id          INTEGER PRIMARY KEY,
    now         TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    report      TEXT NOT NULL
);
"""


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


class Store:
    """The state store. Use one per process; ``cycle()`` wraps each sync cycle."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in cycle())
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        except sqlite3.Error as e:
            raise ConfigError(str(path), [("state", f"cannot open the state store: {e}")]) \
                from None
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints
        self._in_cycle = False
        self._migrate()

    def _version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone() \
            else None
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self._version()
        if version == SCHEMA_VERSION:
            return  # the common case needs no write lock (a daemon may hold it)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("CREATE TABLE IF NOT EXISTS meta "
                            "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                msg = (f"the state store {self.path} has schema version {version}; this "
                       f"tracker-bridge knows up to {SCHEMA_VERSION} (upgrade tracker-bridge)")
                raise ConfigError(str(self.path), [("state", msg)])
            if version < SCHEMA_VERSION:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                if 1 <= version < 2:  # v2: tickets.breached (the breach counter's memory)
                    self.db.execute("ALTER TABLE tickets ADD COLUMN breached TEXT NOT NULL "
                                    "DEFAULT '[]'")
                if 1 <= version < 3:  # v3: tickets.adopted (history read, never written)
                    self.db.execute("ALTER TABLE tickets ADD COLUMN adopted INTEGER NOT NULL "
                                    "DEFAULT 0")
                if 1 <= version < 4:  # v4: tickets.label_seen (labels without history)
                    self.db.execute("ALTER TABLE tickets ADD COLUMN label_seen TEXT NOT NULL "
                                    "DEFAULT '{}'")
                if 1 <= version < 5:  # v5: what reports show (filled in by the next sync)
                    for column in ("created TEXT", "url TEXT", "subject TEXT",
                                   "reopens INTEGER NOT NULL DEFAULT 0"):
                        self.db.execute(f"ALTER TABLE tickets ADD COLUMN {column}")
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                                (str(SCHEMA_VERSION),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def cycle(self, *, rollback: bool = False) -> Iterator[Store]:
        """One transaction: committed when the block ends, rolled back on an exception.

        :param rollback: roll back even on success (a dry run records nothing)
        """
        if self._in_cycle:
            msg = "cycles do not nest"
            raise RuntimeError(msg)
        try:
            # a real cycle takes the write lock at once (it will write); a dry run only reads,
            # so it does not wait for, or block, a daemon working on the same store
            self.db.execute("BEGIN" if rollback else "BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            msg = (f"the state store {self.path} is busy ({e}); is another tracker-bridge "
                   "using it?")
            raise StoreError(msg) from None
        self._in_cycle = True
        try:
            yield self
        except BaseException:
            # (a daemon abandoning a cycle may interrupt anything, even the COMMIT itself)
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("ROLLBACK" if rollback else "COMMIT")
        finally:
            self._in_cycle = False

    # -- cursors ----------------------------------------------------------------------------

    def get_cursor(self, tracker: str) -> str | None:
        row = self.db.execute("SELECT cursor FROM cursors WHERE tracker=?", (tracker,)).fetchone()
        return None if row is None else row[0]

    def set_cursor(self, tracker: str, cursor: str | None, *, at: datetime) -> None:
        self.db.execute("INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT(tracker) DO UPDATE "
                        "SET cursor=excluded.cursor, advanced_at=excluded.advanced_at",
                        (tracker, cursor, ts(at)))

    def first_sync(self, tracker: str) -> datetime | None:
        """When the bridge first began syncing ``tracker`` (None: not recorded)."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?",
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
        self.db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                        (f"first_sync:{tracker}", ts(at)))

    # -- tickets ----------------------------------------------------------------------------

    def ticket(self, tracker: str, key: str) -> TicketState | None:
        row = self.db.execute("SELECT * FROM tickets WHERE tracker=? AND key=?",
                              (tracker, key)).fetchone()
        if row is None:
            return None
        return TicketState(
            tracker=tracker, key=key, is_open=bool(row["is_open"]),
            labels=frozenset(json.loads(row["labels"])), fields=json.loads(row["fields"]),
            note_keys=frozenset(self.note_keys(tracker, key)),
            next_change=from_ts(row["next_change"]), retry=bool(row["retry"]),
            breached=frozenset(json.loads(row["breached"] or "[]")),
            adopted=bool(row["adopted"]),
            label_seen={k: datetime.fromisoformat(v)
                        for k, v in json.loads(row["label_seen"] or "{}").items()})

    def due_keys(self, tracker: str, now: datetime) -> list[str]:
        """Tickets whose verdict changes by ``now`` without an edit, or whose write failed."""
        rows = self.db.execute(
            "SELECT key FROM tickets WHERE tracker=? AND (retry=1 OR next_change <= ?) "
            "ORDER BY next_change", (tracker, ts(now)))
        return [r[0] for r in rows]

    def open_keys(self, tracker: str) -> set[str]:
        rows = self.db.execute("SELECT key FROM tickets WHERE tracker=? AND is_open=1",
                               (tracker,))
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
            sql += f" AND tracker IN ({','.join('?' * len(names))})"
            args += names
        row = self.db.execute(sql, args).fetchone()
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
        self.db.execute(
            """INSERT INTO tickets (tracker, key, status, status_group, is_open, class, plan,
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
                   reopens=max(excluded.reopens, tickets.reopens)""",
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
        rows = self.db.execute("SELECT class, breached FROM tickets WHERE tracker=? AND "
                               "is_open=1 AND breached != '[]'", (tracker,))
        for cls, breached in rows:
            for metric in json.loads(breached):
                k = (cls or "", str(metric))
                out[k] = out.get(k, 0) + 1
        return out

    def last_cycles(self, limit: int = 1) -> list[dict[str, Any]]:
        """The most recent cycles' reports, newest first (diagnostics)."""
        rows = self.db.execute("SELECT report FROM cycles ORDER BY id DESC LIMIT ?", (limit,))
        return [json.loads(r[0]) for r in rows]

    def mark_retry(self, tracker: str, key: str) -> None:
        """Fetch this ticket again next cycle (its write failed)."""
        cur = self.db.execute("UPDATE tickets SET retry=1 WHERE tracker=? AND key=?",
                              (tracker, key))
        if cur.rowcount == 0:
            self.db.execute("INSERT INTO tickets (tracker, key, is_open, retry) VALUES "
                            "(?, ?, 1, 1)", (tracker, key))

    def forget(self, tracker: str, key: str) -> None:
        """A ticket that no longer exists in the tracker: stop re-fetching it."""
        self.db.execute("DELETE FROM tickets WHERE tracker=? AND key=?", (tracker, key))

    # -- notes ------------------------------------------------------------------------------

    def note_keys(self, tracker: str, key: str) -> set[str]:
        rows = self.db.execute("SELECT note_key FROM notes WHERE tracker=? AND key=?",
                               (tracker, key))
        return {r[0] for r in rows}

    def record_notes(self, tracker: str, key: str, note_keys: Iterable[str],
                     at: datetime) -> None:
        self.db.executemany("INSERT OR IGNORE INTO notes VALUES (?, ?, ?, ?)",
                            [(tracker, key, k, ts(at)) for k in note_keys])

    # -- history for reports ----------------------------------------------------------------

    def record_verdict(self, tracker: str, key: str, verdict: Verdict, *,
                       status: str | None = None, status_group: str | None = None) -> int:
        d = verdict.to_dict(note_texts=False)
        cur = self.db.execute(
            """INSERT INTO verdicts (tracker, key, evaluated_at, status, status_group, class,
                   class_rule, plan, tier, level, labels, next_change, verdict)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (tracker, key, ts(verdict.now), status, status_group, verdict.class_,
             verdict.class_rule, verdict.plan, verdict.tier, verdict.level,
             json.dumps(sorted(verdict.labels)), ts(verdict.next_change),
             json.dumps(d, sort_keys=True, default=str)))
        vid = int(cur.lastrowid or 0)
        self.db.executemany(
            "INSERT INTO verdict_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(vid, name, m.state, m.elapsed.total_seconds(),
              None if m.target is None else m.target.total_seconds(), ts(m.due),
              ts(m.stopped_at)) for name, m in verdict.metrics.items()])
        return vid

    def record_write(self, tracker: str, key: str, diff: Mapping[str, Any],
                     at: datetime) -> None:
        self.db.execute("INSERT INTO writes (tracker, key, at, diff) VALUES (?, ?, ?, ?)",
                        (tracker, key, ts(at), json.dumps(diff, sort_keys=True)))

    def record_error(self, tracker: str, key: str | None, kind: str, message: str,
                     at: datetime) -> None:
        self.db.execute("INSERT INTO errors (tracker, key, at, kind, message) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (tracker, key, ts(at), kind, mask_secrets(message)))

    def record_cycle(self, now: datetime, finished_at: datetime, ok: bool,
                     report: Mapping[str, Any]) -> None:
        self.db.execute("INSERT INTO cycles (now, finished_at, ok, report) VALUES (?,?,?,?)",
                        (ts(now), ts(finished_at), int(ok),
                         json.dumps(_masked(report), default=str)))

    def count(self, table: str, **where: Any) -> int:
        """Rows in a table (tests and diagnostics); ``where`` filters by equality."""
        if table not in {"tickets", "notes", "verdicts", "verdict_metrics", "writes", "errors",
                         "cycles", "cursors"}:
            msg = f"unknown table {table}"
            raise ValueError(msg)
        sql = f"SELECT count(*) FROM {table}"  # table is from the fixed set above
        if where:
            sql += " WHERE " + " AND ".join(f"{k}=?" for k in where)
        return int(self.db.execute(sql, tuple(where.values())).fetchone()[0])


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
