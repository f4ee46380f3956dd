"""The policy engine: one pure function of (policy, normalized ticket, now).

``evaluate`` reconstructs the ticket's life as of ``now`` from its history, classifies it,
picks its plan and calendars, runs the response and resolution clocks with their pauses and
stops, works out functional and hierarchical escalation, and returns the desired state as a
:class:`Verdict` (docs/semantics.md: "The clocks", "Escalation", "What the engine
writes"). It reads no clock and does no I/O.

Choices where the contract is silent (documented in docs/semantics.md):
- the ticket is seen as it was at ``now``: history events after ``now`` are undone;
- a metric whose elapsed time equals its target exactly is ``at_risk``, not yet breached
  (breached is ``elapsed > target``); tier and level triggers fire when their time is used up
  (``>=``);
- a ticket created in a status outside the "new" group counts as responded at creation
  when status changes are response events;
- tier time pauses like the metrics (waiting, resolved); a ``created`` level trigger counts
  working time since creation with no pauses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from .calendar import BusinessCalendar, from_us, to_us
from .durations import format_duration
from .kb import kb_note
from .policy import METRICS, Policy, slug
from .ticket import HistoryEvent, Ticket
from .verdict import NOTE_MARKER_RE, MetricVerdict, Note, Verdict

_STOPPED_GROUPS = ("resolved", "closed")


def _td(us: int) -> timedelta:
    return timedelta(microseconds=us)


class _Clock:
    """Running intervals of one clock on one calendar; the last may still be running."""

    __slots__ = ("cal", "elapsed", "intervals", "ongoing", "works")

    def __init__(
        self, cal: BusinessCalendar, intervals: tuple[tuple[int, int], ...], ongoing: bool
    ) -> None:
        self.cal = cal
        self.intervals = intervals
        self.ongoing = ongoing
        self.works = [cal.working_us(a, b) for a, b in intervals]
        self.elapsed = sum(self.works)

    def reach(self, amount: int) -> int | None:
        """The instant the clock's accumulated time reaches ``amount``, or None if it never will."""
        cum = 0
        works = self.works
        for i, (a, _b) in enumerate(self.intervals):
            last = self.ongoing and i == len(self.intervals) - 1
            if amount - cum <= works[i] or last:
                return self.cal.add_us(a, max(0, amount - cum))
            cum += works[i]
        return None


class _Life:
    """The ticket as it was at ``now``: status segments, field values, events."""

    def __init__(self, policy: Policy, ticket: Ticket, now: datetime) -> None:
        self.policy = policy
        self.ticket = ticket
        self.now = to_us(now)
        self.created = to_us(ticket.created)
        past = [e for e in ticket.history if to_us(e.at) <= self.now]
        future = [e for e in ticket.history if to_us(e.at) > self.now]
        self.events: list[HistoryEvent] = past
        fields = dict(ticket.fields)
        status = ticket.status
        for ev in reversed(future):
            if ev.kind == "field" and ev.field:
                fields[ev.field] = ev.from_
            elif ev.kind == "status" and ev.from_ is not None:
                status = ev.from_
        self.fields: Mapping[str, str | None] = fields
        self.status = status
        #: where the ticket contradicts itself, and how it was read (docs/semantics.md)
        self.warnings: list[str] = []
        ref = ticket.ref
        if self.created > self.now:
            self.warnings.append(
                f"{ref}: created {ticket.created.isoformat()} is after now: nothing has "
                "elapsed yet (is a clock wrong?)")
        early = [e for e in past if to_us(e.at) < self.created]
        if early:
            self.warnings.append(
                f"{ref}: {len(early)} history event(s) before created "
                f"{ticket.created.isoformat()} (first {early[0].at.isoformat()}): read as at "
                "creation")
        status_events = [e for e in ticket.history if e.kind == "status"]
        initial = status_events[0].from_ if status_events and status_events[0].from_ else status
        segments: list[tuple[int, str]] = [(self.created, initial)]
        for ev in past:
            if ev.kind == "status" and ev.to is not None:
                at = max(to_us(ev.at), self.created)
                if at == segments[-1][0]:
                    segments[-1] = (at, ev.to)
                else:
                    segments.append((at, ev.to))
        if segments[-1][1] != status:
            # The tracker's current status and its history disagree (a change the history
            # missed: an import, a database edit, a lost journal). The current status wins:
            # it holds from the ticket's last update, when that is known and not later than
            # now, else from the last status event (whose target is then read as wrong).
            last = segments[-1][0]
            upd = None if ticket.updated is None else to_us(ticket.updated)
            at = upd if upd is not None and last < upd <= self.now else last
            self.warnings.append(
                f"{ref}: status is {status!r} but the history's last status change is to "
                f"{segments[-1][1]!r}: read as {status!r} since "
                f"{from_us(at).isoformat()}")
            if at == last:
                segments[-1] = (last, status)
            else:
                segments.append((at, status))
        self.segments = segments

    def group(self, status: str | None) -> str:
        return self.policy.status_group(status)

    def intervals(
        self, runs: Callable[[str], bool], start: int | None = None, stop: int | None = None
    ) -> tuple[tuple[tuple[int, int], ...], bool]:
        """Intervals in [start, min(stop, now)] whose status group ``runs``; and whether the
        clock is running at ``now`` (so the last interval continues into the future)."""
        lo = self.created if start is None else max(start, self.created)
        hi = self.now if stop is None else min(stop, self.now)
        out: list[tuple[int, int]] = []
        for i, (at, status) in enumerate(self.segments):
            end = self.segments[i + 1][0] if i + 1 < len(self.segments) else self.now
            a, b = max(at, lo), min(end, hi)
            if a > b or not runs(self.group(status)):
                continue
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            elif b > a:
                out.append((a, b))
        ongoing = (
            (stop is None or stop > self.now)
            and lo <= self.now
            and runs(self.group(self.segments[-1][1]))
        )
        if ongoing and (not out or out[-1][1] != self.now):
            out.append((self.now, self.now))
        return tuple(out), ongoing

    def stopped_at(self) -> int | None:
        """When the ticket entered the resolved/closed groups, if it is there at ``now``."""
        if self.group(self.segments[-1][1]) not in _STOPPED_GROUPS:
            return None
        i = len(self.segments) - 1
        while i > 0 and self.group(self.segments[i - 1][1]) in _STOPPED_GROUPS:
            i -= 1
        return self.segments[i][0]

    def first_response(self) -> tuple[int | None, str]:
        events = self.policy.response_events
        reporter = self.ticket.reporter
        if "status_change" in events and self.group(self.segments[0][1]) != "new":
            return self.created, "the ticket was created outside the 'new' statuses"
        prev_group = self.group(self.segments[0][1])
        for ev in self.events:
            if ev.kind == "status" and ev.to is not None:
                new_group = self.group(ev.to)
                if "status_change" in events and prev_group == "new" and new_group != "new":
                    return max(to_us(ev.at), self.created), f"status changed to {ev.to}"
                prev_group = new_group
            elif (
                ev.kind == "comment"
                and "public_comment" in events
                and ev.public
                and (ev.by is None or ev.by != reporter)
                and not (ev.text and NOTE_MARKER_RE.search(ev.text))
            ):
                who = f" by {ev.by}" if ev.by else ""
                return max(to_us(ev.at), self.created), f"public comment{who}"
        return None, ""


def _lookup(table: Mapping[str, str], value: str | None) -> str | None:
    if value is None:
        return None
    if value in table:
        return table[value]
    folded = value.strip().casefold()
    for k, v in table.items():
        if k.strip().casefold() == folded:
            return v
    return None


def classify(
    policy: Policy, ticket: Ticket, fields: Mapping[str, str | None]
) -> tuple[str, str, str]:
    """``(class, rule, reason)``: overrides, then the mapped field, the matrix, the default."""
    cl = policy.classify
    text = f"{ticket.subject}\n{ticket.description}"
    for i, o in enumerate(cl.overrides):
        w = o.when
        ok = True
        if w.text_matches is not None and not w.text_matches.search(text):
            ok = False
        if ok and w.field is not None:
            value = fields.get(w.field)
            if (
                value is None
                or (
                    w.in_ is not None
                    and value.strip().casefold() not in {x.casefold() for x in w.in_}
                )
                or (w.matches is not None and not w.matches.search(value))
            ):
                ok = False
        if ok and w.labels_any is not None and not (set(ticket.labels) & w.labels_any):
            ok = False
        if ok:
            return o.class_, f"override:{i}", f"override rule {i}: {w.describe()}"
    value = fields.get(cl.field)
    mapped = _lookup(cl.map, value)
    if mapped is not None:
        return mapped, f"map:{cl.field}", f"{cl.field} is {value!r}, mapped to {mapped}"
    if cl.matrix is not None:
        m = cl.matrix
        u, i_ = fields.get(m.urgency), fields.get(m.impact)
        if u is not None and i_ is not None:
            row_key = next((k for k in m.table if k.casefold() == u.strip().casefold()), None)
            if row_key is not None:
                c = _lookup(m.table[row_key], i_)
                if c is not None:
                    return (
                        c,
                        f"matrix:{m.urgency}x{m.impact}",
                        (f"{m.urgency} {u!r} x {m.impact} {i_!r} in the matrix gives {c}"),
                    )
    return (
        policy.default_class,
        "default",
        f"no rule matched; the default class is {policy.default_class}",
    )


def _local(policy: Policy, us: int) -> str:
    from zoneinfo import ZoneInfo

    return from_us(us).astimezone(ZoneInfo(policy.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def evaluate(policy: Policy, ticket: Ticket, now: datetime) -> Verdict:
    """The engine's verdict on one ticket at ``now`` (an aware datetime)."""
    life = _Life(policy, ticket, now)
    reasons: list[str] = []
    warnings: list[str] = list(life.warnings)
    candidates: list[int] = []

    class_, rule, why = classify(policy, ticket, life.fields)
    reasons.append(f"class {class_}: {why}")
    plan_obj, plan_warning = policy.plan_for(life.fields.get(policy.plan_field))
    plan = plan_obj.name
    if plan_warning:
        warnings.append(f"{ticket.ref}: {plan_warning}")
    reasons.append(f"plan {plan}" + (f" ({plan_warning})" if plan_warning else ""))

    stopped_at = life.stopped_at()
    open_now = stopped_at is None

    # -- the two clocks ---------------------------------------------------------------------
    response_stop, response_why = life.first_response()
    clocks: dict[str, _Clock] = {}
    stops: dict[str, int | None] = {"response": response_stop, "resolution": stopped_at}
    for metric in METRICS:
        cal = policy.calendar(class_, plan, metric)
        if metric == "response":
            ivs, ongoing = life.intervals(
                lambda g: g not in ("waiting", *_STOPPED_GROUPS), stop=response_stop
            )
        else:
            ivs, ongoing = life.intervals(lambda g: g not in ("waiting", *_STOPPED_GROUPS))
        clocks[metric] = _Clock(cal, ivs, ongoing)

    metrics: dict[str, MetricVerdict] = {}
    labels: set[str] = {policy.class_label(class_)}
    notes: list[Note] = []
    paused_now = life.group(life.status) == "waiting"
    for metric in METRICS:
        if metric not in policy.classes[class_]:
            continue
        clock = clocks[metric]
        cal_name = policy.calendar_name(class_, plan, metric)
        target_td = policy.target(class_, plan, metric)
        elapsed = clock.elapsed
        stop = stops[metric]
        stopped = stop is not None and stop <= life.now
        due = remaining = None
        if target_td is None:
            state = "no_target"
            reasons.append(
                f"{metric}: no target; {format_duration(_td(elapsed))} elapsed on {cal_name}"
            )
        else:
            target = target_td // timedelta(microseconds=1)
            warn = math.ceil(target * policy.warn_at)
            if stopped:
                state = "met" if elapsed <= target else "breached"
            elif elapsed > target:
                state = "breached"
            elif paused_now:
                state = "paused"
            elif elapsed >= warn:
                state = "at_risk"
            else:
                state = "running"
            if not stopped:
                remaining = _td(target - elapsed)
                if clock.ongoing:
                    due_us = clock.reach(target)
                    due = None if due_us is None else from_us(due_us)
                    if elapsed < warn and (t := clock.reach(warn)) is not None:
                        candidates.append(t)
                    if elapsed <= target and (t := clock.reach(target + 1)) is not None:
                        candidates.append(t)
            if state in ("at_risk", "breached"):
                labels.add(policy.label("at-risk" if state == "at_risk" else "breached", metric))
            if state == "breached":
                notes.append(
                    Note(
                        f"breach:{metric}",
                        (
                            f"SLA breach: the {metric} target for a {class_} ticket on the {plan} plan is "
                            f"{format_duration(target_td)} of working time on the {cal_name} calendar; "
                            f"{format_duration(_td(elapsed))} has elapsed."
                        ),
                    )
                )
            how = (
                f"stopped {_local(policy, stop)} ({response_why})"
                if (stopped and metric == "response")
                else (f"stopped {_local(policy, stop)}" if stopped else "")
            )
            reasons.append(
                f"{metric}: {state}, {format_duration(_td(elapsed))} of "
                f"{format_duration(target_td)} on {cal_name}"
                + (f", due {_local(policy, to_us(due))}" if due else "")
                + (f", {how}" if how else "")
            )
        if state == "paused":
            labels.add(policy.label("paused"))
        metrics[metric] = MetricVerdict(
            name=metric,
            state=state,
            elapsed=_td(elapsed),
            target=target_td,
            due=due,
            remaining=remaining,
            calendar=cal_name,
            stopped_at=from_us(stop) if stopped and stop is not None else None,
        )

    # -- functional escalation (tiers) ------------------------------------------------------------
    tier = escalate_to = None
    if policy.tiers is not None:
        tiers = policy.tiers
        raw = life.fields.get(tiers.field)
        tier = next(
            (t for t in tiers.order if raw is not None and t.casefold() == raw.strip().casefold()),
            None,
        )
        if raw is not None and tier is None:
            warnings.append(
                f"{ticket.ref}: tier {raw!r} is not in the ladder ({', '.join(tiers.order)})"
            )
        if tier is None and raw is None:
            tier = tiers.order[0]
        if tier is not None and open_now:
            entered = life.created
            for ev in life.events:
                if (
                    ev.kind == "field"
                    and ev.field == tiers.field
                    and ev.to is not None
                    and (ev.to.strip().casefold() == tier.casefold())
                ):
                    entered = to_us(ev.at)
            limit_d = tiers.ladder[tier].get(class_)
            nxt = tiers.order.index(tier) + 1
            if limit_d is not None and nxt < len(tiers.order):
                cal = policy.calendar(class_, plan, "resolution")
                limit = limit_d.resolve(cal.business_day) // timedelta(microseconds=1)
                ivs, ongoing = life.intervals(
                    lambda g: g not in ("waiting", *_STOPPED_GROUPS), start=entered
                )
                tclock = _Clock(cal, ivs, ongoing)
                spent = tclock.elapsed
                if spent >= limit:
                    escalate_to = tiers.order[nxt]
                    labels.add(policy.label("escalate-to", escalate_to))
                    notes.append(
                        Note(
                            f"tier:{escalate_to}",
                            (
                                f"Functional escalation: this {class_} ticket has spent "
                                f"{format_duration(_td(spent))} in {tier} (limit {limit_d}); "
                                f"escalate to {escalate_to}."
                            ),
                        )
                    )
                    reasons.append(
                        f"tier {tier}: {format_duration(_td(spent))} of {limit_d} used; escalate to {escalate_to}"
                    )
                else:
                    reasons.append(f"tier {tier}: {format_duration(_td(spent))} of {limit_d} used")
                    if ongoing and (t := tclock.reach(limit)) is not None:
                        candidates.append(t)

    # -- hierarchical escalation ----------------------------------------------------------------
    level = level_index = None
    if policy.escalation is not None and open_now:
        esc = policy.escalation
        triggered = 0
        pending: list[tuple[int, int]] = []  # (level, instant its trigger will fire)
        for idx, lv in enumerate(esc.levels, start=1):
            if lv.classes is not None and class_ not in lv.classes:
                continue
            hit, at = _trigger(policy, life, clocks, class_, plan, lv.after)
            if hit:
                triggered = idx
            elif at is not None:
                pending.append((idx, at))
        requested = bool(esc.requested_label and esc.requested_label in ticket.labels)
        floor = max(
            (
                i
                for i, lv in enumerate(esc.levels, start=1)
                if policy.label("level", lv.name) in ticket.labels
            ),
            default=0,
        )

        def level_for(t: int) -> int:
            return max(min(t + requested, len(esc.levels)) if t or requested else 0, floor)

        reached = level_for(triggered)
        # a pending trigger matters only if it would change the level
        candidates += [at for idx, at in pending if idx > triggered and level_for(idx) != reached]
        why_level = f"triggered level {triggered}" if triggered else "no level triggered"
        if requested:
            why_level += f"; raised by one on request ({esc.requested_label!r})"
        if floor > min(triggered + requested, len(esc.levels)):
            why_level += f"; kept at level {floor} (levels never go down while open)"
        if reached:
            lv = esc.levels[reached - 1]
            level, level_index = lv.name, reached
            labels.add(policy.label("level", lv.name))
            notes.append(
                Note(
                    f"level:{slug(lv.name)}",
                    (
                        f"Hierarchical escalation: level {reached} ({lv.name}) - {lv.after.describe()} "
                        f"reached for this {class_} ticket."
                    ),
                )
            )
        reasons.append(f"escalation: {why_level}" + (f" -> {level}" if level else ""))

    # -- the KB-ready resolution note ---------------------------------------------------------------
    if stopped_at is not None:
        sla_lines = [
            f"SLA {name}: {m.state}, {format_duration(m.elapsed)}"
            + (f" of {format_duration(m.target)}" if m.target is not None else "")
            for name, m in metrics.items()
        ]
        notes.append(
            Note(
                "kb",
                kb_note(
                    ticket,
                    class_=class_,
                    plan=plan,
                    resolved_at_text=_local(policy, stopped_at),
                    sla_lines=sla_lines,
                    extra_redact=policy.kb_redact,
                    until=now.timestamp(),
                ),
            )
        )

    future = [c for c in candidates if c > life.now]
    return Verdict(
        ticket=ticket.ref,
        now=now,
        class_=class_,
        class_rule=rule,
        plan=plan,
        metrics=metrics,
        tier=tier,
        escalate_to=escalate_to,
        level=level,
        level_index=level_index,
        labels=frozenset(labels),
        label_prefix=policy.label_prefix,
        notes=tuple(notes),
        next_change=from_us(min(future)) if future else None,
        warnings=tuple(warnings),
        reasons=tuple(reasons),
        stopped_at=None if stopped_at is None else from_us(stopped_at),
    )


def _trigger(
    policy: Policy, life: _Life, clocks: Mapping[str, _Clock], class_: str, plan: str, trig: object
) -> tuple[bool, int | None]:
    """Whether a level's trigger has fired, else the instant it will (if it will)."""
    from .policy import Trigger

    assert isinstance(trig, Trigger)
    if trig.metric is not None and trig.fraction is not None:
        target_td = policy.target(class_, plan, trig.metric)
        if target_td is None:
            return False, None
        threshold = math.ceil((target_td // timedelta(microseconds=1)) * trig.fraction)
        clock = clocks[trig.metric]
        if clock.elapsed >= threshold:
            return True, None
        return False, clock.reach(threshold) if clock.ongoing else None
    assert trig.created is not None
    cal = policy.calendars[trig.calendar] if trig.calendar else policy.calendar(class_, plan)
    d = trig.created.resolve(cal.business_day) // timedelta(microseconds=1)
    if cal.working_us(life.created, life.now) >= d:
        return True, None
    return False, cal.add_us(life.created, d)


def evaluate_many(policy: Policy, tickets: Sequence[Ticket], now: datetime) -> list[Verdict]:
    """``evaluate`` over several tickets (same ``now``)."""
    return [evaluate(policy, t, now) for t in tickets]
