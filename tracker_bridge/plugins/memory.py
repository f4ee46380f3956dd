"""The in-memory backend: the tests' double and the reference implementation of a backend.

Tickets are held as normalized :class:`~tracker_bridge.core.ticket.Ticket` objects in a
:class:`MemoryTracker`. Every change (a person's or the bridge's) bumps a global sequence
number; the cursor is that number, so ``fetch_changed`` is exact (no overlap window needed)
and, as with a real tracker, the bridge's own writes come back once as changes.

Config (``backend: memory``)::

    options:
      instance: demo          # share one in-process tracker by name (default: the tracker's name)
      file: tickets.json      # or keep the tickets in a JSON file (read on every call, written
                              # after every change), so that separate commands see one tracker
      allowed_labels: [...]   # optional: the label values the labels "field" accepts (check)
      latency_seconds: 0.05   # optional: a slow tracker, every call waits this long first

Tests make a tracker hang with :meth:`MemoryTracker.hold` (calls wait until an event is set).

The bridge's fields are stored as ``fields["response_due"]``/``fields["resolution_due"]``
(and ``fields["state"]``, the state line),
its labels in ``labels`` next to everyone else's, its notes as private comments by
``tracker-bridge`` ending with ``note_marker(key)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..backend import Backend, Diff, FetchResult, Problem, note_marker
from ..core.ticket import HistoryEvent, Ticket, TicketError
from ..errors import BackendError, TicketNotFound, TicketWriteRejected
from ..hookspecs import hookimpl

BRIDGE_USER = "tracker-bridge"


@dataclass
class _Fault:
    op: str
    key: str | None
    exc: Exception
    times: int | None


def _label_event(at: datetime, by: str, before: Sequence[str],
                 after: Sequence[str]) -> list[HistoryEvent]:
    """The label event of one change of a ticket's labels (none when nothing changed)."""
    added = tuple(x for x in after if x not in before)
    removed = tuple(x for x in before if x not in after)
    if not added and not removed:
        return []
    return [HistoryEvent(at=at, kind="label", by=by, added=added, removed=removed)]


class MemoryTracker:
    """An issue tracker in a Python object: tickets, a change sequence, a request log.

    Tests drive it as a person would (:meth:`create`, :meth:`update`) and inspect what the
    bridge did (:attr:`writes`, :attr:`requests`). :meth:`fail` injects faults.
    """

    _instances: ClassVar[dict[str, MemoryTracker]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "memory", *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.name = name
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.seq = 0
        self._tickets: dict[str, Ticket] = {}
        self._seqs: dict[str, int] = {}
        self._next_key = 1
        #: every non-empty diff applied, in order
        self.writes: list[Diff] = []
        #: calls by operation: fetch_changed, fetch_ticket, apply
        self.requests: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        #: calls of these operations wait until the event is set (a hanging tracker)
        self._holds: dict[str, threading.Event] = {}

    # -- shared instances -----------------------------------------------------------------

    @classmethod
    def named(cls, name: str) -> MemoryTracker:
        """The process-wide tracker called ``name`` (created on first use)."""
        with cls._lock:
            if name not in cls._instances:
                cls._instances[name] = cls(name)
            return cls._instances[name]

    @classmethod
    def forget_all(cls) -> None:
        """Drop every shared instance (tests call this between cases)."""
        with cls._lock:
            cls._instances.clear()

    # -- what a person does -----------------------------------------------------------------

    def _now(self, key: str | None = None) -> datetime:
        t = self.clock()
        if t.tzinfo is None:
            msg = "MemoryTracker clock returned a naive datetime"
            raise ValueError(msg)
        if key is not None and key in self._tickets:
            last = self._tickets[key]
            floor = max([last.created, *(e.at for e in last.history),
                         *([last.updated] if last.updated else [])])
            t = max(t, floor)  # a ticket's history never goes back in time
        return t

    def _store(self, ticket: Ticket) -> Ticket:
        self.seq += 1
        self._tickets[ticket.key] = ticket
        self._seqs[ticket.key] = self.seq
        return ticket

    def create(self, subject: str = "", *, key: str | None = None, status: str = "New",
               created: datetime | None = None, reporter: str | None = "customer",
               description: str = "", fields: Mapping[str, str | None] | None = None,
               labels: Iterable[str] = (), history: Sequence[HistoryEvent] = ()) -> Ticket:
        """Open a ticket (``key`` defaults to the next number)."""
        if key is None:
            while str(self._next_key) in self._tickets:
                self._next_key += 1
            key = str(self._next_key)
            self._next_key += 1
        if key in self._tickets:
            msg = f"{self.name}: ticket {key} exists"
            raise ValueError(msg)
        created = created or self._now()
        last = max([created, *(e.at for e in history)])
        return self._store(Ticket(
            tracker=self.name, key=key, created=created, updated=last, status=status,
            url=f"memory://{self.name}/{key}", reporter=reporter, subject=subject,
            description=description, fields=dict(fields or {}), labels=tuple(labels),
            history=tuple(history)))

    def add(self, ticket: Ticket) -> Ticket:
        """Store a ready-made ticket (e.g. from a JSON fixture) as a change."""
        return self._store(replace(ticket, tracker=self.name))

    def update(self, key: str, *, status: str | None = None,
               fields: Mapping[str, str | None] | None = None,
               labels: Iterable[str] | None = None, comment: str | None = None,
               public: bool = True, by: str = "agent", at: datetime | None = None) -> Ticket:
        """Change a ticket the way a person does in the tracker's UI, with history events."""
        t = self.get(key)
        at = at or self._now(key)
        events = list(t.history)
        if status is not None and status != t.status:
            events.append(HistoryEvent(at=at, kind="status", by=by, from_=t.status, to=status))
        new_fields = dict(t.fields)
        for f, v in (fields or {}).items():
            if new_fields.get(f) != v:
                events.append(HistoryEvent(at=at, kind="field", by=by, field=f,
                                           from_=new_fields.get(f), to=v))
                new_fields[f] = v
        if labels is not None:
            labels = tuple(labels)
            events.extend(_label_event(at, by, t.labels, labels))
        if comment is not None:
            events.append(HistoryEvent(at=at, kind="comment", by=by, public=public,
                                       text=comment))
        return self._store(replace(
            t, status=status if status is not None else t.status, fields=new_fields,
            labels=tuple(labels) if labels is not None else t.labels, history=tuple(events),
            updated=at))

    def delete(self, key: str) -> None:
        self._tickets.pop(key, None)
        self._seqs.pop(key, None)
        self.seq += 1

    def get(self, key: str) -> Ticket:
        try:
            return self._tickets[key]
        except KeyError:
            raise TicketNotFound(self.name, key) from None

    def keys(self) -> list[str]:
        return list(self._tickets)

    def fail(self, op: str, exc: Exception, *, key: str | None = None,
             times: int | None = 1) -> None:
        """Make the next ``times`` calls of ``op`` (``fetch_changed``, ``fetch_ticket``,
        ``apply``; for one ``key`` if given) raise ``exc``; ``times=None``: until cleared."""
        self._faults.append(_Fault(op, key, exc, times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def hold(self, op: str, until: threading.Event) -> None:
        """Make every call of ``op`` (``fetch_changed``, ``fetch_ticket``, ``apply``) wait
        until ``until`` is set: a tracker hanging on a request (in-process trackers only)."""
        self._holds[op] = until

    def _maybe_fail(self, op: str, key: str | None) -> None:
        hold = self._holds.get(op)
        if hold is not None:
            hold.wait()
        for f in self._faults:
            if f.op == op and (f.key is None or f.key == key):
                if f.times is not None:
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                raise f.exc

    # -- what the backend does --------------------------------------------------------------

    def changed_since(self, cursor: int) -> tuple[list[Ticket], int]:
        keys = sorted((s, k) for k, s in self._seqs.items() if s > cursor)
        return [self._tickets[k] for _, k in keys], self.seq

    def apply(self, diff: Diff) -> None:
        t = self.get(diff.key)
        at = self._now(diff.key)
        fields = dict(t.fields)
        fields.update(diff.set_fields)
        labels = [x for x in t.labels if x not in diff.remove_labels]
        labels += sorted(x for x in diff.add_labels if x not in labels)
        events = list(t.history)
        events.extend(_label_event(at, BRIDGE_USER, t.labels, labels))
        for n in diff.notes:
            events.append(HistoryEvent(at=at, kind="comment", by=BRIDGE_USER, public=False,
                                       text=f"{n.text}\n\n{note_marker(n.key)}"))
        self._store(replace(t, fields=fields, labels=tuple(labels), history=tuple(events),
                            updated=at))
        self.writes.append(diff)

    # -- JSON persistence (the ``file`` option) ---------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq,
                "tickets": [{"seq": self._seqs[k], "ticket": t.to_dict()}
                            for k, t in self._tickets.items()]}

    @classmethod
    def from_json(cls, name: str, data: Any, source: str) -> MemoryTracker:
        """A tracker from ``to_json()`` output, or from a plain list of ticket objects."""
        tr = cls(name)
        items = data.get("tickets", []) if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            msg = f"{source}: expected a list of tickets or {{seq, tickets}}"
            raise ValueError(msg)
        for i, item in enumerate(items):
            raw = item.get("ticket", item) if isinstance(item, Mapping) else item
            try:
                t = Ticket.from_dict({**raw, "tracker": name})
            except TicketError as e:
                msg = f"{source}: tickets[{i}]: {e}"
                raise ValueError(msg) from None
            tr.add(t)
            if isinstance(item, Mapping) and "seq" in item:
                tr._seqs[t.key] = int(item["seq"])
        # the sequence never goes back: a cursor handed out before the file was saved stays
        # valid after it is read again
        saved = int(data.get("seq", 0)) if isinstance(data, Mapping) else 0
        tr.seq = max(saved, tr.seq, *tr._seqs.values())
        return tr


class MemoryOptions(BaseModel):
    """``options:`` of a ``backend: memory`` tracker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance: str | None = Field(None, description="shared in-process tracker name")
    file: Path | None = Field(None, description="JSON file holding the tickets")
    allowed_labels: list[str] | None = Field(
        None, description="label values the labels field accepts (None: any)")
    latency_seconds: float = Field(
        0.0, ge=0, le=60, description="a slow tracker: every call (fetch or write) waits "
        "this long before it is answered (benchmarks, parallel-tracker tests)")
    write_delay_seconds: float = Field(
        0.0, ge=0, le=60, description="a slow tracker: wait this long after each write "
        "(crash tests use it to widen the window between a write and the store's commit)")


class MemoryBackend(Backend):
    """Reads and writes a :class:`MemoryTracker`; see the module docstring."""

    name = "memory"
    config_model = MemoryOptions

    def __init__(self, tracker: Any) -> None:
        super().__init__(tracker)
        opts: MemoryOptions = self.options
        self.opts = opts
        self._file = tracker.resolve_path(opts.file) if opts.file else None
        self._shared = None if self._file else MemoryTracker.named(opts.instance or tracker.name)

    # the file is re-read on each call so that a person (or a test) editing it is seen
    def _open(self) -> MemoryTracker:
        if self._shared is not None:
            return self._shared
        assert self._file is not None
        if not self._file.exists():
            return MemoryTracker(self.tracker.name)
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            return MemoryTracker.from_json(self.tracker.name, data, str(self._file))
        except (OSError, ValueError) as e:
            raise BackendError(self.tracker.name, f"cannot read {self._file}: {e}") from None

    def _save(self, tr: MemoryTracker) -> None:
        if self._file is None:
            return
        # write-then-rename: a crash never leaves half a file
        fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=self._file.name + ".")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(tr.to_json(), fh, indent=1)
        os.replace(tmp, self._file)

    def _ticket(self, t: Ticket) -> Ticket:
        # the tracker's name in the config wins; a configured default plan fills an empty field
        fields = dict(t.fields)
        if not fields.get("plan") and self.tracker.plan_for(None):
            fields["plan"] = self.tracker.plan_for(None)
        return replace(t, tracker=self.tracker.name, fields=fields)

    def _latency(self) -> None:
        if self.opts.latency_seconds:
            time.sleep(self.opts.latency_seconds)

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        self._latency()
        tr = self._open()
        tr.requests["fetch_changed"] += 1
        tr._maybe_fail("fetch_changed", None)
        try:
            since = int(cursor) if cursor is not None else 0
        except ValueError:
            raise BackendError(self.tracker.name, f"invalid cursor {cursor!r}") from None
        tickets, seq = tr.changed_since(since)
        return FetchResult([self._ticket(t) for t in tickets], str(seq))

    def fetch_ticket(self, key: str) -> Ticket:
        self._latency()
        tr = self._open()
        tr.requests["fetch_ticket"] += 1
        tr._maybe_fail("fetch_ticket", key)
        return self._ticket(tr.get(key))

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # an empty diff is not a write: the ticket's updated time must not move
        self._latency()
        with self._file_lock():  # read-modify-write: processes sharing the file take turns
            self._apply(diff)
        if self.opts.write_delay_seconds:
            time.sleep(self.opts.write_delay_seconds)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self._file is None:
            yield
            return
        fd = os.open(f"{self._file}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _apply(self, diff: Diff) -> None:
        tr = self._open()
        tr.requests["apply"] += 1
        tr._maybe_fail("apply", diff.key)
        if self.opts.allowed_labels is not None:
            bad = sorted(set(diff.add_labels) - set(self.opts.allowed_labels))
            if bad:
                raise TicketWriteRejected(self.tracker.name, diff.key,
                                          f"labels field does not accept {', '.join(bad)}")
        tr.apply(diff)
        self._save(tr)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        problems = []
        if self._file is not None and self._file.exists():
            try:
                self._open()
            except BackendError as e:
                problems.append(Problem("options.file", str(e)))
        if self.opts.allowed_labels is not None:
            allowed = set(self.opts.allowed_labels)
            missing = tuple(dict.fromkeys(x for x in labels if x not in allowed))
            if missing:
                problems.append(Problem(
                    "labels field", f"{len(missing)} label values are missing",
                    missing_values=missing))
        return problems


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    registry.add_backend(MemoryBackend)
