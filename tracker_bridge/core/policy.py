"""A support policy, compiled: what the engine evaluates tickets against.

The YAML file (docs/policy.md) is validated and turned into these objects by
``tracker_bridge.policyfile``; here everything is already checked and resolved: durations
are parsed, regular expressions compiled, calendars built, references known to exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from datetime import date, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .calendar import BusinessCalendar
from .durations import Duration

if TYPE_CHECKING:
    from . import saferegex

STATUS_GROUPS = ("new", "waiting", "resolved", "closed")
#: the two clocks every policy has (their due instants are the ticket's deadline fields)
METRICS = ("response", "resolution")
#: the targets a class may give (``update``: the periodic update, docs/semantics.md)
CLASS_METRICS = ("response", "resolution", "update")
#: every metric a verdict may list, in the order it lists them
ALL_METRICS = ("response", "resolution", "update", "tier_response", "escalation_response")
RESPONSE_EVENTS = ("status_change", "public_comment")


_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.:-]+")


@lru_cache(maxsize=4096)
def slug(text: str) -> str:
    """A label-safe form of a name: no spaces (JIRA labels cannot hold them); case is kept.

    Cached: a policy's few names are slugged once, not on every verdict."""
    return _NOT_LABEL.sub("-", text.strip()).strip("-") or "x"


@dataclass(frozen=True, slots=True)
class Target:
    """A metric's target for a class; ``calendar`` overrides the plan's calendar.

    ``outside_hours``: the target (and calendar) used instead when the ticket was created
    while the calendar this target is measured on was closed."""

    duration: Duration | None
    calendar: str | None = None
    outside_hours: Target | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """When an override rule applies: every key given must match."""

    text_matches: saferegex.Pattern | None = None
    field: str | None = None
    in_: frozenset[str] | None = None
    matches: saferegex.Pattern | None = None
    labels_any: frozenset[str] | None = None

    def describe(self) -> str:
        parts = []
        if self.text_matches is not None:
            parts.append(f"subject/description matches /{self.text_matches.pattern}/")
        if self.field is not None and self.in_ is not None:
            parts.append(f"{self.field} in [{', '.join(sorted(self.in_))}]")
        if self.field is not None and self.matches is not None:
            parts.append(f"{self.field} matches /{self.matches.pattern}/")
        if self.labels_any is not None:
            parts.append(f"a label in [{', '.join(sorted(self.labels_any))}]")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class Override:
    """``class_`` forced when ``when`` matches; with ``at_least``, the class is raised to at
    least ``class_`` (never lowered), after the forcing overrides, the map and the matrix."""

    class_: str
    when: Condition
    at_least: bool = False


@dataclass(frozen=True, slots=True)
class Matrix:
    impact: str
    urgency: str
    #: urgency -> impact -> class
    table: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Classify:
    field: str = "priority"
    map: Mapping[str, str] = dc_field(default_factory=dict)
    matrix: Matrix | None = None
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    calendar: str
    by_class: Mapping[str, str] = dc_field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tiers:
    field: str
    order: tuple[str, ...]
    #: tier -> class -> resolve-or-escalate time (None: no limit)
    ladder: Mapping[str, Mapping[str, Duration | None]]
    #: tier -> time to the first response after entering it (metric ``tier_response``)
    response: Mapping[str, Duration | None] = dc_field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A hierarchical level's trigger: a fraction of a metric's target, or time since creation."""

    metric: str | None = None
    fraction: Fraction | None = None
    created: Duration | None = None
    calendar: str | None = None

    def describe(self) -> str:
        if self.metric is not None and self.fraction is not None:
            return f"{float(self.fraction) * 100:g}% of the {self.metric} target"
        cal = f" on {self.calendar}" if self.calendar else ""
        return f"{self.created} since creation{cal}"


@dataclass(frozen=True, slots=True)
class Level:
    """A hierarchical level; ``after`` is None for an ``on_request`` level, which no time
    trigger reaches (only a customer's request does)."""

    name: str
    after: Trigger | None
    classes: frozenset[str] | None = None
    on_request: bool = False


@dataclass(frozen=True, slots=True)
class Escalation:
    levels: tuple[Level, ...]
    requested_label: str | None = None
    #: time to the first public reply after the requested label is added
    #: (metric ``escalation_response``)
    request_response: Duration | None = None


@dataclass(frozen=True, slots=True)
class PatientData:
    """``patient_data``: look for patient-identifiable data in the ticket's own text (the KB
    redaction's detector, with the policy's ``kb.redact`` patterns) in the parts named."""

    subject: bool = True
    description: bool = True
    comments: bool = True


@dataclass(frozen=True, slots=True)
class Completeness:
    """``completeness``: the normalized fields a ticket must carry (``subject`` and
    ``description`` name the ticket's own), per category (the value of ``field``, case-folded
    keys) or else ``required``; with ``hold_response`` the response clock starts only once the
    ticket is complete."""

    required: tuple[str, ...] = ()
    by_category: Mapping[str, tuple[str, ...]] = dc_field(default_factory=dict)
    field: str = "category"
    hold_response: bool = False

    def required_for(self, category: str | None) -> tuple[str, ...]:
        if category is not None:
            got = self.by_category.get(category.strip().casefold())
            if got is not None:
                return got
        return self.required


@dataclass(frozen=True, slots=True)
class ConfirmedClosure:
    """``confirmed_closure``: resolved is not closed until the customer (the reporter)
    confirms; ``remind_after``: working time after resolution, on the class's resolution
    calendar, before one reminder note (None: no reminder)."""

    remind_after: Duration | None = None


#: the source documents' incident categories (000: technical question, support incident,
#: enhancement request)
CATEGORY_KINDS = ("question", "incident", "enhancement")


@dataclass(frozen=True, slots=True)
class Categories:
    """``categories``: the values of a normalized field mapped to the document's categories
    (case-folded value -> kind). An ``enhancement`` has no resolution target and is labelled
    for product management; a ``question`` is evaluated under ``question_class`` when given."""

    kinds: Mapping[str, str]
    field: str = "category"
    question_class: str | None = None

    def kind(self, value: str | None) -> str | None:
        return None if value is None else self.kinds.get(value.strip().casefold())


#: a release's support stage (docs/semantics.md, "Desk rules")
RELEASE_STAGES = ("full", "sustaining", "extended", "eosl")
_VERSION = re.compile(r"^\s*[vV]?(\d{1,6})\.(\d{1,6})(?:[.\-+~ ].*)?$")


def release_key(version: str | None) -> tuple[int, int] | None:
    """A version's quarterly release: ``"5.3.1"`` -> ``(5, 3)``; None when it has no
    ``major.minor`` at its start."""
    if version is None:
        return None
    m = _VERSION.match(version)
    return None if m is None else (int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    key: tuple[int, int]
    date: date


@dataclass(frozen=True, slots=True)
class Releases:
    """``releases``: the quarterly releases (version order = date order), how many previous
    ones are sustained, how long extended support lasts past end of life, and the upgrade path
    the end-of-support-life note points to."""

    releases: tuple[Release, ...]
    field: str = "version"
    sustaining: int = 3
    extended_days: int = 365
    upgrade: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    plan: str
    #: case-folded contact names (as the tracker names the reporter)
    contacts: frozenset[str]
    limit: int


@dataclass(frozen=True, slots=True)
class Contacts:
    """``contacts``: per customer (the value of ``field``, case-folded), the contacts entitled
    to open incidents."""

    customers: Mapping[str, Customer]
    field: str = "customer"


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled support policy."""

    name: str
    timezone: str
    calendars: Mapping[str, BusinessCalendar]
    statuses: Mapping[str, tuple[str, ...]]
    #: class -> metric -> target, in severity order (most severe first)
    classes: Mapping[str, Mapping[str, Target]]
    default_class: str
    warn_at: Fraction
    plans: Mapping[str, Plan]
    default_plan: str
    plan_field: str = "plan"
    classify: Classify = dc_field(default_factory=Classify)
    response_events: frozenset[str] = frozenset(RESPONSE_EVENTS)
    tiers: Tiers | None = None
    escalation: Escalation | None = None
    label_prefix: str = "sla-"
    goal: Fraction = Fraction(9, 10)
    description: str = ""
    kb_redact: tuple[saferegex.Pattern, ...] = ()
    #: the desk rules (docs/policy.md, "Desk rules"); None: the rule is off
    patient_data: PatientData | None = None
    completeness: Completeness | None = None
    confirmed_closure: ConfirmedClosure | None = None
    categories: Categories | None = None
    releases: Releases | None = None
    contacts: Contacts | None = None
    source: str = "<policy>"
    #: case-folded status name -> group, derived from ``statuses`` (a hot path of evaluate)
    status_index: Mapping[str, str] = dc_field(default_factory=dict, compare=False, repr=False)
    #: the engine's compiled form of this policy (targets in microseconds, labels, lookups),
    #: built by ``engine.compiled`` on first use; a policy derived by ``replace`` gets its own
    compiled: Any = dc_field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        index = {
            name.strip().casefold(): group
            for group, names in self.statuses.items()
            for name in names
        }
        object.__setattr__(self, "status_index", index)

    # -- statuses -----------------------------------------------------------------------------

    def status_group(self, status: str | None) -> str:
        """``new``, ``waiting``, ``resolved``, ``closed``, or ``open`` for any other status."""
        if status is None:
            return "open"
        return self.status_index.get(status.strip().casefold(), "open")

    def with_status_overrides(self, overrides: Mapping[str, list[str] | tuple[str, ...]]) -> Policy:
        """This policy with some status groups replaced (a tracker's own status names)."""
        if not overrides:
            return self
        moved = {n.casefold() for names in overrides.values() for n in names}
        statuses = {
            g: tuple(n for n in names if n.casefold() not in moved)
            for g, names in self.statuses.items()
        }
        for group, names in overrides.items():
            if group not in STATUS_GROUPS:
                raise ValueError(
                    f"statuses.{group}: not a status group ({', '.join(STATUS_GROUPS)})"
                )
            statuses[group] = tuple(names)
        return replace(self, statuses=statuses)

    # -- calendars and targets ----------------------------------------------------------------

    def plan_for(self, name: str | None) -> tuple[Plan, str | None]:
        """The plan named, or the default plan and a warning when absent or unknown."""
        if name is not None and name in self.plans:
            return self.plans[name], None
        if name is not None:
            folded = {k.casefold(): k for k in self.plans}
            if name.casefold() in folded:
                return self.plans[folded[name.casefold()]], None
            return self.plans[self.default_plan], (
                f"unknown plan {name!r}; using the default plan {self.default_plan!r}"
            )
        return self.plans[self.default_plan], None

    def calendar_name(self, class_: str, plan: str | None, metric: str = "resolution") -> str:
        """The calendar a metric of this class is measured on, under that plan."""
        target = self.classes[class_].get(metric)
        if target is not None and target.calendar is not None:
            return target.calendar
        p, _ = self.plan_for(plan)
        return p.by_class.get(class_, p.calendar)

    def calendar(
        self, class_: str, plan: str | None, metric: str = "resolution"
    ) -> BusinessCalendar:
        return self.calendars[self.calendar_name(class_, plan, metric)]

    def target(self, class_: str, plan: str | None, metric: str) -> timedelta | None:
        """The target as working time on its calendar (``None``: no target)."""
        t = self.classes[class_].get(metric)
        if t is None or t.duration is None:
            return None
        return t.duration.resolve(self.calendar(class_, plan, metric).business_day)

    def arrival(
        self, class_: str, plan: str | None, metric: str, created: datetime
    ) -> tuple[str, Duration | None, bool]:
        """``(calendar name, duration, outside hours)`` of a target for a ticket created at
        ``created``: the ``outside_hours`` target and calendar when the target has one and
        its own calendar is closed at that instant, else the target as written."""
        t = self.classes[class_].get(metric)
        cal_name = self.calendar_name(class_, plan, metric)
        if t is None:
            return cal_name, None, False
        out = t.outside_hours
        if out is not None and not self.calendars[cal_name].is_open(created):
            return out.calendar or cal_name, out.duration, True
        return cal_name, t.duration, False

    def deadline(
        self, class_: str, plan: str | None, start: datetime, metric: str = "resolution"
    ) -> datetime | None:
        """The due instant of one target for a ticket created at ``start`` (pure calendar
        arithmetic; an ``outside_hours`` target applies when ``start`` is outside hours)."""
        cal_name, duration, _ = self.arrival(class_, plan, metric, start)
        if duration is None:
            return None
        cal = self.calendars[cal_name]
        return cal.add(start, duration.resolve(cal.business_day))

    # -- labels -------------------------------------------------------------------------------

    def metrics(self) -> tuple[str, ...]:
        """The metrics this policy measures (some classes may still leave some out)."""
        out = list(METRICS)
        if any("update" in targets for targets in self.classes.values()):
            out.append("update")
        if self.tiers is not None and self.tiers.response:
            out.append("tier_response")
        if self.escalation is not None and self.escalation.request_response is not None:
            out.append("escalation_response")
        return tuple(out)

    def label(self, *parts: str) -> str:
        return self.label_prefix + "-".join(slug(p) for p in parts)

    def metric_label(self, state: str, metric: str) -> str:
        """``<prefix>at-risk-<metric>`` / ``<prefix>breached-<metric>``, the metric's ``_``
        written ``-`` (``sla-breached-tier-response``)."""
        return self.label("at-risk" if state == "at_risk" else state, metric.replace("_", "-"))

    def class_label(self, class_: str) -> str:
        return self.label(class_)

    def all_labels(self) -> list[str]:
        """Every label the engine can ever ask for, in a stable order.

        A tracker that keeps labels in a list field (Redmine) must offer exactly these values.
        """
        out = [self.class_label(c) for c in self.classes]
        for metric in self.metrics():
            out += [self.metric_label("at_risk", metric), self.metric_label("breached", metric)]
        out.append(self.label("paused"))
        if self.tiers is not None:
            out += [self.label("escalate-to", t) for t in self.tiers.order[1:]]
        if self.escalation is not None:
            out += [self.label("level", lv.name) for lv in self.escalation.levels]
        if self.patient_data is not None:
            out.append(self.label("phi-detected"))
        if self.completeness is not None:
            out.append(self.label("needs-info"))
        if self.confirmed_closure is not None:
            out.append(self.label("closed-unconfirmed"))
        if self.categories is not None:
            out.append(self.label("enhancement"))
        if self.releases is not None:
            out += [self.label("release", stage) for stage in RELEASE_STAGES]
        if self.contacts is not None:
            out.append(self.label("unregistered-contact"))
        seen: set[str] = set()
        return [x for x in out if not (x in seen or seen.add(x))]
