"""The policy engine: one pure function of (policy, normalized ticket, now).

``evaluate`` reconstructs the ticket's life as of ``now`` from its history, classifies it,
picks its plan and calendars, runs the response and resolution clocks with their pauses and
stops (docs/semantics.md), works out functional and hierarchical escalation, and returns the
desired state as a :class:`Verdict`. It reads no clock and does no I/O.

Choices where the contract is silent (documented in docs/semantics.md):
- the ticket is seen as it was at ``now``: history events after ``now`` are undone;
- a metric whose elapsed time equals its target exactly is ``at_risk``, not yet breached
  (breached is ``elapsed > target``); tier and level triggers fire when their time is used up
  (``>=``);
- a ticket created in a status outside the "new" group counts as responded at creation
  when status changes are response events;
- tier time pauses like the metrics (waiting, resolved); a ``created`` level trigger counts
  working time since creation with no pauses.

How it stays fast (benchmarks/README.md): a policy is compiled once, on its first verdict
(:func:`compiled`): targets, warning thresholds, tier limits and level thresholds become
integer microseconds per (class, plan, metric), labels are made once, lookups are
case-folded once, and the override patterns are first tried as one combined pattern. A
verdict then reads the history in one pass, converting each instant once, and does its
arithmetic on integers. The texts only ``explain`` and the tracker's notes need (the
verdict's ``reasons``, each note's text, the KB note with its redaction) are written when
first read, from what the verdict kept: equal to what writing them at once would give.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import partial
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import re2

from .calendar import HORIZON, BusinessCalendar, from_us, to_us
from .desk import (
    MissingNote,
    PhiChecker,
    closed_by,
    complete_since,
    customer_answered,
    eosl_text,
    missing_fields,
    phi_notes,
    phi_places,
    release_stage,
    reminder_text,
    unregistered_text,
)
from .durations import Duration, format_duration
from .kb import kb_note
from .marker import MARKER_START, NOTE_MARKER_RE, is_bridge_note
from .policy import ALL_METRICS, METRICS, RELEASE_STAGES, Level, Plan, Policy, Trigger, slug
from .ticket import Ticket
from .verdict import (
    MetricVerdict,
    Note,
    Occurrence,
    Verdict,
    metric_verdict,
)

_STOPPED_GROUPS = ("resolved", "closed")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_HORIZON_US = (HORIZON - _EPOCH) // _US
#: memo tables keyed by values from tickets (status names, plan names) are emptied past this
_MEMO_LIMIT = 4096


def _td(us: int) -> timedelta:
    return timedelta(0, 0, us)


def _folded(table: Mapping[str, str]) -> dict[str, str]:
    """``table`` keyed by stripped, case-folded keys; the first key of a fold wins."""
    out: dict[str, str] = {}
    for k, v in table.items():
        out.setdefault(k.strip().casefold(), v)
    return out


#: RE2 options that must agree for patterns to be combined into one
_RE2_OPTIONS = (
    "max_mem", "encoding", "posix_syntax", "longest_match", "literal", "never_nl", "dot_nl",
    "never_capture", "case_sensitive", "perl_classes", "word_boundary", "one_line",
)


def _any_of(patterns: Sequence[object]) -> Any | None:
    """One RE2 pattern matching where any of ``patterns`` matches, or None when they cannot
    be combined (not all RE2, different options, a literal, or too big together).

    It captures nothing (``never_capture``), so RE2 answers from its DFA: a ticket that
    matches no override costs one search instead of one per pattern."""
    if not patterns or not all(isinstance(p, re2._Regexp) for p in patterns):
        return None
    options = {tuple(getattr(p.options, o, None) for o in _RE2_OPTIONS) for p in patterns}  # type: ignore[attr-defined]
    first = patterns[0].options  # type: ignore[attr-defined]
    if len(options) != 1 or getattr(first, "literal", False):
        return None
    try:
        opts = re2.Options()
        for name in _RE2_OPTIONS:
            setattr(opts, name, getattr(first, name))
        opts.log_errors = False
        opts.never_capture = True
        # each pattern in its own group: a flag such as (?i) at its start stays inside it
        return re2.compile("|".join(f"(?:{p.pattern})" for p in patterns), opts)  # type: ignore[attr-defined]
    except Exception:  # too big together, or an option this RE2 lacks: one by one, then
        return None


class _AnyText:
    """Whether a text may match one of the override patterns: ``any_of(text)``.

    RE2 itself answers in well under a microsecond here; the Python wrapper around a search
    (a generator, offsets decoded back to characters) costs several. When the binding's
    matcher is reachable this calls it directly on the UTF-8 bytes, asking only whether
    there is a match; otherwise (another google-re2) it falls back to ``search``."""

    __slots__ = ("anchor", "match", "rx")

    def __init__(self, rx: Any) -> None:
        self.rx = rx
        self.match = None
        self.anchor = None
        try:
            match = rx._regexp.Match
            anchor = re2._Anchor.UNANCHORED
            probe = rx.pattern.encode("utf-8")
            if (match(anchor, b"", 0, 0)[0] == (-1, -1)) == (rx.search("") is None) and (
                match(anchor, probe, 0, len(probe))[0] != (-1, -1)
            ) == (rx.search(rx.pattern) is not None):
                self.match, self.anchor = match, anchor
        except Exception:  # not this binding: search it is
            pass

    def __call__(self, text: str) -> bool:
        if self.match is None:
            return self.rx.search(text) is not None
        raw = text.encode("utf-8")
        return self.match(self.anchor, raw, 0, len(raw))[0] != (-1, -1)


def _matcher(rx: Any | None) -> Callable[[str], bool] | None:
    """``text -> bool(rx.search(text))``, through :class:`_AnyText` when ``rx`` is RE2."""
    if rx is None:
        return None
    fast = _any_of([rx])
    if fast is None:
        return lambda text: bool(rx.search(text))
    return _AnyText(fast)


def _timed(
    cal: BusinessCalendar, cal_name: str, target_td: timedelta | None, warn_at: Fraction,
) -> tuple[Any, ...]:
    """``(calendar, its name, target timedelta, target us, warning threshold us)``; the last
    three None when there is no target."""
    if target_td is None:
        return (cal, cal_name, None, None, None)
    target = target_td // _US
    return (cal, cal_name, target_td, target, math.ceil(target * warn_at))


class _Compiled:
    """What ``evaluate`` needs of a policy, worked out once (see :func:`compiled`).

    Per (class, plan, metric) and per tier and level the values are computed on first use
    and kept: a policy with many classes and plans pays only for the combinations its
    tickets meet, and an error (a hand-built duration too long to resolve) is raised where
    the engine meets it, as before, and never kept.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        #: status name -> (group, whether the clocks run in it)
        self.groups: dict[str | None, tuple[str, bool]] = {}
        events = policy.response_events
        self.on_status = "status_change" in events
        self.on_comment = "public_comment" in events
        cl = policy.classify
        self.class_field = cl.field
        self.map_exact = cl.map
        self.map_folded = _folded(cl.map)
        self.matrix = cl.matrix
        self.rows: dict[str, str] = {}
        self.row_maps: dict[str, tuple[Mapping[str, str], dict[str, str]]] = {}
        if cl.matrix is not None:
            for k, row in cl.matrix.table.items():
                self.rows.setdefault(k.casefold(), k)
                self.row_maps[k] = (row, _folded(row))
        rules = [
            (i, o.class_, o.when,
             None if o.when.in_ is None else frozenset(x.casefold() for x in o.when.in_),
             _matcher(o.when.text_matches), _matcher(o.when.matches))
            for i, o in enumerate(cl.overrides)
        ]
        #: the forcing overrides, and the ``at_least`` ones (applied after the map/matrix)
        self.overrides: list[tuple[Any, ...]] = [
            r for r, o in zip(rules, cl.overrides, strict=True) if not o.at_least]
        self.at_least: list[tuple[Any, ...]] = [
            r for r, o in zip(rules, cl.overrides, strict=True) if o.at_least]
        forcing = [o for o in cl.overrides if not o.at_least]
        any_of = _any_of(
            [o.when.text_matches for o in forcing if o.when.text_matches is not None]
        )
        self.text_any = None if any_of is None else _AnyText(any_of)
        #: the overrides to try when no text pattern matches: those without one
        self.overrides_untexted = [o for o in self.overrides if o[4] is None]
        #: class -> severity rank (0: most severe)
        self.rank = {c: i for i, c in enumerate(policy.classes)}
        #: class -> the metrics whose target has an ``outside_hours`` alternative
        self.outside = {
            c: frozenset(m for m, t in targets.items() if t.outside_hours is not None)
            for c, targets in policy.classes.items()
            if any(t.outside_hours is not None for t in targets.values())
        }
        self.outside_memo: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self.plans: dict[str | None, tuple[Plan, str | None]] = {}
        self.class_labels = {c: policy.class_label(c) for c in policy.classes}
        self.state_labels = {
            (state, metric): policy.metric_label(state, metric)
            for state in ("at_risk", "breached")
            for metric in ALL_METRICS
        }
        measured = policy.metrics()
        self.update = "update" in measured
        self.tier_response = "tier_response" in measured
        self.esc_response = "escalation_response" in measured
        #: whether any metric beyond response and resolution is measured
        self.extra = self.update or self.tier_response or self.esc_response
        self.extra_memo: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self.paused_label = policy.label("paused")
        tiers = policy.tiers
        self.tiers = tiers
        self.tier_folded: dict[str, str] = {}
        self.tier_next: dict[str, str | None] = {}
        self.tier_labels: dict[str, str] = {}
        if tiers is not None:
            for i, t in enumerate(tiers.order):
                self.tier_folded.setdefault(t.casefold(), t)
                self.tier_next[t] = tiers.order[i + 1] if i + 1 < len(tiers.order) else None
                self.tier_labels[t] = policy.label("escalate-to", t)
        esc = policy.escalation
        self.escalation = esc
        self.level_labels: list[str] = []
        self.level_keys: list[str] = []
        if esc is not None:
            self.level_labels = [policy.label("level", lv.name) for lv in esc.levels]
            self.level_keys = [f"level:{slug(lv.name)}" for lv in esc.levels]
        self.metric_memo: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self.route_memo: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.levels_memo: dict[tuple[str, str], list[tuple[int, Level, tuple[Any, ...]]]] = {}
        self.tier_memo: dict[tuple[str, str, str], tuple[Any, ...] | None] = {}
        self.trigger_memo: dict[tuple[int, str, str], tuple[Any, ...]] = {}
        #: the desk rules (core/desk.py): None when the policy leaves them out
        self.phi = None if policy.patient_data is None else PhiChecker(policy.kb_redact)
        self.phi_label = policy.label("phi-detected")
        self.completeness = policy.completeness
        self.needs_info_label = policy.label("needs-info")
        self.closure = policy.confirmed_closure
        self.categories = policy.categories
        self.releases = policy.releases
        self.contacts = policy.contacts
        self.unregistered_label = policy.label("unregistered-contact")
        self.release_labels = {
            stage: policy.label("release", stage) for stage in RELEASE_STAGES}
        self.enhancement_label = policy.label("enhancement")
        self.unconfirmed_label = policy.label("closed-unconfirmed")

    # -- lookups from ticket values ----------------------------------------------------------

    def group(self, status: str | None) -> tuple[str, bool]:
        g = self.groups.get(status)
        if g is None:
            name = self.policy.status_group(status)
            g = (name, name not in ("waiting", "resolved", "closed"))
            if len(self.groups) >= _MEMO_LIMIT:
                self.groups.clear()
            self.groups[status] = g
        return g

    def plan_for(self, name: str | None) -> tuple[Plan, str | None]:
        p = self.plans.get(name)
        if p is None:
            p = self.policy.plan_for(name)
            if len(self.plans) >= _MEMO_LIMIT:
                self.plans.clear()
            self.plans[name] = p
        return p

    def tier_of(self, raw: str | None) -> str | None:
        """The ladder's tier a tier field value names (case-folded): the first tier for no
        value, None for a value not in the ladder."""
        assert self.tiers is not None
        if raw is None:
            return self.tiers.order[0]
        return self.tier_folded.get(raw.strip().casefold())

    # -- per class and plan ------------------------------------------------------------------

    def metric(self, class_: str, plan: str, metric: str) -> tuple[Any, ...]:
        """``(calendar, its name, target timedelta, target us, warning threshold us)``; the
        last three None when the class has no target for the metric."""
        key = (class_, plan, metric)
        info = self.metric_memo.get(key)
        if info is None:
            p = self.policy
            cal_name = p.calendar_name(class_, plan, metric)
            info = _timed(p.calendars[cal_name], cal_name, p.target(class_, plan, metric),
                          p.warn_at)
            self.metric_memo[key] = info
        return info

    def outside_metric(self, class_: str, plan: str, metric: str) -> tuple[Any, ...]:
        """:meth:`metric` for the target's ``outside_hours`` alternative."""
        key = (class_, plan, metric)
        info = self.outside_memo.get(key)
        if info is None:
            p = self.policy
            out = p.classes[class_][metric].outside_hours
            assert out is not None
            cal_name = out.calendar or p.calendar_name(class_, plan, metric)
            cal = p.calendars[cal_name]
            d = out.duration
            info = _timed(cal, cal_name, None if d is None else d.resolve(cal.business_day),
                          p.warn_at)
            self.outside_memo[key] = info
        return info

    def extra_metric(self, class_: str, plan: str, what: str) -> tuple[Any, ...]:
        """``(calendar, its name, target timedelta, target us, warning us)`` of a duration
        that is not a class target: ``what`` is ``tier:<tier>`` (its ``tiers.response``, on
        the class's response calendar) or ``request`` (``escalation.request_response``, on
        its resolution calendar); the last three None when there is no such duration."""
        key = (class_, plan, what)
        info = self.extra_memo.get(key)
        if info is None:
            p = self.policy
            if what == "request":
                assert p.escalation is not None
                d, metric = p.escalation.request_response, "resolution"
            else:
                assert p.tiers is not None
                d, metric = p.tiers.response.get(what[5:]), "response"
            cal_name = p.calendar_name(class_, plan, metric)
            cal = p.calendars[cal_name]
            info = _timed(cal, cal_name, None if d is None else d.resolve(cal.business_day),
                          p.warn_at)
            self.extra_memo[key] = info
        return info

    def route(self, class_: str, plan: str) -> tuple[Any, ...]:
        """``(response info, resolution info)``: :meth:`metric` for both metrics."""
        key = (class_, plan)
        r = self.route_memo.get(key)
        if r is None:
            r = self.route_memo[key] = (
                self.metric(class_, plan, "response"), self.metric(class_, plan, "resolution"))
        return r

    def levels(self, class_: str, plan: str) -> list[tuple[int, Level, tuple[Any, ...]]]:
        """``(index, level, trigger)`` for each escalation level that applies to the class
        (asked only for an open ticket: a trigger's duration is resolved when first needed)."""
        key = (class_, plan)
        r = self.levels_memo.get(key)
        if r is None:
            r = []
            assert self.escalation is not None
            for idx, lv in enumerate(self.escalation.levels, start=1):
                if lv.after is None:  # on_request: no time trigger reaches it
                    continue
                if lv.classes is None or class_ in lv.classes:
                    r.append((idx, lv, self.trigger(idx, lv.after, class_, plan)))
            self.levels_memo[key] = r
        return r

    def tier_limit(self, tier: str, class_: str, plan: str) -> tuple[Any, ...] | None:
        """``(limit as written, limit us, calendar, next tier)``, or None: no limit here."""
        key = (tier, class_, plan)
        if key in self.tier_memo:
            return self.tier_memo[key]
        assert self.tiers is not None
        limit_d = self.tiers.ladder[tier].get(class_)
        nxt = self.tier_next[tier]
        info = None
        if limit_d is not None and nxt is not None:
            cal = self.policy.calendar(class_, plan, "resolution")
            info = (limit_d, limit_d.resolve(cal.business_day) // _US, cal, nxt)
        self.tier_memo[key] = info
        return info

    def trigger(self, idx: int, trig: Trigger, class_: str, plan: str) -> tuple[Any, ...]:
        """``(metric, threshold us or None)`` for a fraction of a target, ``(None, calendar,
        duration us)`` for time since creation."""
        key = (idx, class_, plan)
        info = self.trigger_memo.get(key)
        if info is None:
            p = self.policy
            if trig.metric is not None and trig.fraction is not None:
                target_td = p.target(class_, plan, trig.metric)
                threshold = (
                    None if target_td is None
                    else math.ceil((target_td // _US) * trig.fraction)
                )
                info = (trig.metric, threshold)
            else:
                assert trig.created is not None
                cal = p.calendars[trig.calendar] if trig.calendar else p.calendar(class_, plan)
                info = (None, cal, trig.created.resolve(cal.business_day) // _US)
            self.trigger_memo[key] = info
        return info


def compiled(policy: Policy) -> _Compiled:
    """The policy's compiled form, made on first use and kept on the policy."""
    c = policy.compiled
    if c is None:
        c = _Compiled(policy)
        object.__setattr__(policy, "compiled", c)
    return c


# -- classification ----------------------------------------------------------------------------


def _classify(
    c: _Compiled, ticket: Ticket, fields: Mapping[str, str | None]
) -> tuple[str, str, tuple[Any, ...]]:
    """``(class, rule, why)``; ``why`` is what :func:`_why_class` words."""
    if c.overrides:
        text = f"{ticket.subject}\n{ticket.description}"
        overrides = c.overrides
        if c.text_any is not None and not c.text_any(text):  # no text pattern matches
            overrides = c.overrides_untexted
        for rule in overrides:
            if _rule_matches(rule, text, ticket, fields):
                i, class_, w = rule[:3]
                return _raised(c, ticket, fields, class_, f"override:{i}", ("override", i, w))
    field = c.class_field
    value = fields.get(field)
    if value is not None:
        mapped = c.map_exact.get(value) if value in c.map_exact else c.map_folded.get(
            value.strip().casefold())
        if mapped is not None:
            return _raised(c, ticket, fields, mapped, f"map:{field}",
                           ("map", field, value, mapped))
    m = c.matrix
    if m is not None:
        u, i_ = fields.get(m.urgency), fields.get(m.impact)
        if u is not None and i_ is not None:
            row_key = c.rows.get(u.strip().casefold())
            if row_key is not None:
                row, row_folded = c.row_maps[row_key]
                cls = row[i_] if i_ in row else row_folded.get(i_.strip().casefold())
                if cls is not None:
                    return _raised(c, ticket, fields, cls, f"matrix:{m.urgency}x{m.impact}",
                                   ("matrix", m, u, i_, cls))
    default = c.policy.default_class
    return _raised(c, ticket, fields, default, "default", ("default", default))


def _rule_matches(
    rule: tuple[Any, ...], text: str, ticket: Ticket, fields: Mapping[str, str | None]
) -> bool:
    """Whether an override's ``when`` holds (every condition it gives)."""
    _i, _class, w, folded_in, text_matches, matches = rule
    if text_matches is not None and not text_matches(text):
        return False
    if w.field is not None:
        value = fields.get(w.field)
        if (
            value is None
            or (folded_in is not None and value.strip().casefold() not in folded_in)
            or (matches is not None and not matches(value))
        ):
            return False
    return not (w.labels_any is not None and not (set(ticket.labels) & w.labels_any))


def _raised(
    c: _Compiled, ticket: Ticket, fields: Mapping[str, str | None], class_: str, rule: str,
    why: tuple[Any, ...],
) -> tuple[str, str, tuple[Any, ...]]:
    """The class after the ``at_least`` overrides: the most severe of ``class_`` and every
    matching rule's class (never lower)."""
    if not c.at_least:
        return class_, rule, why
    text = f"{ticket.subject}\n{ticket.description}"
    rank = c.rank
    best = None
    for r in c.at_least:
        if rank[r[1]] < rank[best[1] if best is not None else class_] and _rule_matches(
                r, text, ticket, fields):
            best = r
    if best is None:
        return class_, rule, why
    i, raised, w = best[:3]
    return raised, f"at_least:{i}", ("at_least", i, w, class_, why)


def _why_class(why: tuple[Any, ...]) -> str:
    kind = why[0]
    if kind == "override":
        return f"override rule {why[1]}: {why[2].describe()}"
    if kind == "at_least":
        _, i, w, was, was_why = why
        return (f"override rule {i} raises {was} to at least this class: {w.describe()} "
                f"(before it: {_why_class(was_why)})")
    if kind == "map":
        _, field, value, mapped = why
        return f"{field} is {value!r}, mapped to {mapped}"
    if kind == "matrix":
        _, m, u, i_, cls = why
        return f"{m.urgency} {u!r} x {m.impact} {i_!r} in the matrix gives {cls}"
    if kind == "category":
        _, field, value, cls = why
        return f"{field} is {value!r}, a technical question: its own class {cls}"
    return f"no rule matched; the default class is {why[1]}"


def classify(
    policy: Policy, ticket: Ticket, fields: Mapping[str, str | None]
) -> tuple[str, str, str]:
    """``(class, rule, reason)``: overrides, then the mapped field, the matrix, the default."""
    class_, rule, why = _classify(compiled(policy), ticket, fields)
    return class_, rule, _why_class(why)


# -- the clocks ------------------------------------------------------------------------------


class _Clock:
    """Running intervals of one clock on one calendar; the last may still be running."""

    __slots__ = (
        "cal", "elapsed", "intervals", "last_cum", "last_start", "ongoing", "reached", "works"
    )

    def __init__(
        self, cal: BusinessCalendar, intervals: list[tuple[int, int]], ongoing: bool
    ) -> None:
        self.cal = cal
        self.intervals = intervals
        self.ongoing = ongoing
        self.works = works = cal.works_us(intervals)
        self.elapsed = elapsed = sum(works)
        if ongoing:  # (an ongoing clock has at least its (now, now) interval)
            self.last_start = intervals[-1][0]
            self.last_cum = elapsed - works[-1]
        #: amount -> instant, for the amounts asked already (a level at 100% of a target asks
        #: for the instant the metric's due date already is)
        self.reached: dict[int, int | None] = {}

    def reach(self, amount: int) -> int | None:
        """The instant the clock's accumulated time reaches ``amount``, or None if it never will."""
        reached = self.reached
        if amount in reached:
            return reached[amount]
        if self.ongoing and amount > self.elapsed:
            # past what has elapsed: only the running interval can reach it
            at = reached[amount] = self.cal.add_us(self.last_start, amount - self.last_cum)
            return at
        cum = 0
        works = self.works
        last = len(works) - 1 if self.ongoing else -1
        for i, (a, _b) in enumerate(self.intervals):
            if amount - cum <= works[i] or i == last:
                at = reached[amount] = self.cal.add_us(a, max(0, amount - cum))
                return at
            cum += works[i]
        reached[amount] = None
        return None


def _intervals(
    runs: list[tuple[int, int]], running_now: bool, created: int, now: int,
    start: int | None = None, stop: int | None = None,
) -> tuple[list[tuple[int, int]], bool]:
    """Intervals in [start, min(stop, now)] in statuses where the clocks run; and whether the
    clock is running at ``now`` (so the last interval continues into the future).

    ``runs``: ``(from, to)`` of each status segment in which the clocks run, in order (the
    last segment's ``to`` is now); ``running_now``: whether they run in the last one."""
    lo = created if start is None else max(start, created)
    hi = now if stop is None else min(stop, now)
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if a < lo:
            a = lo
        if b > hi:
            b = hi
        if a > b:
            continue
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        elif b > a:
            out.append((a, b))
    ongoing = (stop is None or stop > now) and lo <= now and running_now
    if ongoing and (not out or out[-1][1] != now):
        out.append((now, now))
    return out, ongoing


# -- texts, written when read ------------------------------------------------------------------


def _midnight_us(day: date, zone: ZoneInfo) -> int:
    """The instant a day starts in ``zone``, in microseconds."""
    return to_us(datetime.combine(day, time(), tzinfo=zone))


def _local(policy: Policy, us: int) -> str:
    return from_us(us).astimezone(ZoneInfo(policy.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _breach_text(
    metric: str, class_: str, plan: str, target_td: timedelta, cal_words: str, elapsed: int
) -> str:
    return (
        f"SLA breach: the {metric} target for a {class_} ticket on the {plan} plan is "
        f"{format_duration(target_td)} of working time counted on {cal_words}; "
        f"{format_duration(_td(elapsed))} has elapsed."
    )


def _tier_text(class_: str, spent: int, tier: str, limit_d: Duration, escalate_to: str) -> str:
    return (
        f"Functional escalation: this {class_} ticket has spent "
        f"{format_duration(_td(spent))} in {tier} (limit {limit_d}); "
        f"escalate to {escalate_to}."
    )


def _level_text(
    reached: int, name: str, trig: Trigger | None, class_: str, requested_label: str | None,
) -> str:
    if trig is None:  # an on_request level
        return (
            f"Hierarchical escalation: level {reached} ({name}) - reached on the customer's "
            f"request ({requested_label!r}) for this {class_} ticket."
        )
    return (
        f"Hierarchical escalation: level {reached} ({name}) - {trig.describe()} "
        f"reached for this {class_} ticket."
    )


def _kb_text(
    policy: Policy, ticket: Ticket, class_: str, plan: str, stopped_at: int,
    metrics: Mapping[str, MetricVerdict], now: datetime,
) -> str:
    sla_lines = [
        f"SLA {name}: {m.state}, {format_duration(m.elapsed)}"
        + (f" of {format_duration(m.target)}" if m.target is not None else "")
        for name, m in metrics.items()
    ]
    return kb_note(
        ticket,
        class_=class_,
        plan=plan,
        resolved_at_text=_local(policy, stopped_at),
        sla_lines=sla_lines,
        extra_redact=policy.kb_redact,
        until=now.timestamp(),
    )


def _explain(policy: Policy, steps: Iterable[tuple[Any, ...]]) -> tuple[str, ...]:
    """The verdict's reasons in words, from the steps ``evaluate`` recorded."""
    out: list[str] = []
    for step in steps:
        kind = step[0]
        if kind == "class":
            out.append(f"class {step[1]}: {_why_class(step[2])}")
        elif kind == "plan":
            _, plan, warning = step
            out.append(f"plan {plan}" + (f" ({warning})" if warning else ""))
        elif kind == "untimed":
            _, metric, elapsed, cal_name = step
            out.append(
                f"{metric}: no target; {format_duration(_td(elapsed))} elapsed on {cal_name}"
            )
        elif kind == "recurring":
            out.append(_recurring_reason(policy, step))
        elif kind == "metric":
            _, metric, state, elapsed, target_td, cal_name, due_us, stop, response_why, outside = (
                step)
            how = ""
            if stop is not None:
                how = f"stopped {_local(policy, stop)}" + (
                    f" ({response_why})" if metric == "response" else ""
                )
            out.append(
                f"{metric}: {state}, {format_duration(_td(elapsed))} of "
                f"{format_duration(target_td)} on {cal_name}"
                + (f", due {_local(policy, due_us)}" if due_us is not None else "")
                + (f", {how}" if how else "")
                + (f" (created outside the hours of the {outside} calendar: its outside_hours "
                   "target)" if outside else "")
            )
        elif kind == "tier":
            _, tier, spent, limit_d, escalate_to = step
            used = f"tier {tier}: {format_duration(_td(spent))} of {limit_d} used"
            out.append(used + (f"; escalate to {escalate_to}" if escalate_to else ""))
        elif kind == "contacts":
            _, field, raw, known, reporter, registered, label = step
            if not known:
                out.append(f"contacts: {field} {raw!r} lists no registered contacts: not checked")
            elif registered is None:
                out.append("contacts: no reporter: not checked")
            elif registered:
                out.append(f"contacts: {reporter} is a registered contact of {raw}")
            else:
                out.append(f"contacts: {reporter} is not a registered contact of {raw} ({label})")
        elif kind == "release":
            _, version, release, field = step
            if release is None:
                out.append(f"release: {field} {version!r} names no released version: no stage")
            else:
                stage, rel_of, current, eol, _ = release
                text = (f"release: {field} {version!r} is release {rel_of.version}, "
                        f"{stage} (current {current.version}")
                text += f"; end of life {eol.isoformat()})" if eol is not None else ")"
                if stage == "eosl":
                    text += ": the clocks do not run"
                out.append(text)
        elif kind == "enhancement":
            out.append(f"category: an enhancement request, no resolution target; {step[1]} "
                       "for product management")
        elif kind == "complete":
            _, missing, category, hold, start, label = step
            which = f"category {category}" if category else "no category: the default set"
            if missing:
                text = f"completeness ({which}): missing {', '.join(missing)} ({label})"
                if hold:
                    text += "; the response clock waits for it"
            else:
                text = f"completeness ({which}): complete"
                if hold and start is not None:
                    text += f" since {_local(policy, start)}; the response clock runs from then"
            out.append(text)
        elif kind == "closure":
            _, group, answered, by, unconfirmed, remind_at, label = step
            if group == "closed" and unconfirmed:
                text = (f"closure: closed by {by or 'someone unknown'} without an answer from "
                        f"the customer after the resolution ({label})")
            elif group == "closed":
                text = ("closure: closed after the customer answered" if answered
                        else "closure: closed by the customer")
            elif answered:
                text = "closure: resolved; the customer has answered since"
            else:
                text = "closure: resolved, awaiting the customer's confirmation"
                if remind_at is not None:
                    text += f"; reminder from {_local(policy, remind_at)}"
            out.append(text)
        elif kind == "phi":
            _, places, label = step
            out.append(
                f"patient data: found in {', '.join(places)} ({label})" if places
                else "patient data: none found")
        else:  # escalation
            _, triggered, requested, requested_label, floor, n_levels, level = step
            why = f"triggered level {triggered}" if triggered else "no level triggered"
            if requested:
                why += f"; raised by one on request ({requested_label!r})"
            if floor > min(triggered + requested, n_levels):
                why += f"; kept at level {floor} (levels never go down while open)"
            out.append(f"escalation: {why}" + (f" -> {level}" if level else ""))
    return tuple(out)


# -- update, tier_response, escalation_response -------------------------------------------------


def _recurring_metrics(
    c: _Compiled, ticket: Ticket, history: Sequence[Any], ats: list[int], now_us: int,
    created: int, runs: list[tuple[int, int]], running_now: bool, seg_at: list[int],
    seg_group: list[tuple[str, bool]], stopped_at: int | None, response_stop: int | None,
    class_: str, plan: str, fields: Mapping[str, str | None], outside: frozenset[str],
    metrics: dict[str, MetricVerdict], labels: set[str], notes: list[Note],
    candidates: list[int], steps: list[tuple[Any, ...]], warnings: list[str],
) -> None:
    """The periodic update, the response in each tier and the reply to an escalation request
    (docs/semantics.md, "Clocks that start again"): each is a series of occurrences; the
    verdict reports the current one, a breach note for every one that breached."""
    group = c.group
    reporter = ticket.reporter
    # the events of the past, each instant read as at creation when before it
    past = [(ev, at if at >= created else created)
            for ev, at in zip(history, ats, strict=True) if at <= now_us]

    def reply(ev: Any) -> bool:
        """A public comment by someone other than the reporter (and not one of our notes)."""
        return bool(
            ev.kind == "comment" and ev.public and (ev.by is None or ev.by != reporter)
            and not is_bridge_note(ev.text))

    answers = [at for ev, at in past if reply(ev)]
    targets = c.policy.classes[class_]
    if c.update and "update" in targets:
        if "update" in outside:
            info = c.outside_metric(class_, plan, "update")
        else:
            info = c.metric(class_, plan, "update")
        spans: list[tuple[int, int | None, tuple[Any, ...], str | None]] = []
        if response_stop is not None and response_stop <= now_us:
            restarts = [response_stop]
            for ev, at in past:
                if at <= restarts[-1]:
                    continue
                if reply(ev) or (
                    ev.kind == "status" and ev.to is not None
                    and group(ev.to)[0] in ("new", "open")
                ):
                    restarts.append(at)
            for a, b in pairwise(restarts):
                spans.append((a, b, info, None))
            last = restarts[-1]
            spans.append((last, None if stopped_at is None else max(stopped_at, last), info,
                          None))
        _report(c, "update", info, spans, runs, running_now, created, now_us, class_, plan,
                metrics, labels, notes, candidates, steps,
                c.metric(class_, plan, "update")[1] if "update" in outside else None)
    if c.tier_response:
        tiers = c.tiers
        assert tiers is not None
        tier_field = tiers.field
        tier_of = c.tier_of
        moves = [(ev, at) for ev, at in past if ev.kind == "field" and ev.field == tier_field]
        current = tier_of(moves[0][0].from_ if moves else fields.get(tier_field))
        entries = [(created, current)]
        for ev, at in moves:
            t = tier_of(ev.to)
            if t != entries[-1][1]:
                entries.append((at, t))
        # response events after a tier entry: a public reply, or leaving `new`
        responses = answers if c.on_comment else []
        if c.on_status:
            prev = seg_group[0][0]
            outs = []
            for ev, at in past:
                if ev.kind == "status" and ev.to is not None:
                    g = group(ev.to)[0]
                    if prev == "new" and g != "new":
                        outs.append(at)
                    prev = g
            responses = sorted(responses + outs)
        spans = []
        for i, (at, t) in enumerate(entries):
            if i == 0:
                stop = response_stop
            else:
                k = bisect_right(responses, at)
                stop = responses[k] if k < len(responses) else None
            ends = [x for x in (stop, entries[i + 1][0] if i + 1 < len(entries) else None,
                                stopped_at if stopped_at is not None and stopped_at >= at
                                else None) if x is not None]
            info = c.extra_metric(class_, plan, "tier:" + (t or ""))
            spans.append((at, min(ends) if ends else None, info, t))
        _report(c, "tier_response", spans[-1][2], spans, runs, running_now, created, now_us,
                class_, plan, metrics, labels, notes, candidates, steps, None)
    if c.esc_response:
        esc = c.escalation
        assert esc is not None and esc.requested_label is not None
        wanted = esc.requested_label
        info = c.extra_metric(class_, plan, "request")
        adds = [at for ev, at in past if ev.kind == "label" and wanted in ev.added]
        if not adds and wanted in ticket.labels:
            upd = None if ticket.updated is None else to_us(ticket.updated)
            at = upd if upd is not None and created <= upd <= now_us else created
            adds = [at]
            warnings.append(
                f"{ticket.ref}: carries {wanted!r} but no history event adds it: the request "
                f"is read as made at {from_us(at).isoformat()} (the ticket's "
                f"{'last update' if at == upd else 'creation'})")
        starts: list[tuple[int, int | None]] = []
        for a in adds:
            if starts and (starts[-1][1] is None or starts[-1][1] > a):
                continue  # asked again while still unanswered: the first request counts
            k = bisect_right(answers, a)
            starts.append((a, answers[k] if k < len(answers) else None))
        live = [(a, b) for a, b, g in zip(seg_at, [*seg_at[1:], now_us], seg_group, strict=True)
                if g[0] not in _STOPPED_GROUPS]
        spans = []
        for a, stop in starts:
            ends = [x for x in (stop, stopped_at if stopped_at is not None and stopped_at >= a
                                else None) if x is not None]
            spans.append((a, min(ends) if ends else None, info, None))
        _report(c, "escalation_response", info, spans, live,
                seg_group[-1][0] not in _STOPPED_GROUPS, created, now_us, class_, plan, metrics,
                labels, notes, candidates, steps, None)


def _report(
    c: _Compiled, metric: str, info: tuple[Any, ...],
    spans: list[tuple[int, int | None, tuple[Any, ...], str | None]],
    runs: list[tuple[int, int]], running_now: bool, created: int, now_us: int, class_: str,
    plan: str, metrics: dict[str, MetricVerdict], labels: set[str], notes: list[Note],
    candidates: list[int], steps: list[tuple[Any, ...]], outside: str | None,
) -> None:
    """One recurring metric's verdict from its occurrences ``(start, end or None, info,
    tier)``: the last is the current one."""
    occurrences = []
    breaches = 0
    clock = None
    for start, end, (cal, _cal_name, target_td, target, _warn), tier in spans:
        ivs, ongoing = _intervals(runs, running_now, created, now_us, start=start, stop=end)
        clock = _Clock(cal, ivs, ongoing)
        breached = target is not None and clock.elapsed > target
        if breached:
            breaches += 1
            notes.append(Note.later(
                f"breach:{metric}:{breaches}",
                partial(_recurring_text, c.policy, metric, class_, target_td, cal.words,
                        clock.elapsed, start, tier,
                        c.policy.escalation.requested_label if c.policy.escalation else None),
            ))
        occurrences.append(Occurrence(
            from_us(start), None if end is None or end > now_us else from_us(end),
            _td(clock.elapsed), breached, tier))
    cal, cal_name, target_td, target, warn = info
    due_us = stop = None
    remaining = None
    if clock is None:
        state, elapsed = "not_started", 0
        remaining = target_td
    else:
        elapsed = clock.elapsed
        start, end = spans[-1][:2]
        stopped = end is not None and end <= now_us
        if stopped:
            stop = end
        if target is None:
            state = "no_target"
        elif stopped:
            state = "met" if elapsed <= target else "breached"
        elif elapsed > target:
            state = "breached"
        elif not clock.ongoing:
            state = "paused"
        elif elapsed >= warn:
            state = "at_risk"
        else:
            state = "running"
        if target is not None and not stopped:
            remaining = _td(target - elapsed)
            if clock.ongoing:
                due_us = clock.reach(target)
                if elapsed < warn and (t := clock.reach(warn)) is not None:
                    candidates.append(t)
                if elapsed <= target and (t := clock.reach(target + 1)) is not None:
                    candidates.append(t)
    if state in ("at_risk", "breached"):
        labels.add(c.state_labels[state, metric])
    if state == "paused":
        labels.add(c.paused_label)
    m = metric_verdict(
        metric, state, _td(elapsed), target_td, None if due_us is None else from_us(due_us),
        remaining, cal_name, None if stop is None else from_us(stop))
    object.__setattr__(m, "occurrences", tuple(occurrences))
    metrics[metric] = m
    steps.append((
        "recurring", metric, state, elapsed, target_td, cal_name, due_us,
        spans[-1][0] if spans else None, stop, len(spans), breaches,
        spans[-1][3] if spans else None, outside,
        c.policy.escalation.requested_label if c.policy.escalation else None,
    ))


def _recurring_text(
    policy: Policy, metric: str, class_: str, target_td: timedelta, cal_words: str,
    elapsed: int, start: int, tier: str | None, requested_label: str | None,
) -> str:
    spent = format_duration(_td(elapsed))
    allowed = f"{format_duration(target_td)} of working time counted on {cal_words}"
    since = _local(policy, start)
    if metric == "update":
        return (f"SLA breach: no update on this {class_} ticket for {spent} since {since} "
                f"(an update is due every {allowed}).")
    if metric == "tier_response":
        return (f"SLA breach: no response within {allowed} after this {class_} ticket "
                f"entered {tier} at {since}; {spent} has elapsed.")
    return (f"SLA breach: the customer's escalation request ({requested_label!r}, {since}) "
            f"has had no reply within {allowed}; {spent} has elapsed.")


def _recurring_reason(policy: Policy, step: tuple[Any, ...]) -> str:
    (_, metric, state, elapsed, target_td, cal_name, due_us, start, stop, n, breaches, tier,
     outside, requested_label) = step
    if state == "not_started":
        why = {
            "update": "it starts at the first response",
            "escalation_response": f"nobody has added {requested_label!r}",
        }.get(metric, "")
        return f"{metric}: not started ({why})"
    since = {
        "update": "since the last update" if n > 1 else "since the first response",
        "tier_response": f"since the ticket entered {tier}",
        "escalation_response": f"since {requested_label!r} was added",
    }[metric]
    text = f"{metric}: {state}, {format_duration(_td(elapsed))}"
    if target_td is not None:
        text += f" of {format_duration(target_td)}"
    text += f" on {cal_name} {since} ({_local(policy, start)})"
    if due_us is not None:
        text += f", due {_local(policy, due_us)}"
    if stop is not None:
        text += f", stopped {_local(policy, stop)}"
    if outside:
        text += f" (created outside the hours of the {outside} calendar: its outside_hours target)"
    what = {"update": "gap", "tier_response": "tier entry", "escalation_response": "request"}[
        metric]
    text += f"; {n} {what}{'s' if n != 1 else ''} so far, {breaches} breached"
    return text


# -- the verdict -----------------------------------------------------------------------------


def _instant_error(ticket: Ticket, now: datetime) -> None:
    """Raise the error the first unusable instant gives (in the order they are read)."""
    to_us(now)
    to_us(ticket.created)
    for ev in ticket.history:
        to_us(ev.at)


def evaluate(policy: Policy, ticket: Ticket, now: datetime) -> Verdict:
    """The engine's verdict on one ticket at ``now`` (an aware datetime)."""
    c = policy.compiled or compiled(policy)
    epoch = _EPOCH
    history = ticket.history

    # -- the ticket as it was at now: one pass over the history, each instant read once ------
    try:
        d = now - epoch
        now_us = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        d = ticket.created - epoch
        created = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        # (days, seconds, microseconds) by hand: about twice as fast as // timedelta(1 us);
        # the walrus names each event's timedelta once (the condition is always true)
        ats = [
            ((d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds)
            for ev in history
            if (d := ev.at - epoch) is not None
        ]
    except TypeError:  # a naive instant
        _instant_error(ticket, now)
        raise
    lowest, highest = min(now_us, created), max(now_us, created)
    first_at = last_at = created
    if ats:
        first_at, last_at = min(ats), max(ats)
        lowest, highest = min(lowest, first_at), max(highest, last_at)
    if lowest < 0 or highest > _HORIZON_US:
        _instant_error(ticket, now)  # outside 1970..2300: the calendar's error, as before

    group = c.group
    status = ticket.status
    fields: Mapping[str, str | None] = ticket.fields
    future = last_at > now_us
    seg_at: list[int] = [created]
    seg_status: list[str | None] = [None]  # the initial status, filled in below
    early = 0
    if not future and first_at >= created:
        # the usual ticket: every event between creation and now; only status changes
        # make segments
        for ev, at in zip(history, ats, strict=True):
            if ev.kind == "status" and (to := ev.to) is not None:
                if at == seg_at[-1]:
                    seg_status[-1] = to
                else:
                    seg_at.append(at)
                    seg_status.append(to)
    else:
        for ev, at in zip(history, ats, strict=True):
            if at > now_us:
                continue
            if at < created:
                early += 1
                if early == 1:
                    first_early = ev
            if ev.kind == "status" and (to := ev.to) is not None:
                if at < created:
                    at = created  # read as at creation
                if at == seg_at[-1]:
                    seg_status[-1] = to
                else:
                    seg_at.append(at)
                    seg_status.append(to)
    first_status = None
    for ev in history:
        if ev.kind == "status":
            first_status = ev
            break
    if future:
        fields = dict(fields)
        for i in range(len(history) - 1, -1, -1):
            if ats[i] <= now_us:
                continue
            ev = history[i]
            if ev.kind == "field" and ev.field:
                fields[ev.field] = ev.from_
            elif ev.kind == "status" and ev.from_ is not None:
                status = ev.from_
    # the status at creation: the first status change's "from", else the status at now;
    # a status change at (or read as at) creation has replaced it already
    initial = first_status.from_ if first_status is not None and first_status.from_ else status
    if seg_status[0] is None:
        seg_status[0] = initial
    warnings: list[str] = []
    if created > now_us:
        warnings.append(
            f"{ticket.ref}: created {ticket.created.isoformat()} is after now: nothing has "
            "elapsed yet (is a clock wrong?)")
    if early:
        warnings.append(
            f"{ticket.ref}: {early} history event(s) before created "
            f"{ticket.created.isoformat()} (first {first_early.at.isoformat()}): read as at "
            "creation")
    if seg_status[-1] != status:
        # The tracker's current status and its history disagree (a change the history
        # missed: an import, a database edit, a lost journal). The current status wins:
        # it holds from the ticket's last update, when that is known and not later than
        # now, else from the last status event (whose target is then read as wrong).
        last = seg_at[-1]
        upd = None if ticket.updated is None else to_us(ticket.updated)
        at = upd if upd is not None and last < upd <= now_us else last
        warnings.append(
            f"{ticket.ref}: status is {status!r} but the history's last status change is to "
            f"{seg_status[-1]!r}: read as {status!r} since {from_us(at).isoformat()}")
        if at == last:
            seg_status[-1] = status
        else:
            seg_at.append(at)
            seg_status.append(status)
    known = c.groups
    seg_group = [known.get(s) or group(s) for s in seg_status]
    seg_end = seg_at[1:]
    seg_end.append(now_us)
    runs = [(a, b) for a, b, g in zip(seg_at, seg_end, seg_group, strict=True) if g[1]]
    running_now = seg_group[-1][1]
    status_now = seg_group[-1][0]
    stopped_at = None
    if status_now in _STOPPED_GROUPS:
        k = len(seg_at) - 1
        while k > 0 and seg_group[k - 1][0] in _STOPPED_GROUPS:
            k -= 1
        stopped_at = seg_at[k]
    open_now = stopped_at is None

    # -- class and plan ----------------------------------------------------------------------
    steps: list[tuple[Any, ...]] = []
    class_, rule, why = _classify(c, ticket, fields)
    category_kind = None
    cg = c.categories
    if cg is not None:
        category_kind = cg.kind(fields.get(cg.field))
        if category_kind == "question" and cg.question_class is not None:
            class_, rule = cg.question_class, f"category:{cg.field}"
            why = ("category", cg.field, fields.get(cg.field), class_)
    steps.append(("class", class_, why))
    raw_plan = fields.get(policy.plan_field)
    plan_obj, plan_warning = c.plans.get(raw_plan) or c.plan_for(raw_plan)
    plan = plan_obj.name
    if plan_warning:
        warnings.append(f"{ticket.ref}: {plan_warning}")
    steps.append(("plan", plan, plan_warning))

    # -- first response ----------------------------------------------------------------------
    response_stop: int | None = None
    response_why = ""
    initial_group = seg_group[0][0]
    if c.on_status and initial_group != "new":
        response_stop, response_why = created, "the ticket was created outside the 'new' statuses"
    else:
        on_status, on_comment = c.on_status, c.on_comment
        reporter = ticket.reporter
        prev_group = initial_group
        for ev, at in zip(history, ats, strict=True):
            if at > now_us:
                continue
            kind = ev.kind
            if kind == "status":
                if ev.to is None:
                    continue
                new_group = (known.get(ev.to) or group(ev.to))[0]
                if on_status and prev_group == "new" and new_group != "new":
                    response_stop = max(at, created)
                    response_why = f"status changed to {ev.to}"
                    break
                prev_group = new_group
            elif (
                kind == "comment"
                and on_comment
                and ev.public
                and (ev.by is None or ev.by != reporter)
                and not (
                    ev.text and MARKER_START in ev.text and NOTE_MARKER_RE.search(ev.text)
                )
            ):
                response_stop = max(at, created)
                response_why = f"public comment by {ev.by}" if ev.by else "public comment"
                break

    early_candidates: list[int] = []
    # -- release lifecycle (a desk rule): no clocks at end of support life -----------------------
    eosl = False
    rel = c.releases
    release = None
    if rel is not None:
        zone = ZoneInfo(policy.timezone)
        version = fields.get(rel.field)
        release = release_stage(rel, version, now.astimezone(zone).date())
        if release is not None:
            stage, _rel, _cur, _eol, changes = release
            eosl = stage == "eosl"
            if changes is not None:
                candidates_early = _midnight_us(changes, zone)
                if candidates_early > now_us:
                    early_candidates.append(candidates_early)
        elif version is not None and version.strip():
            warnings.append(f"{ticket.ref}: version {version!r} is not a released version in "
                            "the policy's releases: no support stage")
        steps.append(("release", version, release, rel.field))

    # -- completeness (a desk rule): may hold the response clock ---------------------------------
    missing: tuple[str, ...] = ()
    category: str | None = None
    response_start: int | None = None  # None: at creation
    held = False  # the response clock waits for a ticket still incomplete
    comp = c.completeness
    if comp is not None:
        missing, category = missing_fields(comp, ticket, fields)
        if comp.hold_response:
            if missing:
                held = True
                response_start = now_us + 1
            else:
                response_start = complete_since(comp, ticket, fields, ats, now_us, created)
        steps.append(("complete", missing, category, comp.hold_response, response_start,
                      c.needs_info_label))

    # -- the two clocks ------------------------------------------------------------------------
    resp_info, res_info = c.route(class_, plan)
    outside: frozenset[str] = frozenset()
    if c.outside and (arrival := c.outside.get(class_)) is not None:
        # targets that depend on when the ticket arrived: decided once, at creation
        outside = frozenset(
            m for m in arrival
            if not (cal := c.metric(class_, plan, m)[0]).always
            and cal.working_us(created, created + 1) == 0
        )
        if "response" in outside:
            resp_info = c.outside_metric(class_, plan, "response")
        if "resolution" in outside:
            res_info = c.outside_metric(class_, plan, "resolution")
    if eosl:  # end of support life: the clocks do not run
        resp_info = (*resp_info[:2], None, None, None)
        res_info = (*res_info[:2], None, None, None)
    if category_kind == "enhancement":  # no resolution target: product management decides
        res_info = (*res_info[:2], None, None, None)
    info = {"response": resp_info, "resolution": res_info}
    res_ivs, res_ongoing = _intervals(runs, running_now, created, now_us)
    if response_stop is None and response_start is None:
        resp_ivs, resp_ongoing = res_ivs, res_ongoing
    else:
        resp_ivs, resp_ongoing = _intervals(
            runs, running_now, created, now_us, start=response_start, stop=response_stop)
    res_cal = res_info[0]
    resp_cal = resp_info[0]
    res_clock = _Clock(res_cal, res_ivs, res_ongoing)
    if resp_ivs is res_ivs and resp_cal is res_cal:
        resp_clock = res_clock
    else:
        resp_clock = _Clock(resp_cal, resp_ivs, resp_ongoing)
    clocks = {"response": resp_clock, "resolution": res_clock}
    stops = {"response": response_stop, "resolution": stopped_at}

    metrics: dict[str, MetricVerdict] = {}
    labels: set[str] = {c.class_labels[class_]}
    notes: list[Note] = []
    candidates: list[int] = early_candidates
    paused_now = (known.get(status) or group(status))[0] == "waiting"
    targets = policy.classes[class_]
    for metric in METRICS:
        if metric not in targets:
            continue
        clock = clocks[metric]
        cal, cal_name, target_td, target, warn = info[metric]
        elapsed = clock.elapsed
        stop = stops[metric]
        stopped = stop is not None and stop <= now_us
        due = remaining = None
        if target is None:
            state = "no_target"
            steps.append(("untimed", metric, elapsed, cal_name))
        else:
            due_us = None
            if stopped:
                state = "met" if elapsed <= target else "breached"
            elif held and metric == "response":
                state = "not_started"
            elif elapsed > target:
                state = "breached"
            elif paused_now:
                state = "paused"
            elif elapsed >= warn:
                state = "at_risk"
            else:
                state = "running"
            if not stopped:
                remaining = timedelta(0, 0, target - elapsed)
                if clock.ongoing:
                    due_us = clock.reach(target)
                    due = None if due_us is None else from_us(due_us)
                    if elapsed < warn and (t := clock.reach(warn)) is not None:
                        candidates.append(t)
                    if elapsed <= target and (t := clock.reach(target + 1)) is not None:
                        candidates.append(t)
            if state == "at_risk" or state == "breached":
                labels.add(c.state_labels[state, metric])
            if state == "breached":
                notes.append(Note.later(
                    "breach:" + metric,
                    partial(_breach_text, metric, class_, plan, target_td, cal.words,
                            elapsed),
                ))
            steps.append((
                "metric", metric, state, elapsed, target_td, cal_name, due_us,
                stop if stopped else None, response_why,
                c.metric(class_, plan, metric)[1] if metric in outside else None,
            ))
        if state == "paused":
            labels.add(c.paused_label)
        metrics[metric] = metric_verdict(
            metric,
            state,
            timedelta(0, 0, elapsed),
            target_td,
            due,
            remaining,
            cal_name,
            from_us(stop) if stopped and stop is not None else None,
        )

    # -- functional escalation (tiers) ------------------------------------------------------------
    tier = escalate_to = None
    if c.tiers is not None:
        tiers = c.tiers
        raw = fields.get(tiers.field)
        tier = c.tier_of(raw)
        if tier is None:
            warnings.append(
                f"{ticket.ref}: tier {raw!r} is not in the ladder ({', '.join(tiers.order)})"
            )
        if tier is not None and open_now:
            entered = created
            folded_tier = tier.casefold()
            for ev, at in zip(history, ats, strict=True):
                if (ev.kind == "field" and ev.field == tiers.field and at <= now_us
                        and (to := ev.to) is not None and to.strip().casefold() == folded_tier):
                    entered = at
            limit = c.tier_limit(tier, class_, plan)
            if limit is not None:
                limit_d, limit_us, cal, nxt = limit
                ivs, ongoing = _intervals(runs, running_now, created, now_us, start=entered)
                tclock = _Clock(cal, ivs, ongoing)
                spent = tclock.elapsed
                if spent >= limit_us:
                    escalate_to = nxt
                    labels.add(c.tier_labels[nxt])
                    notes.append(Note.later(
                        "tier:" + nxt, partial(_tier_text, class_, spent, tier, limit_d, nxt)
                    ))
                    steps.append(("tier", tier, spent, limit_d, nxt))
                else:
                    steps.append(("tier", tier, spent, limit_d, None))
                    if ongoing and (t := tclock.reach(limit_us)) is not None:
                        candidates.append(t)

    # -- the metrics that start again and again ---------------------------------------------------
    if c.extra:
        _recurring_metrics(
            c, ticket, history, ats, now_us, created, runs, running_now, seg_at, seg_group,
            stopped_at, response_stop, class_, plan, fields, outside, metrics, labels, notes,
            candidates, steps, warnings,
        )

    # -- hierarchical escalation ----------------------------------------------------------------
    level = level_index = None
    esc = c.escalation
    if esc is not None and open_now and not eosl:
        triggered = 0
        pending: list[tuple[int, int]] = []  # (level, instant its trigger will fire)
        since_creation: dict[int, int] = {}  # calendar id -> working time since creation
        for idx, _lv, trig in c.levels(class_, plan):
            if trig[0] is not None:
                threshold = trig[1]
                if threshold is None or (category_kind == "enhancement" and trig[0] == "resolution"):
                    continue
                clock = clocks[trig[0]]
                if clock.elapsed >= threshold:
                    triggered = idx
                elif clock.ongoing and (fires := clock.reach(threshold)) is not None:
                    pending.append((idx, fires))
            else:
                _, cal, d = trig
                worked = since_creation.get(id(cal))
                if worked is None:
                    worked = since_creation[id(cal)] = cal.working_us(created, now_us)
                if worked >= d:
                    triggered = idx
                else:
                    pending.append((idx, cal.add_us(created, d)))
        n_levels = len(esc.levels)
        requested = bool(esc.requested_label and esc.requested_label in ticket.labels)
        floor = 0
        if ticket.labels:
            for i, label in enumerate(c.level_labels, start=1):
                if label in ticket.labels:
                    floor = i

        # the level for t triggered: one higher on request, never below the labels' floor
        top = min(triggered + requested, n_levels) if triggered or requested else 0
        reached = top if top > floor else floor
        # a pending trigger matters only if it would change the level
        for idx, t in pending:
            if idx > triggered:
                top = min(idx + requested, n_levels)
                if (top if top > floor else floor) != reached:
                    candidates.append(t)
        if reached:
            lv = esc.levels[reached - 1]
            level, level_index = lv.name, reached
            labels.add(c.level_labels[reached - 1])
            notes.append(Note.later(
                c.level_keys[reached - 1],
                partial(_level_text, reached, lv.name, lv.after, class_, esc.requested_label)
            ))
        steps.append((
            "escalation", triggered, requested, esc.requested_label, floor, n_levels, level,
        ))

    # -- the desk rules ---------------------------------------------------------------------------
    ct = c.contacts
    if ct is not None:
        raw_customer = fields.get(ct.field)
        customer = None if raw_customer is None else ct.customers.get(
            raw_customer.strip().casefold())
        reporter = ticket.reporter
        registered = None
        if customer is not None and reporter is not None:
            registered = reporter.strip().casefold() in customer.contacts
            if not registered:
                labels.add(c.unregistered_label)
                notes.append(Note.later("unregistered:" + slug(reporter), partial(
                    unregistered_text, reporter, customer.name, len(customer.contacts),
                    customer.limit)))
        steps.append(("contacts", ct.field, raw_customer, customer is not None, reporter,
                      registered, c.unregistered_label))
    if release is not None:
        stage, rel_of, current, eol, _ = release
        labels.add(c.release_labels[stage])
        if eosl:
            assert rel is not None and eol is not None
            version = fields.get(rel.field) or rel_of.version
            notes.append(Note.later("eosl:" + slug(rel_of.version), partial(
                eosl_text, version, rel_of, current, eol, rel.extended_days, rel.upgrade)))
    if category_kind == "enhancement":
        labels.add(c.enhancement_label)
        steps.append(("enhancement", c.enhancement_label))
    if missing:
        labels.add(c.needs_info_label)
        notes.append(MissingNote.of(missing, category))
    cc = c.closure
    if cc is not None and stopped_at is not None and ticket.reporter is not None:
        answered = customer_answered(ticket, ats, stopped_at, now_us)
        if status_now == "closed":
            by = closed_by(ticket, ats, now_us)
            unconfirmed = not answered and by != ticket.reporter
            if unconfirmed:
                labels.add(c.unconfirmed_label)
            steps.append(("closure", status_now, answered, by, unconfirmed, None,
                          c.unconfirmed_label))
        else:  # resolved, awaiting the customer's confirmation
            remind_at = None
            if cc.remind_after is not None and not answered:
                cal = res_info[0]
                remind_at = cal.add_us(stopped_at, cc.remind_after.resolve(cal.business_day) // _US)
                if remind_at <= now_us:
                    stamp = from_us(stopped_at).strftime("%Y%m%dT%H%M%SZ")
                    notes.append(Note.later("confirm-reminder:" + stamp, partial(
                        reminder_text, _local(policy, stopped_at))))
                else:
                    candidates.append(remind_at)
            steps.append(("closure", status_now, answered, None, False, remind_at,
                          c.unconfirmed_label))
    if c.phi is not None:
        places = phi_places(policy, c.phi, ticket, ats, now_us, partial(_local, policy))
        if places:
            labels.add(c.phi_label)
            notes.extend(phi_notes(places))
        steps.append(("phi", tuple(where for _, where, _ in places), c.phi_label))

    # -- the KB-ready resolution note ---------------------------------------------------------------
    if stopped_at is not None:
        notes.append(Note.later(
            "kb", partial(_kb_text, policy, ticket, class_, plan, stopped_at, metrics, now)
        ))

    next_change = None
    for t in candidates:
        if t > now_us and (next_change is None or t < next_change):
            next_change = t
    return Verdict.explained_later(
        partial(_explain, policy, steps),
        ticket.ref,
        now,
        class_,
        rule,
        plan,
        metrics,
        tier,
        escalate_to,
        level,
        level_index,
        frozenset(labels),
        policy.label_prefix,
        tuple(notes),
        None if next_change is None else from_us(next_change),
        tuple(warnings),
        (),  # reasons: explained later
        None if stopped_at is None else from_us(stopped_at),
    )


def evaluate_many(policy: Policy, tickets: Sequence[Ticket], now: datetime) -> list[Verdict]:
    """``evaluate`` over several tickets (same ``now``)."""
    return [evaluate(policy, t, now) for t in tickets]
