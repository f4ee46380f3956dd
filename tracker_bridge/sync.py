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
reported and retried next cycle; the rest of that tracker goes on. The whole cycle is one
store transaction (see store.py for why a crash in the middle is safe).

Running it twice in a row writes nothing the second time: the second diff is empty.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .backend import Backend, Diff, posted_note_keys
from .config import DEADLINE_FIELDS, BridgeConfig, TrackerConfig
from .core.ticket import Ticket
from .core.verdict import Verdict
from .errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailable,
    SyncSafetyError,
    TicketNotFound,
    TicketWriteRejected,
    TrackerBridgeError,
)
from .retry import NO_RETRY, CycleStopped, RetryPolicy
from .store import Store

if TYPE_CHECKING:
    import pluggy

    from .core.policy import Policy

log = logging.getLogger(__name__)

CLOSED_GROUPS = frozenset({"resolved", "closed"})


# -- the report ---------------------------------------------------------------------------------


@dataclass
class SyncError:
    """One problem in a cycle: ``kind`` is unavailable, auth, rejected, safety, evaluate,
    backend, plugin or internal; ``key`` names the ticket when there is one."""

    tracker: str
    kind: str
    message: str
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker, "key": self.key, "kind": self.kind,
                "message": self.message}

    def __str__(self) -> str:
        where = f"{self.tracker}:{self.key}" if self.key else self.tracker
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class TrackerReport:
    """What one tracker's part of a cycle did."""

    tracker: str
    fetched: int = 0
    refetched: int = 0
    evaluated: int = 0
    #: writes by kind: tickets, fields, labels_added, labels_removed, notes
    writes: Counter[str] = field(default_factory=Counter)
    #: every non-empty diff (written, or that would be written in a dry run)
    diffs: list[Diff] = field(default_factory=list)
    errors: list[SyncError] = field(default_factory=list)
    cursor_before: str | None = None
    cursor_after: str | None = None
    #: the tracker's part stopped early (its cursor did not move)
    aborted: bool = False
    #: it stopped early because the daemon was asked to stop (not an error)
    stopped: bool = False
    #: metrics that turned breached this cycle, by (class, metric)
    breaches: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: retried calls by kind: read, write
    retries: Counter[str] = field(default_factory=Counter)
    #: tickets recorded but not written: closed before the bridge first synced the tracker
    adopted: int = 0
    #: the server asked for this many seconds of patience (429/503 Retry-After) when it failed
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker, "fetched": self.fetched, "refetched": self.refetched,
            "evaluated": self.evaluated,
            "writes": {k: self.writes.get(k, 0) for k in
                       ("tickets", "fields", "labels_added", "labels_removed", "notes")},
            "diffs": [d.to_dict() for d in self.diffs],
            "errors": [e.to_dict() for e in self.errors],
            "cursor_before": self.cursor_before, "cursor_after": self.cursor_after,
            "aborted": self.aborted, "stopped": self.stopped,
            "breaches": [{"class": c, "metric": m, "count": n}
                         for (c, m), n in sorted(self.breaches.items())],
            "retries": dict(self.retries),
            "adopted": self.adopted,
        }


@dataclass
class SyncReport:
    """The result of :func:`run_once`."""

    now: datetime
    dry_run: bool
    trackers: list[TrackerReport] = field(default_factory=list)
    #: the earliest stored instant at which some ticket's verdict changes by itself: a daemon
    #: sleeps until ``min(next poll, next_change)``
    next_change: datetime | None = None
    #: problems raised by ``tracker_bridge_cycle_done`` implementations
    hook_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.trackers)

    @property
    def errors(self) -> list[SyncError]:
        return [e for t in self.trackers for e in t.errors]

    def to_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "ok": self.ok,
                "trackers": [t.to_dict() for t in self.trackers],
                "next_change": None if self.next_change is None else self.next_change.isoformat(),
                "hook_errors": list(self.hook_errors)}


# -- diffing ------------------------------------------------------------------------------------


def format_deadline(due: datetime | None, zone: ZoneInfo) -> str | None:
    """A deadline as the bridge writes it: ISO 8601 to the second, in the tracker's zone."""
    if due is None:
        return None
    return due.astimezone(zone).replace(microsecond=0).isoformat()


def _same_deadline(have: str | None, want: str | None) -> bool:
    have = (have or "").strip() or None
    if have == want:
        return True
    if have is None or want is None:
        return False
    try:
        a, b = datetime.fromisoformat(have.replace("Z", "+00:00")), datetime.fromisoformat(want)
    except ValueError:
        return False
    # the same instant written in another offset (a person, or the tracker reformatting it)
    # is left alone: rewriting it would be a write that changes nothing
    return a.tzinfo is not None and a == b


def owned_labels(labels: Iterable[str], policy: Policy) -> set[str]:
    """The labels on a ticket the bridge owns: under the prefix, except a human's
    escalation-request label should a policy put it under the prefix too."""
    prefix = policy.label_prefix
    protected = set()
    if policy.escalation is not None and policy.escalation.requested_label:
        protected.add(policy.escalation.requested_label)
    return {x for x in labels if x.startswith(prefix) and x not in protected}


def compute_diff(ticket: Ticket, verdict: Verdict, tracker: TrackerConfig, policy: Policy,
                 known_note_keys: Iterable[str] = ()) -> Diff:
    """The minimal change that makes the ticket show the verdict (empty: nothing to write).

    Only what ``tracker.write`` names is compared: deadline fields, labels under the policy's
    prefix, notes. Nothing else on the ticket is ever in a diff.
    """
    w = tracker.write
    set_fields: dict[str, str | None] = {}
    deadlines = verdict.deadlines
    for name in DEADLINE_FIELDS:
        if getattr(w, name) is None:
            continue
        want = format_deadline(deadlines.get(name), w.zone)
        have = ticket.fields.get(name)
        if not _same_deadline(have, want):
            set_fields[name] = want
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()
    if w.labels is not None:
        desired = owned_labels(verdict.labels, policy)
        current = owned_labels(ticket.labels, policy)
        add = frozenset(desired - set(ticket.labels))
        remove = frozenset(current - desired)
    notes: tuple = ()
    if w.notes is not None:
        posted = posted_note_keys(ticket) | set(known_note_keys)
        seen: set[str] = set()
        picked = []
        for n in verdict.notes:
            if n.key not in posted and n.key not in seen:
                picked.append(n)
                seen.add(n.key)
        notes = tuple(picked)
    return Diff(key=ticket.key, set_fields=set_fields, add_labels=add, remove_labels=remove,
                notes=notes)


def _sanitize(diff: Diff, original: Diff, ticket: Ticket, policy: Policy) -> Diff:
    """A plugin's replacement diff, cut back to what the bridge owns on this ticket."""
    if diff.key != original.key:
        msg = f"tracker_bridge_before_write returned a diff for {diff.key}, not {original.key}"
        raise ValueError(msg)
    return replace(
        diff,
        set_fields={k: v for k, v in diff.set_fields.items() if k in original.set_fields
                    or k in DEADLINE_FIELDS},
        add_labels=frozenset(owned_labels(diff.add_labels, policy)),
        remove_labels=frozenset(owned_labels(diff.remove_labels, policy)),
    )


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


def closed_since(ticket: Ticket, policy: Policy) -> datetime:
    """When the ticket last entered a resolved or closed status (its creation if it never
    moved there in its recorded history)."""
    since = ticket.created
    was_closed: bool | None = None
    for ev in sorted((e for e in ticket.history if e.kind == "status" and e.to is not None),
                     key=lambda e: e.at):
        closed = policy.status_group(ev.to) in CLOSED_GROUPS
        if was_closed is None:
            was_closed = policy.status_group(ev.from_) in CLOSED_GROUPS if ev.from_ else False
        if closed and not was_closed:
            since = ev.at
        was_closed = closed
    return since


def run_once(config: BridgeConfig, *, now: datetime | None = None, dry_run: bool = False,
             pm: pluggy.PluginManager | None = None, store: Store | None = None,
             trackers: Iterable[str] | None = None, force: bool = False,
             backends: MutableMapping[str, Backend] | None = None,
             retry: RetryPolicy | None = None,
             stop: threading.Event | None = None) -> SyncReport:
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
        SIGTERM); its cursor stays where it was
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
    st = store or Store(config.state)
    wanted = None if trackers is None else set(trackers)
    selected = [t for t in config.trackers if wanted is None or t.name in wanted]
    report = SyncReport(now=now, dry_run=dry_run)
    try:
        if not dry_run:
            for tc in selected:  # committed before the cycle: see Store.mark_first_sync
                if st.get_cursor(tc.name) is None and st.first_sync(tc.name) is None:
                    st.mark_first_sync(tc.name, now)
        with st.cycle(rollback=dry_run):
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
                    _sync_tracker(config, tc, backend, st, pm, now, dry_run, force, tr,
                                  retry or NO_RETRY, stop)
                except CycleStopped:
                    tr.aborted = tr.stopped = True
                except Exception as e:  # one tracker failing never stops the others
                    tr.aborted = True
                    tr.retry_after = getattr(e, "retry_after", None)
                    tr.errors.append(SyncError(tc.name, _error_kind(e),
                                               tc.mask(_message(e))))
                    if _error_kind(e) == "internal":
                        log.exception("%s: unexpected error", tc.name)
                    if not dry_run:
                        st.record_error(tc.name, None, _error_kind(e),
                                        tc.mask(_message(e)), now)
                finally:
                    if backend is not None and backends is None:
                        _close(backend)
            if not dry_run:
                st.record_cycle(now, datetime.now(UTC), report.ok, report.to_dict())
        report.next_change = st.earliest_next_change((t.name for t in selected), after=now)
    finally:
        if own_store:
            st.close()
    try:
        pm.hook.tracker_bridge_cycle_done(report=report)
    except Exception as e:
        report.hook_errors.append(f"tracker_bridge_cycle_done: {type(e).__name__}: {e}")
    return report


def _message(e: BaseException) -> str:
    if isinstance(e, TrackerBridgeError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _close(backend: Backend) -> None:
    try:
        backend.close()
    except Exception:
        log.warning("closing backend %s failed", backend.tracker.name, exc_info=True)


def _sync_tracker(config: BridgeConfig, tc: TrackerConfig, backend: Backend, st: Store,
                  pm: pluggy.PluginManager, now: datetime, dry_run: bool, force: bool,
                  tr: TrackerReport, retry: RetryPolicy = NO_RETRY,
                  stop: threading.Event | None = None) -> None:
    from .core.engine import evaluate

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

    def fetched(t: Ticket) -> Ticket:
        replaced = pm.hook.tracker_bridge_ticket_fetched(tracker=tc, ticket=t)
        if replaced is not None:
            if not isinstance(replaced, Ticket) or replaced.key != t.key:
                msg = f"tracker_bridge_ticket_fetched returned {replaced!r} for ticket {t.key}"
                raise TypeError(msg)
            return replaced
        return t

    cursor = st.get_cursor(tc.name)
    tr.cursor_before = cursor
    # what counts as history: closed before the bridge first looked at this tracker (a store
    # from before the mark existed, with a cursor already: nothing unseen is history)
    first_sync = st.first_sync(tc.name) or (now if cursor is None else None)
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
        tickets[key] = fetched(t)

    groups = {k: policy.status_group(t.status) for k, t in tickets.items()}
    if not force:
        _safety_guard(config, tc, st, tickets, groups, gone)

    for key in sorted(tickets, key=_key_order):
        if stop is not None and stop.is_set():
            # between two tickets: what is written is recorded, the cursor stays, the next
            # cycle fetches the rest again
            raise CycleStopped(f"{tc.name}: stopped before ticket {key}")
        t = tickets[key]
        try:
            verdict = evaluate(policy, t, now)
        except Exception as e:  # a ticket the engine cannot read must not stop the others
            msg = tc.mask(_message(e))
            tr.errors.append(SyncError(tc.name, "evaluate", msg, key))
            if not dry_run:
                st.record_error(tc.name, key, "evaluate", msg, now)
            continue
        tr.evaluated += 1
        stored = st.ticket(tc.name, key)
        known_notes = stored.note_keys if stored else frozenset()
        # History is read, not rewritten: a ticket resolved or closed before the bridge first
        # looked at the tracker stays untouched until it is reopened. One closed later (even
        # while a first sync that never committed was running) gets its KB note.
        # (reopened and closed again between two polls: no longer history)
        if groups[key] not in CLOSED_GROUPS:
            adopted = False
        elif stored is not None:
            adopted = stored.adopted and (first_sync is None
                                          or closed_since(t, policy) <= first_sync)
        else:
            adopted = (tc.adopt_closed and first_sync is not None
                       and closed_since(t, policy) <= first_sync)
        if adopted:
            tr.adopted += 1
            st.record_ticket(
                tc.name, key, status=t.status, status_group=groups[key], is_open=False,
                class_=verdict.class_, plan=verdict.plan, labels=owned_labels(t.labels, policy),
                fields={f: t.fields.get(f) for f in DEADLINE_FIELDS}, next_change=None,
                retry=False, ticket_updated=t.updated, evaluated_at=now, written=False,
                adopted=True)
            st.record_verdict(tc.name, key, verdict, status=t.status, status_group=groups[key])
            continue

        def diff_for(t: Ticket, verdict: Verdict, known_notes: frozenset[str] = known_notes
                     ) -> Diff:
            diff = compute_diff(t, verdict, tc, policy, known_notes)
            if diff:
                changed = pm.hook.tracker_bridge_before_write(tracker=tc, ticket=t,
                                                              verdict=verdict, diff=diff)
                if changed is not None:
                    diff = _sanitize(changed, diff, t, policy)
            return diff

        diff = diff_for(t, verdict)
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
                            t = fetched(backend.fetch_ticket(key))
                            groups[key] = policy.status_group(t.status)
                            verdict = evaluate(policy, t, now)
                            diff = diff_for(t, verdict)
                        if diff:
                            backend.apply(diff)
            except TicketWriteRejected as e:
                msg = tc.mask(_message(e))
                tr.errors.append(SyncError(tc.name, "rejected", msg, key))
                st.record_error(tc.name, key, "rejected", msg, now)
                st.mark_retry(tc.name, key)
                st.record_verdict(tc.name, key, verdict, status=t.status,
                                  status_group=groups[key])
                continue
            # any other error propagates: the tracker is aborted and its cursor stays
            if diff:
                written = True
                st.record_write(tc.name, key, diff.to_dict(), now)
                if diff.notes:
                    st.record_notes(tc.name, key, [n.key for n in diff.notes], now)
        if diff:
            tr.diffs.append(diff)
            tr.writes["tickets"] += 1
            tr.writes["fields"] += len(diff.set_fields)
            tr.writes["labels_added"] += len(diff.add_labels)
            tr.writes["labels_removed"] += len(diff.remove_labels)
            tr.writes["notes"] += len(diff.notes)
        breached = {name for name, m in verdict.metrics.items() if m.state == "breached"}
        before = stored.breached if stored is not None else frozenset()
        for name in sorted(breached - before):
            tr.breaches[(verdict.class_, name)] += 1
        labels_after = (owned_labels(t.labels, policy) - diff.remove_labels) | diff.add_labels
        fields_after = {f: t.fields.get(f) for f in DEADLINE_FIELDS}
        fields_after.update(diff.set_fields)
        is_open = groups[key] not in CLOSED_GROUPS
        st.record_ticket(
            tc.name, key, status=t.status, status_group=groups[key], is_open=is_open,
            class_=verdict.class_, plan=verdict.plan, labels=labels_after, fields=fields_after,
            next_change=verdict.next_change, retry=False, ticket_updated=t.updated,
            evaluated_at=now, written=written, breached=breached)
        st.record_verdict(tc.name, key, verdict, status=t.status, status_group=groups[key])

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
