"""One poll-evaluate-write cycle over every configured tracker: :func:`run_once`.

Per tracker, in order:

1. fetch the tickets changed since the stored cursor, plus the tickets whose stored
   ``next_change`` has come (re-fetched by key: a deadline passing changes the verdict with no
   edit in the tracker) or whose last write failed;
2. the mass-change guard: if the store knew at least ``safety.min_open`` open tickets and
   this cycle would leave none open (all closed or vanished at once: a broken filter, lost
   permissions), write nothing for that tracker and report :class:`SyncSafetyError`;
3. evaluate each ticket with the engine, and diff the verdict against what the ticket shows:
   the deadline fields (ISO 8601 seconds in the tracker's ``write.timezone``), the labels
   under the policy's prefix only, and notes whose key is neither on the ticket
   (``posted_note_keys``) nor in the store;
4. apply each non-empty diff, record it, and, only when every write of that tracker is done,
   advance its cursor.

A tracker that fails (unreachable, credentials refused, a bug in its plugin) is reported and
the others go on. With a :class:`~tracker_bridge.retry.RetryPolicy` (the daemon passes one),
reads are retried on ``BackendUnavailable``, and a failed write is retried only after
re-fetching the ticket and recomputing its diff, so a write whose answer was lost is never
repeated blindly (its note is found on the ticket by its marker). With a ``stop`` event, a
tracker's part ends between two tickets once the event is set: what was written is recorded,
the cursor stays, and the next cycle redoes the rest. A single ticket refused by the tracker (``TicketWriteRejected``) is
reported and retried next cycle; the rest of that tracker goes on. What the cycle learns is
recorded in one store transaction (see store.py for why a crash in the middle is safe), and
that transaction is short: while the trackers are read and written, the store is only read
and the records wait in a :class:`RecordBuffer`; they are written together at the end. So a
tracker hanging on a request holds no store lock, and the daemon's other trackers (each in a
thread of its own, with a store connection of its own) record their cycles meanwhile. With a
``fence`` (a lease of a shared PostgreSQL store) the store checks in that same transaction that
this daemon still owns the tracker, and records nothing if it does not.

Running it twice in a row writes nothing the second time: the second diff is empty.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .backend import Backend, Diff
from .config import BridgeConfig, TrackerConfig
from .core.ticket import Ticket
from .errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    SyncSafetyError,
    TicketNotFound,
    TicketWriteRejected,
    TrackerBridgeError,
)
from .plan import (
    CLOSED_GROUPS,
    Plan,
    TicketRecord,
    compute_diff,
    format_deadline,
    owned_labels,
    plan,
    sanitize,
)
from .report import SyncError, SyncReport, TrackerReport
from .retry import NO_RETRY, CycleStopped, RetryPolicy
from .store import Store, open_store

if TYPE_CHECKING:
    import pluggy

    from .core.policy import Policy

log = logging.getLogger(__name__)

#: the names other modules and plugins import from here (the cycle's public shape)
__all__ = ["CLOSED_GROUPS", "SyncError", "SyncReport", "TrackerReport", "before_write",
           "compute_diff", "format_deadline", "history_mark", "make_backend", "owned_labels",
           "run_once", "ticket_fetched"]


# -- the cycle ----------------------------------------------------------------------------------


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, BackendAuthError):
        return "auth"
    if isinstance(exc, BackendUnavailable):
        return "unavailable"
    if isinstance(exc, TicketWriteRejected):
        return "rejected"
    if isinstance(exc, SyncSafetyError):
        return "safety"
    if isinstance(exc, BackendError):
        return "backend"
    if isinstance(exc, CycleStopped):
        return "stopped"
    if isinstance(exc, TrackerBridgeError):
        return "error"
    return "internal"


def make_backend(pm: pluggy.PluginManager, tracker: TrackerConfig) -> Backend:
    """Build the backend for one tracker through the plugin registry."""
    from .manager import backend_class

    return backend_class(pm, tracker.backend).from_config(tracker)


def run_once(config: BridgeConfig, *, now: datetime | None = None, dry_run: bool = False,
             pm: pluggy.PluginManager | None = None, store: Store | None = None,
             trackers: Iterable[str] | None = None, force: bool = False,
             backends: MutableMapping[str, Backend] | None = None,
             retry: RetryPolicy | None = None,
             stop: threading.Event | None = None, fence: Any = None,
             abandon: threading.Event | None = None) -> SyncReport:
    """One sync cycle over every configured tracker (or those named in ``trackers``).

    :param config: the loaded config (its policy already loaded)
    :param now: the instant to evaluate at (tz-aware); default: the clock
    :param dry_run: compute the diffs but write nothing to trackers or to the store
    :param pm: the plugin manager (default: a new one with entry points)
    :param store: an open store (default: open ``config.state`` for this call)
    :param trackers: only these tracker names
    :param force: skip the mass-change guard (an admin who checked)
    :param backends: a cache of built backends by tracker name, kept across cycles by a
        daemon (connections are reused); backends built here are closed unless cached
    :param retry: how tracker calls are retried (default: not at all)
    :param stop: once set, each tracker's part ends before its next ticket (the daemon's
        SIGTERM, or a lease lost); its cursor stays where it was
    :param fence: the lease the records are fenced by (``store.cycle(fence=...)``, a shared
        PostgreSQL store); the store refuses the records when it is stale
    :param abandon: once set, the cycle's records are not committed at all (a daemon that
        gave up waiting for this cycle at its stop: as if the process had been killed)
    :return: the cycle's report; ``report.next_change`` tells a daemon when to wake (the
        earliest stored instant after ``now``)
    """
    from .manager import get_plugin_manager

    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        msg = "run_once: now must be timezone-aware"
        raise ValueError(msg)
    pm = pm or get_plugin_manager()
    own_store = store is None
    st = store or open_store(config.state, password=config.state_password)
    wanted = None if trackers is None else set(trackers)
    selected = [t for t in config.trackers if wanted is None or t.name in wanted]
    report = SyncReport(now=now, dry_run=dry_run)
    try:
        if not dry_run:
            for tc in selected:  # committed before the cycle: see Store.mark_first_sync
                if st.get_cursor(tc.name) is None and st.first_sync(tc.name) is None:
                    st.mark_first_sync(tc.name, now)
        rec = RecordBuffer(st)
        # the trackers' work: the store is only read, the records wait in ``rec``
        for tc in selected:
            tr = TrackerReport(tc.name)
            report.trackers.append(tr)
            backend = None
            try:
                backend = backends.get(tc.name) if backends is not None else None
                if backend is None:
                    backend = make_backend(pm, tc)
                    if backends is not None:
                        backends[tc.name] = backend
                _sync_tracker(config, tc, backend, rec, pm, now, dry_run, force, tr,
                              retry or NO_RETRY, stop)
            except CycleStopped:
                tr.aborted = tr.stopped = True
            except Exception as e:  # one tracker failing never stops the others
                tr.aborted = True
                tr.retry_after = getattr(e, "retry_after", None)
                kind, msg = _error_kind(e), tc.mask(_message(e))
                tr.errors.append(SyncError(tc.name, kind, msg))
                if kind == "internal":
                    log.exception("%s: unexpected error", tc.name)
                if not dry_run:
                    rec.record_error(tc.name, None, kind, msg, now)
            finally:
                if backend is not None and backends is None:
                    _close(backend)
        if abandon is not None and abandon.is_set():
            for tr in report.trackers:
                tr.aborted = tr.stopped = True
        elif not dry_run:
            rec.record_cycle(now, datetime.now(UTC), report.ok, report.to_dict())
            # one short transaction: a crash before its commit loses the cycle's records,
            # which the next cycle finds again (the cursor did not move)
            with st.cycle(fence=fence):
                rec.flush()
        report.next_change = st.earliest_next_change((t.name for t in selected), after=now)
    finally:
        if own_store:
            st.close()
    try:
        pm.hook.tracker_bridge_cycle_done(report=report)
    except Exception as e:
        report.hook_errors.append(f"tracker_bridge_cycle_done: {type(e).__name__}: {e}")
    return report


#: the store's methods that record; everything else of the store only reads
_RECORDS = frozenset({"record_ticket", "record_verdict", "record_write", "record_notes",
                      "record_error", "record_cycle", "mark_retry", "forget", "set_cursor"})


class RecordBuffer:
    """The store as a cycle sees it while it talks to trackers: reads go to the store, records
    wait here until :meth:`flush` writes them, in order, inside the cycle's transaction.

    A cycle never reads back what it recorded itself (each ticket is planned once, from the
    state stored before the cycle), so a cycle sees the same store through this as it did
    inside one long transaction; only the store's locks are now held for the flush alone.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name in _RECORDS:
            def record(*args: Any, **kwargs: Any) -> None:
                self.pending.append((name, args, kwargs))
            return record
        return getattr(self.store, name)

    def flush(self) -> int:
        """Write the waiting records to the store (inside its cycle); how many there were."""
        n = len(self.pending)
        for name, args, kwargs in self.pending:
            getattr(self.store, name)(*args, **kwargs)
        self.pending.clear()
        return n


def _message(e: BaseException) -> str:
    if isinstance(e, TrackerBridgeError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _close(backend: Backend) -> None:
    try:
        backend.close()
    except Exception:
        log.warning("closing backend %s failed", backend.tracker.name, exc_info=True)


def ticket_fetched(pm: pluggy.PluginManager, tc: TrackerConfig, t: Ticket) -> Ticket:
    """The ticket after the ``tracker_bridge_ticket_fetched`` hook (checked: same key)."""
    replaced = pm.hook.tracker_bridge_ticket_fetched(tracker=tc, ticket=t)
    if replaced is not None:
        if not isinstance(replaced, Ticket) or replaced.key != t.key:
            msg = f"tracker_bridge_ticket_fetched returned {replaced!r} for ticket {t.key}"
            raise TypeError(msg)
        return replaced
    return t


def before_write(pm: pluggy.PluginManager, tc: TrackerConfig, policy: Policy, p: Plan) -> Diff:
    """The plan's diff after the ``tracker_bridge_before_write`` hook (cut back to what the
    bridge owns)."""
    diff = p.diff
    if diff:
        changed = pm.hook.tracker_bridge_before_write(tracker=tc, ticket=p.ticket,
                                                      verdict=p.verdict, diff=diff)
        if changed is not None:
            diff = sanitize(changed, diff, policy)
    return diff


def history_mark(st: Store, tracker: str, now: datetime) -> datetime | None:
    """The instant before which a closed ticket is history (see :func:`plan.is_history`):
    when the bridge first began syncing the tracker; ``now`` for a tracker never synced; and
    ``None`` for a store from before the mark existed that has a cursor already (nothing
    unseen is history then)."""
    cursor = st.get_cursor(tracker)
    return st.first_sync(tracker) or (now if cursor is None else None)


def reopen_count(ticket: Ticket, policy: Policy, now: datetime) -> int:
    """How often the ticket's history (up to ``now``) took it from a resolved or closed
    status back to an open one (for reports)."""
    count = 0
    for ev in ticket.history:
        if ev.kind != "status" or ev.at > now or ev.to is None:
            continue
        if ev.from_ is not None and policy.status_group(ev.from_) in CLOSED_GROUPS \
                and policy.status_group(ev.to) not in CLOSED_GROUPS:
            count += 1
    return count


def _record(st: Store, tc: TrackerConfig, p: Plan, rec: TicketRecord, now: datetime,
            written: bool, policy: Policy) -> None:
    t = p.ticket
    st.record_ticket(
        tc.name, t.key, status=rec.status, status_group=rec.status_group,
        is_open=rec.is_open, class_=rec.class_, plan=rec.plan, labels=rec.labels,
        fields=rec.fields, next_change=rec.next_change, retry=False,
        ticket_updated=rec.ticket_updated, evaluated_at=now, written=written,
        breached=rec.breached, adopted=rec.adopted, label_seen=rec.label_seen,
        created=t.created, url=t.url, subject=t.subject or None,
        reopens=reopen_count(t, policy, now))
    st.record_verdict(tc.name, p.ticket.key, p.verdict, status=p.ticket.status,
                      status_group=p.status_group)


def _sync_tracker(config: BridgeConfig, tc: TrackerConfig, backend: Backend, st: Store,
                  pm: pluggy.PluginManager, now: datetime, dry_run: bool, force: bool,
                  tr: TrackerReport, retry: RetryPolicy = NO_RETRY,
                  stop: threading.Event | None = None) -> None:
    """One tracker's part of the cycle: fetch -> plan -> apply -> record."""
    policy = config.policy_obj.with_status_overrides(tc.status_overrides())

    def read(fn: Any, *args: Any) -> Any:
        def counted(*a: Any) -> Any:
            calls[0] += 1
            return fn(*a)
        calls = [0]
        try:
            return retry.call(counted, *args)
        finally:
            tr.retries["read"] += max(0, calls[0] - 1)

    # -- fetch ------------------------------------------------------------------------------
    cursor = st.get_cursor(tc.name)
    tr.cursor_before = cursor
    first_sync = history_mark(st, tc.name, now)
    result = read(backend.fetch_changed, cursor)
    tickets: dict[str, Ticket] = {}
    for t in result.tickets:  # repeats are allowed: the last one is the newest
        tickets[t.key] = t
    tr.fetched = len(tickets)

    gone: list[str] = []
    for key in st.due_keys(tc.name, now):
        if key in tickets:
            continue
        try:
            tickets[key] = read(backend.fetch_ticket, key)
            tr.refetched += 1
        except TicketNotFound:
            gone.append(key)

    for key, t in list(tickets.items()):
        tickets[key] = ticket_fetched(pm, tc, t)

    groups = {k: policy.status_group(t.status) for k, t in tickets.items()}
    if not force:
        _safety_guard(config, tc, st, tickets, groups, gone)

    for key in sorted(tickets, key=_key_order):
        if stop is not None and stop.is_set():
            # between two tickets: what is written is recorded, the cursor stays, the next
            # cycle fetches the rest again
            raise CycleStopped(f"{tc.name}: stopped before ticket {key}")
        stored = st.ticket(tc.name, key)
        # -- plan (pure) --------------------------------------------------------------------
        try:
            p = plan(policy, tc, tickets[key], stored, now, first_sync=first_sync)
        except Exception as e:  # a ticket the engine cannot read must not stop the others
            msg = tc.mask(_message(e))
            tr.errors.append(SyncError(tc.name, "evaluate", msg, key))
            if not dry_run:
                st.record_error(tc.name, key, "evaluate", msg, now)
            continue
        tr.evaluated += 1
        if p.adopted:
            # History is read, not rewritten: closed before the bridge first looked at the
            # tracker, it stays untouched until it is reopened.
            tr.adopted += 1
            _record(st, tc, p, p.record(policy), now, written=False, policy=policy)
            continue

        # -- apply --------------------------------------------------------------------------
        diff = before_write(pm, tc, policy, p)
        written = False
        if diff and not dry_run:
            try:
                for attempt in retry.attempts_iter():
                    with attempt:
                        if attempt.retry_state.attempt_number > 1:
                            # The last write failed, perhaps after the tracker applied it (a
                            # lost answer). Never repeat it blindly: read the ticket again and
                            # write only what it still lacks (its notes are found by marker).
                            tr.retries["write"] += 1
                            # (not retried on its own: a failure here is this attempt's)
                            t = ticket_fetched(pm, tc, backend.fetch_ticket(key))
                            p = plan(policy, tc, t, stored, now, first_sync=first_sync)
                            diff = before_write(pm, tc, policy, p)
                        if diff:
                            backend.apply(diff)
            except TicketWriteRejected as e:
                msg = tc.mask(_message(e))
                tr.errors.append(SyncError(tc.name, "rejected", msg, key))
                st.record_error(tc.name, key, "rejected", msg, now)
                st.mark_retry(tc.name, key)
                st.record_verdict(tc.name, key, p.verdict, status=p.ticket.status,
                                  status_group=p.status_group)
                continue
            # any other error propagates: the tracker is aborted and its cursor stays
            if diff:
                written = True
                st.record_write(tc.name, key, diff.to_dict(), now)
                if diff.notes:
                    st.record_notes(tc.name, key, [n.key for n in diff.notes], now)

        # -- record -------------------------------------------------------------------------
        if diff:
            tr.count_diff(diff)
        for name in sorted(p.newly_breached):
            tr.breaches[(p.verdict.class_, name)] += 1
        _record(st, tc, p, p.record(policy, diff), now, written=written, policy=policy)

    for key in gone:
        st.forget(tc.name, key)
    if not dry_run:
        st.set_cursor(tc.name, result.cursor, at=now)
    tr.cursor_after = result.cursor


def _key_order(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def _safety_guard(config: BridgeConfig, tc: TrackerConfig, st: Store,
                  tickets: Mapping[str, Ticket], groups: Mapping[str, str],
                  gone: list[str]) -> None:
    was_open = st.open_keys(tc.name)
    if len(was_open) < config.safety.min_open:
        return
    closing = {k for k in was_open if k in tickets and groups[k] in CLOSED_GROUPS}
    vanished = set(gone) & was_open
    still_open = was_open - closing - vanished
    opening = {k for k in tickets if k not in was_open and groups[k] not in CLOSED_GROUPS}
    if still_open or opening:
        return
    msg = (f"{len(was_open)} tickets were open and this cycle would leave none open "
           f"({len(closing)} now closed or resolved, {len(vanished)} no longer found); "
           "nothing was written for this tracker. If this is real, run "
           "`tracker-bridge sync --once --force` once")
    raise SyncSafetyError(f"{tc.name}: {msg}")
