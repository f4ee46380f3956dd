"""The pure plan step: what the bridge wants done with one ticket, and what to record.

:func:`plan` takes the policy, the tracker's config, the ticket as the tracker shows it, what
the store remembers of it and ``now``, and returns the verdict, the :class:`Diff` that makes
the ticket show it (only what ``write:`` names; empty when nothing is to be written) and the
:class:`TicketRecord` the store keeps once that diff is written. It does no I/O and reads no
clock, so ``sync`` (fetch -> plan -> apply -> record) and ``explain`` decide the same way,
and it is tested without a tracker or a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .backend import (
    DEADLINE_FIELDS,
    STATE_FIELD,
    WRITTEN_FIELDS,
    Diff,
    posted_note_keys,
    same_deadline,
)
from .core import engine
from .core.desk import MissingNote
from .core.ticket import HistoryEvent, Ticket
from .core.verdict import Verdict

if TYPE_CHECKING:
    from .config import TrackerConfig
    from .core.policy import Policy
    from .store import TicketState

#: the status groups in which a ticket counts as done (no clock runs)
CLOSED_GROUPS = frozenset({"resolved", "closed"})


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """What the store keeps of one ticket after its plan was applied."""

    status: str
    status_group: str
    is_open: bool
    class_: str
    plan: str
    labels: frozenset[str]
    fields: Mapping[str, str | None]
    next_change: datetime | None
    ticket_updated: datetime | None
    breached: frozenset[str] = frozenset()
    adopted: bool = False
    label_seen: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    """The verdict on one ticket, what to write, and what to record once it is written."""

    ticket: Ticket
    verdict: Verdict
    status_group: str
    #: what to write (empty: nothing); always empty for an adopted ticket
    diff: Diff
    #: closed before the bridge first looked at the tracker: recorded, never written
    adopted: bool
    #: the metrics breached now that were not at the last evaluation
    newly_breached: frozenset[str] = field(default=frozenset())
    #: see :func:`with_label_history`
    label_seen: Mapping[str, datetime] = field(default_factory=dict)

    def record(self, policy: Policy, diff: Diff | None = None) -> TicketRecord:
        """The store's record once ``diff`` (default: this plan's) is on the ticket."""
        return record_for(self.ticket, self.verdict, self.diff if diff is None else diff,
                          policy, self.status_group, adopted=self.adopted,
                          label_seen=self.label_seen)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def human_time(due: datetime, zone: ZoneInfo, *, year: bool = True) -> str:
    """An instant for people, in ``zone``: ``Tue 15 Dec 2026 17:30 GMT`` (``year=False``:
    ``Tue 15 Dec 17:30 GMT``). English names whatever the machine's locale; the zone's own
    abbreviation for that instant (``GMT``/``BST``, ``CET``/``CEST``; a zone without one shows
    its offset, ``+04``). Shown to the minute: seconds are dropped, never rounded up, so the
    time shown is never later than the deadline."""
    local = due.astimezone(zone)
    day = f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"
    if year:
        day += f" {local.year}"
    return f"{day} {local:%H:%M} {local.tzname()}"


def format_deadline(due: datetime | None, zone: ZoneInfo, fmt: str = "iso") -> str | None:
    """A deadline as the bridge writes it, in the tracker's zone: ISO 8601 to the second
    (``fmt="iso"``, the default, for machines), or :func:`human_time` (``fmt="human"``)."""
    if due is None:
        return None
    if fmt == "human":
        return human_time(due, zone)
    return due.astimezone(zone).replace(microsecond=0).isoformat()


def human_remaining(left: timedelta, business_day: timedelta | None = None) -> str:
    """Working time for people: ``3h 20m``, ``45m``, ``2 bd 3h`` (whole business days first
    when ``business_day`` is given and shorter than a day, as a calendar's is), ``0m``.
    Minutes are rounded down; under a minute shows ``<1m``."""
    total_m = max(int(left.total_seconds()), 0) // 60
    if total_m == 0:
        return "<1m" if left > timedelta(0) else "0m"
    parts = []
    bd_m = int(business_day.total_seconds()) // 60 if business_day else 0
    if 0 < bd_m < 24 * 60 and total_m >= bd_m:
        days, total_m = divmod(total_m, bd_m)
        parts.append(f"{days} bd")
    hours, minutes = divmod(total_m, 60)
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    return " ".join(parts)


#: the metrics the state line speaks of (those with a deadline field)
STATE_METRICS = ("response", "resolution")


def state_line(verdict: Verdict, policy: Policy, zone: ZoneInfo) -> str | None:
    """The one line of SLA state a person reads in the tracker (``write.state``), e.g.
    ``response met · resolution due Tue 15 Dec 17:30 GMT`` or
    ``response paused, 3h 20m left · resolution paused, 2 bd 3h left``.

    Its words depend only on each metric's state, its due instant (which does not move while
    its clock runs) and, while paused, the working time left (which does not move while
    paused). So the line changes only when the verdict does by itself, at instants the
    verdict's ``next_change`` already names, or on a tracker event, and writing it never
    adds a write of its own between those: the countdown is the status page's. ``None`` when
    no metric has a target (nothing to say: the field is cleared).
    """
    parts: list[str] = []
    for name in STATE_METRICS:
        m = verdict.metrics.get(name)
        if m is None or m.state in ("no_target", "not_started"):
            continue
        due = human_time(m.due, zone, year=False) if m.due is not None else None
        if m.state == "met":
            parts.append(f"{name} met")
        elif m.state == "breached":
            parts.append(f"{name} breached" + (f", was due {due}" if due and m.stopped_at
                                                is None else ""))
        elif m.state == "paused" or due is None:
            cal = policy.calendars.get(m.calendar)
            left = human_remaining(m.remaining or timedelta(0),
                                   cal.business_day if cal is not None else None)
            parts.append(f"{name} {m.state.replace('_', ' ')}, {left} left")
        elif m.state == "at_risk":
            parts.append(f"{name} at risk, due {due}")
        else:
            parts.append(f"{name} due {due}")
    return " · ".join(parts) or None


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

    Only what ``tracker.write`` names is compared: deadline fields (in ``write.deadline_format``),
    the state line (:func:`state_line`), labels under the policy's prefix, notes. Nothing else on the ticket is ever in a diff.
    """
    w = tracker.write
    set_fields: dict[str, str | None] = {}
    deadlines = verdict.deadlines
    for name in DEADLINE_FIELDS:
        if getattr(w, name) is None:
            continue
        want = format_deadline(deadlines.get(name), w.zone, w.deadline_format)
        have = ticket.fields.get(name)
        if not same_deadline(have, want):
            set_fields[name] = want
    if w.state is not None:
        want = state_line(verdict, policy, w.zone)
        if not same_deadline(ticket.fields.get(STATE_FIELD), want):
            set_fields[STATE_FIELD] = want
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
                # the completeness note names the fields as the tracker does
                picked.append(n.named(tracker.fields) if isinstance(n, MissingNote) else n)
                seen.add(n.key)
        notes = tuple(picked)
    return Diff(key=ticket.key, set_fields=set_fields, add_labels=add, remove_labels=remove,
                notes=notes)


def sanitize(diff: Diff, original: Diff, policy: Policy) -> Diff:
    """A plugin's replacement diff (``tracker_bridge_before_write``), cut back to what the
    bridge owns on this ticket."""
    if diff.key != original.key:
        msg = f"tracker_bridge_before_write returned a diff for {diff.key}, not {original.key}"
        raise ValueError(msg)
    return replace(
        diff,
        set_fields={k: v for k, v in diff.set_fields.items() if k in original.set_fields
                    or k in WRITTEN_FIELDS},
        add_labels=frozenset(owned_labels(diff.add_labels, policy)),
        remove_labels=frozenset(owned_labels(diff.remove_labels, policy)),
    )


def record_for(ticket: Ticket, verdict: Verdict, diff: Diff, policy: Policy,
               status_group: str, *, adopted: bool = False,
               label_seen: Mapping[str, datetime] | None = None) -> TicketRecord:
    """What the store keeps once ``diff`` is on ``ticket`` (``label_seen``: see
    :func:`with_label_history`)."""
    # (an adopted ticket's diff is empty: it keeps what it shows)
    labels = frozenset((owned_labels(ticket.labels, policy) - diff.remove_labels)
                       | diff.add_labels)
    fields = {f: ticket.fields.get(f) for f in DEADLINE_FIELDS}
    if STATE_FIELD in ticket.fields or STATE_FIELD in diff.set_fields:
        fields[STATE_FIELD] = ticket.fields.get(STATE_FIELD)
    fields.update(diff.set_fields)
    return TicketRecord(
        status=ticket.status, status_group=status_group,
        is_open=status_group not in CLOSED_GROUPS and not adopted,
        class_=verdict.class_, plan=verdict.plan, labels=labels, fields=fields,
        next_change=None if adopted else verdict.next_change, ticket_updated=ticket.updated,
        breached=frozenset() if adopted else breached_metrics(verdict), adopted=adopted,
        label_seen=dict(label_seen or {}))


def breached_metrics(verdict: Verdict) -> frozenset[str]:
    return frozenset(name for name, m in verdict.metrics.items() if m.state == "breached")


def is_history(ticket: Ticket, verdict: Verdict, status_group: str,
               stored: TicketState | None, *, adopt_closed: bool,
               first_sync: datetime | None) -> bool:
    """Whether the ticket is history: resolved or closed before the bridge first looked at
    the tracker (``first_sync``), so it is recorded but never written until reopened.

    A ticket closed later (even while a first sync that never committed was running) is not
    history and gets its KB note; one reopened and closed again between two polls is no
    longer history either. ``first_sync`` is ``None`` for a store from before the mark
    existed that already has a cursor: then nothing unseen is history.
    """
    if status_group not in CLOSED_GROUPS:
        return False
    since = verdict.stopped_at
    if since is None:  # the engine reads it as open at now (e.g. its closing is after now)
        return False
    if stored is not None:
        return stored.adopted and (first_sync is None or since <= first_sync)
    return adopt_closed and first_sync is not None and since <= first_sync


def read_labels(policy: Policy) -> tuple[str, ...]:
    """The labels whose adding instant the policy reads (the escalation request's)."""
    esc = policy.escalation
    return (esc.requested_label,) if esc is not None and esc.requested_label else ()


def with_label_history(ticket: Ticket, policy: Policy, stored: TicketState | None,
                       now: datetime) -> tuple[Ticket, dict[str, datetime]]:
    """The ticket with a label event for each label the policy reads that it carries but whose
    adding its history does not show (a tracker that cannot tell): the event is dated at the
    first cycle that saw the label (``stored.label_seen``, else ``now``).

    Returns the ticket and the ``label_seen`` to record (empty when the history told all).
    """
    seen: dict[str, datetime] = {}
    events = list(ticket.history)
    for label in read_labels(policy):
        if label not in ticket.labels:
            continue
        told = False
        for ev in ticket.history:
            if ev.kind == "label" and ev.at <= now:
                if label in ev.added:
                    told = True
                elif label in ev.removed:
                    told = False
        if told:
            continue
        at = stored.label_seen.get(label, now) if stored is not None else now
        seen[label] = at
        events.append(HistoryEvent(at=max(at, ticket.created), kind="label", added=(label,)))
    if not seen:
        return ticket, seen
    events.sort(key=lambda e: e.at)  # stable: the tracker's order kept within one instant
    return replace(ticket, history=tuple(events)), seen


def plan(policy: Policy, tracker: TrackerConfig, ticket: Ticket, stored: TicketState | None,
         now: datetime, *, first_sync: datetime | None = None) -> Plan:
    """The pure plan for one ticket (``policy`` with the tracker's status overrides applied).

    :param stored: what the store remembers of the ticket (``None``: never seen)
    :param first_sync: when the bridge first began syncing this tracker (see
        :func:`is_history`)
    :raises Exception: whatever the engine raises on a ticket it cannot read (the caller
        records it as that ticket's error)
    """
    ticket, label_seen = with_label_history(ticket, policy, stored, now)
    verdict = engine.evaluate(policy, ticket, now)
    group = policy.status_group(ticket.status)
    adopted = is_history(ticket, verdict, group, stored, adopt_closed=tracker.adopt_closed,
                         first_sync=first_sync)
    if adopted:
        diff = Diff(key=ticket.key)
    else:
        known = stored.note_keys if stored is not None else frozenset()
        diff = compute_diff(ticket, verdict, tracker, policy, known)
    # The texts of the notes to write are made here (a KB note runs redaction over the whole
    # ticket): whatever they raise is this ticket's error, inside the caller's per-ticket
    # guard, not a failure of the tracker's write or record steps. Notes not written stay
    # unmade (the store keeps their keys only).
    for note in diff.notes:
        _ = note.text
    before = stored.breached if stored is not None else frozenset()
    return Plan(ticket=ticket, verdict=verdict, status_group=group, diff=diff, adopted=adopted,
                newly_breached=breached_metrics(verdict) - before, label_seen=label_seen)
