"""The ``trac`` backend: reads and writes one Trac 1.6 environment through Trac's Python API.

Trac has no REST API, and its XML-RPC plugin on PyPI (TracXMLRPC 1.1.9) is Python 2 only, so
the bridge runs on the Trac host and opens the environment (``options.env``) the way
``trac-admin`` and ``tracd`` do: ``trac.env.Environment`` and ``trac.ticket.model.Ticket``.
Every write goes through ``Ticket.save_changes``, so it shows in the ticket's change log,
its timeline and its notifications like a person's edit, authored by ``options.user``.

Reading (``fetch_changed``): the tickets whose ``changetime`` (Trac's own microseconds) is at
or after the watermark minus ``overlap_seconds``; a ``(ticket, changetime)`` pair already
returned is skipped. Every change moves ``changetime``, a comment alone included, so no
change is lost; the overlap covers a change committed after a later one (two processes
writing the same environment).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracker_bridge.backend import (
    DEADLINE_FIELDS,
    Backend,
    Diff,
    FetchResult,
    Problem,
    note_marker,
    same_deadline,
)
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.errors import (
    BackendError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)

from . import mapping as m

log = logging.getLogger(__name__)

#: the one value of ``write.notes`` this backend knows: a comment on the ticket
NOTES_MODE = "comment"
#: fields a ticket has in every Trac environment (custom ones come from ``[ticket-custom]``)
_TEXT_TYPES = ("text", "textarea")


class TracOptions(BaseModel):
    """``options:`` of a ``backend: trac`` tracker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = Field(description="path of the Trac environment (what trac-admin is given); "
                     "relative paths are read from the config file's folder")
    user: str = Field("tracker-bridge", min_length=1,
                      description="the author of the bridge's changes in the change log")
    overlap_seconds: float = Field(
        60.0, ge=0, le=3600, description="how far behind the newest change seen each poll "
        "starts again (a change committed late by another process)")


class TracBackend(Backend):
    """One Trac environment (Trac has no projects: the environment is the tracker)."""

    name = "trac"
    config_model = TracOptions

    def __init__(self, tracker: Any) -> None:
        super().__init__(tracker)
        self.opts: TracOptions = self.options
        self.path = tracker.resolve_path(self.opts.env)
        self._env: Any = None
        w = tracker.write
        self.spec = m.Spec(
            fields=dict(tracker.fields), labels=w.labels,
            deadlines={n: getattr(w, n) for n in DEADLINE_FIELDS if getattr(w, n)})

    # -- the environment -------------------------------------------------------------------

    def _open(self) -> Any:
        if self._env is None:
            from trac.core import TracError
            from trac.env import Environment

            if not self.path.is_dir():
                raise BackendError(self.tracker.name, f"no Trac environment at {self.path}")
            try:
                self._env = Environment(str(self.path))
            except TracError as e:
                raise BackendError(self.tracker.name,
                                   f"cannot open the Trac environment {self.path}: {e}") from None
        return self._env

    @contextmanager
    def _trac(self, doing: str, key: str | None = None) -> Iterator[Any]:
        """The environment, with Trac's errors turned into the bridge's."""
        from trac.core import TracError
        from trac.resource import ResourceNotFound

        env = self._open()
        try:
            yield env
        except ResourceNotFound:
            raise TicketNotFound(self.tracker.name, str(key)) from None
        except TracError as e:
            raise BackendError(self.tracker.name, f"{doing}: {e}") from None
        except Exception as e:
            # the database's own errors (sqlite3, psycopg2, ...) have no common base class:
            # a locked or unreachable database is worth a retry, anything else is reported
            text = str(e)
            if type(e).__name__ in ("OperationalError", "InterfaceError") or "locked" in text:
                raise BackendUnavailable(self.tracker.name, f"{doing}: {text}") from None
            raise

    def _ticket_id(self, key: str) -> int:
        if not str(key).isdigit():
            raise TicketNotFound(self.tracker.name, str(key), "a Trac key is a ticket number")
        return int(key)

    def _url(self, tid: int) -> str | None:
        return f"{self.tracker.url.rstrip('/')}/ticket/{tid}" if self.tracker.url else None

    def _to_ticket(self, t: Any) -> Ticket:
        return m.to_ticket(self.tracker.name, str(t.id), t.values, t.get_changelog(), self.spec,
                           url=self._url(t.id), default_plan=self.tracker.plan_for(None))

    # -- the Backend contract --------------------------------------------------------------

    def fetch_changed(self, cursor: str | None) -> FetchResult:
        from trac.ticket.model import Ticket as TracTicket

        try:
            since, seen = m.parse_cursor(cursor, self.tracker.name)
        except ValueError as e:
            raise BackendError(self.tracker.name, str(e)) from None
        overlap = int(self.opts.overlap_seconds * 1_000_000)
        with self._trac("listing changed tickets") as env:
            if since is None:
                rows = env.db_query("SELECT id, changetime FROM ticket ORDER BY changetime, id")
            else:
                rows = env.db_query("SELECT id, changetime FROM ticket WHERE changetime >= %s "
                                    "ORDER BY changetime, id", (since - overlap,))
            listed = {int(i): int(ct) for i, ct in rows}
            tickets = []
            for tid, ct in listed.items():
                if seen.get(tid) == ct:
                    continue
                try:
                    with self._trac("reading a ticket", str(tid)):
                        tickets.append(self._to_ticket(TracTicket(env, tid)))
                except TicketNotFound:
                    log.info("%s: ticket %s vanished while polling", self.tracker.name, tid)
        newest = max(listed.values(), default=since)
        if since is not None and newest is not None:
            newest = max(newest, since)
        return FetchResult(tickets, m.make_cursor(newest, listed, overlap))

    def fetch_ticket(self, key: str) -> Ticket:
        from trac.ticket.model import Ticket as TracTicket

        tid = self._ticket_id(key)
        with self._trac("reading a ticket", key) as env:
            return self._to_ticket(TracTicket(env, tid))

    def apply(self, diff: Diff) -> None:
        if not diff:
            return  # not even a read: the ticket's changetime must not move
        from trac.ticket.model import Ticket as TracTicket

        key = diff.key
        try:
            tid = self._ticket_id(key)
        except TicketNotFound as e:
            raise TicketWriteRejected(self.tracker.name, key, e.args[0]) from None
        w = self.tracker.write
        notes = [f"{n.text}\n\n{note_marker(n.key)}" for n in diff.notes] if w.notes else []
        with self._trac("writing a ticket", key) as env:
            t = TracTicket(env, tid)
            for norm, value in diff.set_fields.items():
                field = self.spec.deadlines.get(norm)
                if norm not in DEADLINE_FIELDS or field is None:
                    log.debug("%s: %s is not written to this tracker", self.tracker.name, norm)
                    continue
                if not same_deadline(t[field], value):
                    t[field] = value or ""
            if self.spec.labels and (diff.add_labels or diff.remove_labels):
                current = list(m.split_labels(t[self.spec.labels]))
                wanted = m.new_labels(current, diff.add_labels, diff.remove_labels)
                if wanted != current:
                    t[self.spec.labels] = m.join_labels(wanted)
            # the first note goes with the fields (one change); each further note is its own
            t.save_changes(author=self.opts.user, comment=notes[0] if notes else None)
            for text in notes[1:]:
                TracTicket(env, tid).save_changes(author=self.opts.user, comment=text)

    def check(self, labels: Iterable[str]) -> list[Problem]:
        from trac.ticket.api import TicketSystem

        problems: list[Problem] = []
        try:
            env = self._open()
        except BackendError as e:
            return [Problem("options.env", str(e))]
        if self.tracker.projects:
            problems.append(Problem("projects", "Trac has no projects: one environment is one "
                                    "tracker (leave projects out; plan: sets the plan)"))
        ts = TicketSystem(env)
        types = {f["name"]: f["type"] for f in ts.get_ticket_fields()}
        for norm, field in self.tracker.fields.items():
            if field not in types:
                problems.append(Problem(f"fields.{norm}", f"Trac has no ticket field {field!r} "
                                        "(a custom one is declared under [ticket-custom] in "
                                        "trac.ini)"))
        w = self.tracker.write
        for where, field in (("write.response_due", w.response_due),
                             ("write.resolution_due", w.resolution_due),
                             ("write.labels", w.labels)):
            if field is None:
                continue
            if field not in types:
                problems.append(Problem(where, f"Trac has no ticket field {field!r}"))
            elif types[field] not in _TEXT_TYPES:
                problems.append(Problem(where, f"{field!r} is a {types[field]} field; the "
                                        "bridge writes text (a text field, or keywords)"))
        if w.notes not in (None, NOTES_MODE):
            problems.append(Problem("write.notes", f"{w.notes!r}: Trac notes can only be "
                                    f"written as {NOTES_MODE!r} (a ticket comment)"))
        known = set(ts.get_all_status())
        for group, names in self.tracker.statuses.items():
            for s in names:
                if s not in known:
                    problems.append(Problem(f"statuses.{group}", f"Trac's workflow has no "
                                            f"status {s!r} (it has {', '.join(sorted(known))})"))
        bad = sorted(x for x in labels if m.split_labels(x) != (x,))
        if w.labels and bad:
            problems.append(Problem("write.labels", "labels with blanks or commas cannot be "
                                    "told apart in a Trac keywords field: "
                                    + ", ".join(map(repr, bad))))
        return problems

    def close(self) -> None:
        if self._env is not None:
            self._env.shutdown()
            self._env = None
