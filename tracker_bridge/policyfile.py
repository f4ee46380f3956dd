"""Load a policy YAML file (every key: docs/policy.md) into a compiled :class:`Policy`.

Every error names its path in the file and, where known, its line:
``care.yaml:14: classes.high.response: "1x" is not a duration``. Unknown keys are errors
(a typo must not silently drop a rule). Errors raise :class:`ConfigError` (exit status 2).

The file is read by :mod:`tracker_bridge.inputfile` (size cap, encoding, one YAML parse
without aliases, duplicate keys and deep nesting refused). Two things differ from a plain
``yaml.safe_load`` on purpose:
- only ``true``/``false`` are booleans (YAML 1.2), so a holiday country ``NO`` (Norway) or a
  status named ``On`` stays a string;
- mapping keys are strings, so classes may be named ``1``..``5``.

Patterns (``text_matches``, ``matches``, ``kb.redact``) are compiled by RE2
(:func:`tracker_bridge.core.saferegex.compile_safe`): linear time on any ticket text; a pattern
RE2 refuses (backreferences, look-around, too big) is an error with its path and line. Bounds
that keep every later computation short (durations, percentages, dates, windows, holidays,
patterns) are checked here too and named in the error; docs/config.md lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from .core import saferegex
from .core.calendar import (
    DAY_MINUTES,
    MAX_CLOSED_DATES,
    MAX_HOLIDAY_SPECS,
    MAX_WINDOWS_PER_DAY,
    BusinessCalendar,
    CalendarError,
)
from .core.durations import (
    MAX_BUSINESS_DAY,
    Duration,
    DurationError,
    date_problem,
    format_duration,
    parse_duration,
    parse_fixed_duration,
    parse_percent,
)
from .core.policy import (
    CATEGORY_KINDS,
    CLASS_METRICS,
    RESPONSE_EVENTS,
    STATUS_GROUPS,
    Categories,
    Classify,
    Completeness,
    Condition,
    ConfirmedClosure,
    Contacts,
    Customer,
    Escalation,
    Level,
    Matrix,
    Override,
    PatientData,
    Plan,
    Policy,
    Release,
    Releases,
    Target,
    Tiers,
    Trigger,
    release_key,
)
from .errors import ConfigError
from .holidaycache import default_cache
from .inputfile import MAX_POLICY_BYTES, format_loc, parse_yaml, read_text

# --------------------------------------------------------------------------------------------
# YAML with line numbers

#: patterns in one policy: at most this many overrides and redaction patterns, and at most
#: this much RE2 program in all (the five example policies use 0-7,506), so that compiling and
#: running them stays small whatever the file holds
MAX_OVERRIDES = 500
MAX_REDACT = 200
MAX_PATTERN_PROGRAM = 200_000
#: classes, plans and calendars in one policy; tiers and escalation levels (a real policy has
#: a handful of each: the caps bound the load-time checks that pair them)
MAX_NAMED = 200
MAX_STEPS = 20


def read_yaml(text: str, source: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML text once; returns the data and a map from path to line number.

    See :func:`tracker_bridge.inputfile.parse_yaml`: YAML 1.2 booleans, string keys, no
    aliases, duplicate keys and deep nesting refused with their line and path.
    """
    return parse_yaml(text, source, limit=MAX_POLICY_BYTES)


def _line_for(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def problems_from_validation(
    exc: ValidationError,
    lines: Mapping[tuple[Any, ...], int],
    prefix: tuple[Any, ...] = (),
    data: Any = None,
) -> list[tuple[str, str]]:
    """Turn pydantic's errors into ``(path, message)`` pairs, the first error first.

    ``data`` is the parsed document: a shorthand the schema expanded (a bare duration for
    ``{target: ...}``) is reported at the path the user wrote.
    """
    out = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *(p for p in err["loc"] if not _is_union_tag(p)))
        if loc and loc[-1] in ("target", "created") and not isinstance(_at(data, loc[:-1]), dict):
            loc = loc[:-1]
        msg = err["msg"]
        for noise in ("Value error, ", "Assertion failed, "):
            if msg.startswith(noise):
                msg = msg[len(noise) :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/policy.md)"
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "too_long":
            ctx = err.get("ctx") or {}
            msg = f"too many entries (at most {ctx.get('max_length', '?')})"
        out.append((_with_line(loc, lines), msg))
    return out


def _at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or part in {"str", "dict"})


def _with_line(loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int]) -> str:
    line = _line_for(lines, loc)
    path = format_loc(loc) or "(top level)"
    return f"line {line}: {path}" if line is not None else path


# --------------------------------------------------------------------------------------------
# The schema


def _duration(v: Any) -> Duration | None:
    try:
        return parse_duration(v)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


def _target(v: Any) -> Any:
    if isinstance(v, dict):
        return v
    return {"target": v}


DurationOrNone = Annotated[Duration | None, BeforeValidator(_duration)]
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, coerce_numbers_to_str=True
    )


def parse_days(text: str) -> list[int]:
    """``mon-fri``, ``sat``, ``mon,wed,fri``, ``sat-sun``, ``fri-mon`` (wrapping) -> weekdays."""
    days: list[int] = []
    for part in str(text).lower().replace(" ", "").split(","):
        a, sep, b = part.partition("-")
        if a not in _WEEKDAYS or (sep and b not in _WEEKDAYS):
            raise ValueError(f'"{text}" is not a day or day range (e.g. mon-fri, sat, mon,wed)')
        if not sep:
            days.append(_WEEKDAYS[a])
            continue
        d = _WEEKDAYS[a]
        while True:
            days.append(d)
            if d == _WEEKDAYS[b]:
                break
            d = (d + 1) % 7
    return days


def _minutes(text: str, whole: str) -> int:
    m = _TIME.match(text)
    if (
        not m
        or int(m.group(2)) >= 60
        or int(m.group(1)) > 24
        or (int(m.group(1)) == 24 and int(m.group(2)) != 0)
    ):
        raise ValueError(f'"{whole}" is not a list of windows like "09:00-17:30,18:00-20:00"')
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_windows(text: str) -> list[tuple[int, int]]:
    """``"08:00-12:00,13:00-17:00"`` -> minute pairs; ``"22:00-06:00"`` wraps past midnight
    (returned as an end greater than 24:00, split onto the next day by the caller)."""
    out = []
    for part in str(text).replace(" ", "").split(","):
        a, sep, b = part.partition("-")
        if not sep:
            raise ValueError(f'"{text}" is not a list of windows like "09:00-17:30,18:00-20:00"')
        s, e = _minutes(a, text), _minutes(b, text)
        if s in (e, DAY_MINUTES):
            raise ValueError(f'"{part}" is an empty window')
        out.append((s, e if e > s else e + DAY_MINUTES))
    return out


def _closed_date(v: date) -> date:
    problem = date_problem(v)
    if problem is not None:
        raise ValueError(problem)
    return v


@lru_cache(maxsize=512)
def _holiday_spec_ok(spec: str) -> bool:
    """Whether the holidays package knows ``spec`` (cached: a check builds a year's table)."""
    try:
        default_cache()(spec, 2026)
    except CalendarError:
        return False
    return True


class CalendarModel(_Strict):
    #: the calendar in words, as notes name it ("Premium: 24x7")
    label: str | None = None
    timezone: str | None = None
    week: dict[str, str]
    holidays: list[str] = []
    closed: list[Annotated[date, AfterValidator(_closed_date)]] = Field(
        default=[], max_length=MAX_CLOSED_DATES
    )
    business_day: str | None = None

    @field_validator("label")
    @classmethod
    def _check_label(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip() or len(v) > 200 or any(ch in v for ch in "\r\n"):
            raise ValueError("a label is one line of at most 200 characters that notes name "
                             'the calendar by, e.g. "Premium: 24x7"')
        return v.strip()

    @field_validator("week")
    @classmethod
    def _check_week(cls, v: dict[str, str]) -> dict[str, str]:
        per_day = [0] * 7
        for days, windows in v.items():
            wd = parse_days(days)
            parsed = parse_windows(windows)
            for d in wd:
                for _s, e in parsed:
                    per_day[d] += 1
                    if e > DAY_MINUTES:  # wraps past midnight: one window on each day
                        per_day[(d + 1) % 7] += 1
        if max(per_day) > MAX_WINDOWS_PER_DAY:
            raise ValueError(
                f"{max(per_day)} opening windows on one day (at most {MAX_WINDOWS_PER_DAY})"
            )
        return v

    @field_validator("holidays")
    @classmethod
    def _check_holidays(cls, v: list[str]) -> list[str]:
        specs = list(dict.fromkeys(str(s) for s in v))
        if len(specs) > MAX_HOLIDAY_SPECS:
            raise ValueError(
                f"{len(specs)} holiday countries (at most {MAX_HOLIDAY_SPECS}: each one's "
                "holidays are computed for every year a deadline spans)"
            )
        for spec in specs:
            if not _holiday_spec_ok(spec):
                shown = spec if len(spec) <= 40 else spec[:37] + "..."
                raise ValueError(
                    f'"{shown}" is not a country or COUNTRY/SUBDIVISION of the holidays package '
                    "(e.g. GB/ENG, IE, US/CA)"
                )
        return specs

    @field_validator("business_day")
    @classmethod
    def _check_business_day(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                day = parse_fixed_duration(v)
            except DurationError as exc:
                raise ValueError(str(exc)) from None
            if day <= timedelta(0):
                raise ValueError(f'"{v}" must be longer than zero')
            if day > MAX_BUSINESS_DAY:
                raise ValueError(f'"{v}" is longer than a day (at most 24h)')
        return v


class OutsideHoursModel(_Strict):
    target: DurationOrNone
    calendar: str | None = None


class TargetModel(_Strict):
    target: DurationOrNone
    calendar: str | None = None
    outside_hours: Annotated[OutsideHoursModel, BeforeValidator(_target)] | None = None


TargetField = Annotated[TargetModel, BeforeValidator(_target)]


class ClassModel(_Strict):
    response: TargetField | None = None
    resolution: TargetField | None = None
    update: TargetField | None = None


class PlanModel(_Strict):
    calendar: str
    by_class: dict[str, str] = {}


class WhenModel(_Strict):
    text_matches: str | None = None
    field: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    matches: str | None = None
    labels_any: list[str] | None = None

    @field_validator("text_matches", "matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            _check_pattern(v)
        return v

    @field_validator("in_", "labels_any", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [str(x) if not isinstance(x, str) else x for x in v]
        return v


class OverrideModel(_Strict):
    class_: str | None = Field(default=None, alias="class")
    at_least: str | None = None
    when: WhenModel


class MatrixModel(_Strict):
    impact: str
    urgency: str
    table: dict[str, dict[str, str]]


class ClassifyModel(_Strict):
    field: str = "priority"
    map: dict[str, str] = {}
    matrix: MatrixModel | None = None
    overrides: list[OverrideModel] = Field(default=[], max_length=MAX_OVERRIDES)


class TiersModel(_Strict):
    field: str = "tier"
    ladder: dict[str, dict[str, DurationOrNone]] = Field(max_length=MAX_STEPS)
    response: dict[str, DurationOrNone] = Field(default={}, max_length=MAX_STEPS)


class AfterModel(_Strict):
    response: str | float | None = None
    resolution: str | float | None = None
    created: DurationOrNone = None
    calendar: str | None = None

    @field_validator("response", "resolution")
    @classmethod
    def _pct(cls, v: Any) -> Any:
        if v is not None:
            try:
                if parse_percent(v) <= 0:
                    raise ValueError(f'"{v}" must be more than 0%')
            except DurationError as exc:
                raise ValueError(str(exc)) from None
        return v


def _after(v: Any) -> Any:
    if isinstance(v, str):  # `after: 15m` is short for `after: {created: 15m}`
        return {"created": v}
    return v


class LevelModel(_Strict):
    name: str
    after: Annotated[AfterModel, BeforeValidator(_after)] | None = None
    classes: list[str] | None = None
    on_request: bool = False


class EscalationModel(_Strict):
    levels: list[LevelModel] = Field(max_length=MAX_STEPS)
    requested_label: str | None = None
    request_response: DurationOrNone = None


class LabelsModel(_Strict):
    prefix: str = "sla-"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.:-]*", v):
            raise ValueError(
                f'"{v}" is not a usable label prefix (lower-case letters, digits, "-", "_", '
                '".", ":"; no spaces)'
            )
        return v


def _pattern(v: str) -> str:
    _check_pattern(v)
    return v


def _check_pattern(v: str) -> None:
    try:
        saferegex.compile_safe(v)
    except saferegex.RegexError as exc:
        raise ValueError(f"not a pattern RE2 can run: {exc}") from None


class KbModel(_Strict):
    redact: list[Annotated[str, AfterValidator(_pattern)]] = Field(
        default=[], max_length=MAX_REDACT
    )


def _switch(v: Any) -> Any:
    """``key: true`` is short for ``key: {}`` (every default), ``key: false`` for no key."""
    if v is True:
        return {}
    if v is False:
        return None
    if not isinstance(v, dict):
        raise ValueError(f"{v!r} is not true, false or a mapping of this rule's keys")
    return v


class PatientDataModel(_Strict):
    subject: bool = True
    description: bool = True
    comments: bool = True


_NORMALIZED = re.compile(r"[a-z_][a-z0-9_]*")


def _field_names(v: list[str]) -> list[str]:
    for name in v:
        if not _NORMALIZED.fullmatch(name):
            raise ValueError(f'"{name}" is not a normalized field name (lower_case, as in '
                             "the tracker config's fields: map)")
    if len(set(v)) != len(v):
        raise ValueError("names a field twice")
    return v


FieldNames = Annotated[list[str], AfterValidator(_field_names)]


class CompletenessModel(_Strict):
    field: str = "category"
    required: FieldNames = []
    by_category: dict[str, FieldNames] = Field(default={}, max_length=MAX_NAMED)
    hold_response: bool = False

    @field_validator("by_category")
    @classmethod
    def _categories(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: set[str] = set()
        for k in v:
            if k.strip().casefold() in seen:
                raise ValueError(f'category "{k}" is given twice (categories are compared '
                                 "without case)")
            seen.add(k.strip().casefold())
        return v


class ConfirmedClosureModel(_Strict):
    remind_after: DurationOrNone = None


class CategoriesModel(_Strict):
    field: str = "category"
    question: list[str] = []
    incident: list[str] = []
    enhancement: list[str] = []
    question_class: str | None = None

    @field_validator("question", "incident", "enhancement", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [str(x) if not isinstance(x, str) else x for x in v]
        return v


class ReleaseModel(_Strict):
    version: str
    day: Annotated[date, AfterValidator(_closed_date)] = Field(alias="date")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        v = str(v) if isinstance(v, int | float) else v
        if isinstance(v, str) and release_key(v) is None:
            raise ValueError(f'"{v}" is not a version starting major.minor (e.g. 5.3 or 5.3.1)')
        return v


#: releases in one list (a quarterly cadence for a century is 400)
MAX_RELEASES = 1000


class ReleasesModel(_Strict):
    field: str = "version"
    list_: list[ReleaseModel] | None = Field(default=None, alias="list",
                                             max_length=MAX_RELEASES)
    file: str | None = None
    sustaining: int = Field(default=3, ge=0, le=100)
    extended_days: int = Field(default=365, ge=0, le=36_500)
    upgrade: str = Field(default="", max_length=2000)


#: contacts of one customer, and customers in one policy
MAX_CONTACTS = 1000
MAX_CUSTOMERS = 100_000


class CustomerModel(_Strict):
    plan: str | None = None
    instances: int = Field(default=1, ge=1, le=1000)
    contacts: list[str] = Field(max_length=MAX_CONTACTS)

    @field_validator("contacts", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [str(x) if not isinstance(x, str) else x for x in v]
        return v


class ContactsModel(_Strict):
    field: str = "customer"
    limits: dict[str, int] = {}
    customers: dict[str, CustomerModel] | None = Field(default=None, max_length=MAX_CUSTOMERS)
    file: str | None = None


class PolicyModel(_Strict):
    name: str
    description: str = ""
    timezone: str = "UTC"
    calendars: dict[str, CalendarModel] = Field(default={}, max_length=MAX_NAMED)
    statuses: dict[str, list[str]] = {}
    classes: dict[str, ClassModel] = Field(max_length=MAX_NAMED)
    default_class: str | None = None
    warn_at: float = 0.75
    plans: dict[str, PlanModel] = Field(default={}, max_length=MAX_NAMED)
    default_plan: str | None = None
    plan_field: str = "plan"
    classify: ClassifyModel = ClassifyModel()
    response_events: list[str] = list(RESPONSE_EVENTS)
    tiers: TiersModel | None = None
    escalation: EscalationModel | None = None
    labels: LabelsModel = LabelsModel()
    goal: str | float = "90%"
    kb: KbModel = KbModel()
    patient_data: Annotated[PatientDataModel | None, BeforeValidator(_switch)] = None
    completeness: CompletenessModel | None = None
    confirmed_closure: Annotated[ConfirmedClosureModel | None, BeforeValidator(_switch)] = None
    categories: CategoriesModel | None = None
    releases: ReleasesModel | None = None
    contacts: ContactsModel | None = None

    @field_validator("warn_at")
    @classmethod
    def _warn(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"{v} must be a fraction above 0 and at most 1 (e.g. 0.75)")
        return v

    @field_validator("goal")
    @classmethod
    def _goal(cls, v: Any) -> Any:
        try:
            f = parse_percent(v)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if not 0 < f <= 1:
            raise ValueError(f'"{v}" must be between 0% and 100%')
        return v

    @field_validator("statuses")
    @classmethod
    def _groups(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for g in v:
            if g not in STATUS_GROUPS:
                raise ValueError(f'"{g}" is not a status group ({", ".join(STATUS_GROUPS)})')
        return v

    @field_validator("response_events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        for e in v:
            if e not in RESPONSE_EVENTS:
                raise ValueError(f'"{e}" is not a response event ({", ".join(RESPONSE_EVENTS)})')
        return v

    @field_validator("classes")
    @classmethod
    def _some_class(cls, v: dict[str, ClassModel]) -> dict[str, ClassModel]:
        if not v:
            raise ValueError("at least one class is needed")
        return v


# --------------------------------------------------------------------------------------------
# Cross-references and compilation


class _Problems:
    def __init__(self, lines: Mapping[tuple[Any, ...], int]) -> None:
        self.lines = lines
        self.items: list[tuple[str, str]] = []

    def add(self, loc: tuple[Any, ...], message: str) -> None:
        self.items.append((_with_line(loc, self.lines), message))


def _check_refs(m: PolicyModel, p: _Problems) -> None:
    classes = set(m.classes)
    calendars = {"always", *m.calendars}
    plans = set(m.plans)
    if "always" in m.calendars:
        p.add(("calendars", "always"), "`always` is built in (24x7x365) and cannot be redefined")

    def need(kind: str, names: set[str], value: str | None, loc: tuple[Any, ...]) -> None:
        if value is not None and value not in names:
            known = ", ".join(sorted(names)) or "none defined"
            p.add(loc, f'{kind} "{value}" does not exist (known: {known})')

    for cname, cm in m.classes.items():
        for metric in CLASS_METRICS:
            t = getattr(cm, metric)
            if t is not None:
                need("calendar", calendars, t.calendar, ("classes", cname, metric, "calendar"))
                if t.outside_hours is not None:
                    loc = ("classes", cname, metric, "outside_hours")
                    need("calendar", calendars, t.outside_hours.calendar, (*loc, "calendar"))
                    if t.calendar == "always":
                        p.add(loc, "the target's calendar is `always`, which is never closed: "
                              "outside_hours would never apply")
    need("class", classes, m.default_class, ("default_class",))
    for pname, pm in m.plans.items():
        need("calendar", calendars, pm.calendar, ("plans", pname, "calendar"))
        for c, cal in pm.by_class.items():
            need("class", classes, c, ("plans", pname, "by_class", c))
            need("calendar", calendars, cal, ("plans", pname, "by_class", c))
    if m.plans:
        need("plan", plans, m.default_plan, ("default_plan",))
    elif m.default_plan is not None:
        p.add(("default_plan",), "names a plan, but the policy defines no plans")
    for v, c in m.classify.map.items():
        need("class", classes, c, ("classify", "map", v))
    if m.classify.matrix is not None:
        for u, row in m.classify.matrix.table.items():
            for i, c in row.items():
                need("class", classes, c, ("classify", "matrix", "table", u, i))
    for n, o in enumerate(m.classify.overrides):
        need("class", classes, o.class_, ("classify", "overrides", n, "class"))
        need("class", classes, o.at_least, ("classify", "overrides", n, "at_least"))
        if (o.class_ is None) == (o.at_least is None):
            p.add(("classify", "overrides", n),
                  "give exactly one of `class: C` (forces the class) or `at_least: C` (raises "
                  "it to at least C)")
        w = o.when
        loc = ("classify", "overrides", n, "when")
        if not (w.text_matches or w.field or w.labels_any):
            p.add(loc, "says nothing: give text_matches, field (with in or matches) or labels_any")
        if w.field is not None and w.in_ is None and w.matches is None:
            p.add(loc, f'field "{w.field}" needs `in: [values]` or `matches: REGEX`')
        if w.field is None and (w.in_ is not None or w.matches is not None):
            p.add(loc, "`in` and `matches` need a `field`")
    if m.tiers is not None:
        if not m.tiers.ladder:
            p.add(("tiers", "ladder"), "needs at least one tier")
        for tier, row in m.tiers.ladder.items():
            for c in row:
                need("class", classes, c, ("tiers", "ladder", tier, c))
        for tier in m.tiers.response:
            need("tier", set(m.tiers.ladder), tier, ("tiers", "response", tier))
    if m.escalation is not None:
        names: set[str] = set()
        for n, lv in enumerate(m.escalation.levels):
            loc = ("escalation", "levels", n)
            if lv.name in names:
                p.add((*loc, "name"), f'level "{lv.name}" is defined twice')
            names.add(lv.name)
            a = lv.after
            if lv.on_request:
                if a is not None:
                    p.add((*loc, "after"), "an on_request level is reached only through a "
                          "customer's request: it takes no `after`")
                if m.escalation.requested_label is None:
                    p.add((*loc, "on_request"), "needs `escalation.requested_label`: only a "
                          "request reaches this level")
                for i, c in enumerate(lv.classes or []):
                    need("class", classes, c, (*loc, "classes", i))
                continue
            if a is None:
                p.add(loc, "needs `after` (a trigger), or `on_request: true`")
                continue
            given = [k for k in ("response", "resolution", "created") if getattr(a, k) is not None]
            if len(given) != 1:
                p.add(
                    (*loc, "after"),
                    "give exactly one of response: N%, resolution: N% or created: DURATION",
                )
            if a.calendar is not None and a.created is None:
                p.add((*loc, "after", "calendar"), "only a `created` trigger takes a calendar")
            need("calendar", calendars, a.calendar, (*loc, "after", "calendar"))
            for i, c in enumerate(lv.classes or []):
                need("class", classes, c, (*loc, "classes", i))
        if m.escalation.request_response is not None and m.escalation.requested_label is None:
            p.add(("escalation", "request_response"),
                  "needs `requested_label`: the clock starts when that label is added")
    if m.categories is not None:
        cg = m.categories
        need("class", classes, cg.question_class, ("categories", "question_class"))
        owner: dict[str, str] = {}
        for kind in CATEGORY_KINDS:
            for i, value in enumerate(getattr(cg, kind)):
                folded = value.strip().casefold()
                if folded in owner:
                    p.add(("categories", kind, i),
                          f'"{value}" is already a category of kind {owner[folded]}')
                owner.setdefault(folded, kind)
        if not owner:
            p.add(("categories",), "maps nothing: list values under question, incident or "
                  "enhancement")
    if m.completeness is not None and not (m.completeness.required
                                           or m.completeness.by_category):
        p.add(("completeness",), "requires nothing: give `required` (the default set) or "
              "`by_category`")
    seen: dict[str, str] = {}
    for g, names_ in m.statuses.items():
        for i, s in enumerate(names_):
            if s.casefold() in seen:
                p.add(
                    ("statuses", g, i), f'status "{s}" is already in group "{seen[s.casefold()]}"'
                )
            seen[s.casefold()] = g


def _build_calendar(
    name: str, cm: CalendarModel, default_zone: str, p: _Problems
) -> BusinessCalendar | None:
    week: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
    for days, windows in cm.week.items():
        for d in parse_days(days):
            for s, e in parse_windows(windows):
                if e <= DAY_MINUTES:
                    week[d].append((s, e))
                else:  # wraps past midnight onto the next day
                    week[d].append((s, DAY_MINUTES))
                    week[(d + 1) % 7].append((0, e - DAY_MINUTES))
    try:
        return BusinessCalendar(
            name,
            cm.timezone or default_zone,
            week,
            holidays=cm.holidays,
            closed=cm.closed,
            business_day=None if cm.business_day is None else parse_fixed_duration(cm.business_day),
            holiday_source=default_cache(),
            label=cm.label,
        )
    except CalendarError as exc:
        loc: tuple[Any, ...] = ("calendars", name)
        msg = str(exc)
        if "time zone" in msg:
            loc = (*loc, "timezone")
        elif "overlap" in msg:
            loc = (*loc, "week")
            msg = "opening windows overlap on some day"
        p.add(loc, msg)
        return None


class _Patterns:
    """Compiles the policy's patterns with RE2 within one program-size budget."""

    def __init__(self, p: _Problems) -> None:
        self.p = p
        self.total = 0

    def compile(self, text: str | None, loc: tuple[Any, ...]) -> saferegex.Pattern | None:
        if text is None:
            return None
        try:
            rx = saferegex.compile_safe(text)
        except saferegex.RegexError as exc:  # validated already; kept for callers of compile_policy
            self.p.add(loc, f"not a pattern RE2 can run: {exc}")
            return None
        self.total += int(getattr(rx, "programsize", 0))
        if self.total > MAX_PATTERN_PROGRAM:
            self.p.add(
                loc,
                f"the policy's patterns together compile to more than {MAX_PATTERN_PROGRAM} "
                "RE2 instructions (simplify or merge them)",
            )
            return None
        return rx


def _side_file(
    p: _Problems, loc: tuple[Any, ...], source: str, file: str, what: str, shape: type,
    shape_text: str,
) -> tuple[Path, Any, dict[tuple[Any, ...], int]] | None:
    """``(path, data, its lines)`` of a YAML file a policy key names (relative to the policy's
    directory); None, the problem added at ``loc``'s ``file``, when it cannot be read; a
    ConfigError of that file when its top level is not a ``shape``."""
    base = Path(source)
    path = (base.parent if base.is_file() else Path.cwd()) / file
    try:
        text = read_text(path, what=what, limit=MAX_POLICY_BYTES)
        data, flines = read_yaml(text, str(path))
    except ConfigError as exc:
        p.add((*loc, "file"), "; ".join(msg for _, msg in exc.problems) or str(exc))
        return None
    if not isinstance(data, shape):
        raise ConfigError(str(path), [("(top level)", shape_text)])
    return path, data, flines


def _releases(m: ReleasesModel, p: _Problems, source: str) -> Releases | None:
    """The release list, inline or from ``file`` (relative to the policy's directory): each
    quarterly release once, dates rising with versions."""
    loc: tuple[Any, ...] = ("releases",)
    if (m.list_ is None) == (m.file is None):
        p.add(loc, "give exactly one of `list` (the releases) or `file` (a YAML file of them)")
        return None
    entries: list[ReleaseModel] = list(m.list_ or ())
    where, path = p, Path(source)
    prefix: tuple[Any, ...] = ("releases", "list")
    if m.file is not None:
        got = _side_file(p, loc, source, m.file, "release list", list,
                         "a release list is a YAML list of {version, date}")
        if got is None:
            return None
        path, data, flines = got
        try:
            entries = [ReleaseModel.model_validate(e) for e in data]
        except ValidationError:
            problems: list[tuple[str, str]] = []
            for i, e in enumerate(data):
                try:
                    ReleaseModel.model_validate(e)
                except ValidationError as exc:
                    problems += problems_from_validation(exc, flines, (i,), data)
            raise ConfigError(str(path), problems) from None
        where, prefix = _Problems(flines), ()
    ordered: list[tuple[Release, int]] = []
    seen: dict[tuple[int, int], int] = {}
    for i, e in enumerate(entries):
        key = release_key(e.version)
        assert key is not None  # validated
        if key in seen:
            where.add((*prefix, i, "version"), f"release {key[0]}.{key[1]} is listed twice "
                      f"(entry {seen[key]} too)")
        seen[key] = i
        ordered.append((Release(e.version, key, e.day), i))
    ordered.sort(key=lambda ri: ri[0].key)
    for (a, _), (b, i) in pairwise(ordered):
        if b.date <= a.date:
            where.add((*prefix, i, "date"), f"release {b.version} ({b.date}) is not after "
                      f"{a.version} ({a.date}): dates must rise with versions")
    if where is not p and where.items:
        raise ConfigError(str(path), where.items)
    out = [r for r, _ in ordered]
    if not out:
        p.add(loc, "lists no release")
        return None
    return Releases(tuple(out), m.field, m.sustaining, m.extended_days, m.upgrade)


def _contacts(m: PolicyModel, p: _Problems, source: str) -> Contacts | None:
    """Each customer's registered contacts, inline or from ``file``; a list longer than the
    customer's plan allows (``limits`` per live instance, times ``instances``) is an error."""
    cm = m.contacts
    assert cm is not None
    loc: tuple[Any, ...] = ("contacts",)
    plans = set(m.plans) or {"default"}
    default_plan = m.default_plan or (next(iter(m.plans)) if m.plans else "default")
    for plan, n in cm.limits.items():
        if plan not in plans:
            p.add((*loc, "limits", plan), f'plan "{plan}" does not exist (known: '
                  f'{", ".join(sorted(plans))})')
        if n < 0:
            p.add((*loc, "limits", plan), f"{n} is not a number of contacts (0 or more)")
    if (cm.customers is None) == (cm.file is None):
        p.add(loc, "give exactly one of `customers` or `file` (a YAML file of them)")
        return None
    customers = cm.customers
    where, prefix, path = p, (*loc, "customers"), Path(source)
    if cm.file is not None:
        got = _side_file(p, loc, source, cm.file, "contact list", dict,
                         "a contact list is a YAML mapping of customer -> {plan, contacts}")
        if got is None:
            return None
        path, data, flines = got
        problems: list[tuple[str, str]] = []
        customers = {}
        for name, raw in data.items():
            try:
                customers[name] = CustomerModel.model_validate(raw)
            except ValidationError as exc:
                problems += problems_from_validation(exc, flines, (name,), data)
        if problems:
            raise ConfigError(str(path), problems)
        where, prefix = _Problems(flines), ()
    assert customers is not None
    out: dict[str, Customer] = {}
    for name, c in customers.items():
        plan = c.plan or default_plan
        if plan not in plans:
            where.add((*prefix, name, "plan"), f'plan "{plan}" does not exist (known: '
                      f'{", ".join(sorted(plans))})')
            continue
        folded = frozenset(x.strip().casefold() for x in c.contacts)
        if len(folded) != len(c.contacts):
            where.add((*prefix, name, "contacts"), "names a contact twice")
        per = cm.limits.get(plan)
        limit = 10**9 if per is None else per * c.instances
        if per is not None and len(folded) > limit:
            where.add((*prefix, name, "contacts"),
                      f"{len(folded)} contacts, more than the {limit} the {plan} plan allows "
                      f"({per} per live instance, {c.instances} instance"
                      f"{'s' if c.instances != 1 else ''})")
        key = name.strip().casefold()
        if key in out:
            where.add((*prefix, name), f'customer "{name}" is listed twice (compared without '
                      "case)")
        out[key] = Customer(name, plan, folded, limit)
    if where is not p and where.items:
        raise ConfigError(str(path), where.items)
    return Contacts(out, cm.field)


def compile_policy(m: PolicyModel, lines: Mapping[tuple[Any, ...], int], source: str) -> Policy:
    """Check cross-references and build the :class:`Policy`; raises ConfigError."""
    p = _Problems(lines)
    _check_refs(m, p)
    contacts = None if m.contacts is None else _contacts(m, p, source)
    releases = None if m.releases is None else _releases(m.releases, p, source)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(m.timezone)
    except Exception:
        p.add(("timezone",), f'"{m.timezone}" is not an IANA time zone (e.g. Europe/London)')
    if p.items:
        raise ConfigError(source, p.items)
    calendars: dict[str, BusinessCalendar] = {"always": BusinessCalendar.always_open()}
    for name, cm in m.calendars.items():
        cal = _build_calendar(name, cm, m.timezone, p)
        if cal is not None:
            calendars[name] = cal
    if p.items:
        raise ConfigError(source, p.items)
    patterns = _Patterns(p)
    overrides = tuple(
        Override(
            o.class_ or o.at_least or "",
            Condition(
                text_matches=patterns.compile(
                    o.when.text_matches, ("classify", "overrides", n, "when", "text_matches")
                ),
                field=o.when.field,
                in_=None if o.when.in_ is None else frozenset(o.when.in_),
                matches=patterns.compile(
                    o.when.matches, ("classify", "overrides", n, "when", "matches")
                ),
                labels_any=None if o.when.labels_any is None else frozenset(o.when.labels_any),
            ),
            at_least=o.at_least is not None,
        )
        for n, o in enumerate(m.classify.overrides)
    )
    kb_redact: list[saferegex.Pattern] = []
    for i, v in enumerate(m.kb.redact):
        rx = patterns.compile(v, ("kb", "redact", i))
        if rx is not None:
            kb_redact.append(rx)
    if p.items:
        raise ConfigError(source, p.items)

    classes = {
        c: {
            metric: Target(
                t.target, t.calendar,
                None if (o := t.outside_hours) is None else Target(o.target, o.calendar),
            )
            for metric in CLASS_METRICS
            if (t := getattr(cm, metric)) is not None
        }
        for c, cm in m.classes.items()
    }
    if m.plans:
        plans = {n: Plan(n, pm.calendar, dict(pm.by_class)) for n, pm in m.plans.items()}
        default_plan = m.default_plan or next(iter(plans))
    else:  # no plans: one implicit plan on the first calendar defined (or always)
        first = next(iter(m.calendars), "always")
        plans = {"default": Plan("default", first)}
        default_plan = "default"
    cl = m.classify
    classify = Classify(
        field=cl.field,
        map=dict(cl.map),
        matrix=None
        if cl.matrix is None
        else Matrix(
            cl.matrix.impact, cl.matrix.urgency, {u: dict(r) for u, r in cl.matrix.table.items()}
        ),
        overrides=overrides,
    )
    tiers = None
    if m.tiers is not None:
        tiers = Tiers(
            m.tiers.field, tuple(m.tiers.ladder), {t: dict(r) for t, r in m.tiers.ladder.items()},
            dict(m.tiers.response),
        )
    escalation = None
    if m.escalation is not None:
        levels = []
        for lv in m.escalation.levels:
            a = lv.after
            if a is None:  # on_request
                levels.append(Level(lv.name, None,
                                    None if lv.classes is None else frozenset(lv.classes), True))
                continue
            metric = (
                "response"
                if a.response is not None
                else "resolution"
                if a.resolution is not None
                else None
            )
            levels.append(
                Level(
                    lv.name,
                    Trigger(
                        metric=metric,
                        fraction=None if metric is None else parse_percent(getattr(a, metric)),
                        created=a.created,
                        calendar=a.calendar,
                    ),
                    None if lv.classes is None else frozenset(lv.classes),
                )
            )
        escalation = Escalation(tuple(levels), m.escalation.requested_label,
                                m.escalation.request_response)
    statuses = {g: tuple(m.statuses.get(g, ())) for g in STATUS_GROUPS}
    policy = Policy(
        name=m.name,
        timezone=m.timezone,
        calendars=calendars,
        statuses=statuses,
        classes=classes,
        default_class=m.default_class or list(m.classes)[-1],
        warn_at=Fraction(str(m.warn_at)),
        plans=plans,
        default_plan=default_plan,
        plan_field=m.plan_field,
        classify=classify,
        response_events=frozenset(m.response_events),
        tiers=tiers,
        escalation=escalation,
        label_prefix=m.labels.prefix,
        goal=parse_percent(m.goal),
        description=m.description,
        kb_redact=tuple(kb_redact),
        patient_data=None if (pd := m.patient_data) is None else PatientData(
            pd.subject, pd.description, pd.comments),
        completeness=None if (cm := m.completeness) is None else Completeness(
            tuple(cm.required),
            {k.strip().casefold(): tuple(v) for k, v in cm.by_category.items()},
            cm.field, cm.hold_response),
        categories=None if (cg := m.categories) is None else Categories(
            {v.strip().casefold(): kind for kind in CATEGORY_KINDS for v in getattr(cg, kind)},
            cg.field, cg.question_class),
        releases=releases,
        contacts=contacts,
        confirmed_closure=None if m.confirmed_closure is None else ConfirmedClosure(
            m.confirmed_closure.remind_after),
        source=source,
    )
    _check_reach(policy, p)
    if p.items:
        raise ConfigError(source, p.items)
    return policy


#: a target must be reachable within this many years on its calendar's weekly hours: the
#: calendars compute up to 2300 (calendar.HORIZON) from instants up to 2200
MAX_REACH_YEARS = 90


def _check_reach(policy: Policy, p: _Problems) -> None:
    """Refuse a duration its calendar's weekly hours take more than 90 years to use up.

    (``99999999bd`` is refused as a duration already; this is a long target on a calendar
    open a few minutes a week.) Holidays and closed dates are ignored here: a calendar they
    close for a century is reported when a deadline is computed. The work is bounded by the
    caps on classes, plans, tiers and levels.
    """
    seen: set[tuple[Any, ...]] = set()
    plans = list(policy.plans.values())

    def cals(c: str, metric: str) -> set[str]:
        t = policy.classes[c].get(metric)
        if t is not None and t.calendar is not None:
            return {t.calendar}
        return {pl.by_class.get(c, pl.calendar) for pl in plans}

    def reach(d: Duration | None, cal_name: str, loc: tuple[Any, ...], times: float = 1) -> None:
        cal = policy.calendars[cal_name]
        if d is None or cal.always or loc in seen:
            return
        need = d.resolve(cal.business_day) * times
        weekly = sum(e - s for day in cal.week for s, e in day)  # minutes
        years = (need / timedelta(minutes=1)) / (weekly * 365.25 / 7)
        if years > MAX_REACH_YEARS:
            seen.add(loc)
            open_ = format_duration(timedelta(minutes=weekly))
            p.add(
                loc,
                f"{format_duration(need)} on calendar {cal_name!r} (open {open_} a week) takes "
                f"about {years:.0f} years to use up, more than the {MAX_REACH_YEARS} the bridge "
                "computes ahead",
            )

    levels = policy.escalation.levels if policy.escalation is not None else ()
    for c, targets in policy.classes.items():
        by_metric = {metric: cals(c, metric) for metric in CLASS_METRICS}
        for metric, t in targets.items():
            for cal_name in by_metric.get(metric, ()):
                reach(t.duration, cal_name, ("classes", c, metric))
            if (o := t.outside_hours) is not None:
                for cal_name in {o.calendar} if o.calendar else by_metric.get(metric, ()):
                    reach(o.duration, cal_name, ("classes", c, metric, "outside_hours"))
        if policy.tiers is not None:
            for tier, row in policy.tiers.ladder.items():
                for cal_name in by_metric["resolution"]:
                    reach(row.get(c), cal_name, ("tiers", "ladder", tier, c))
            for tier, d in policy.tiers.response.items():
                for cal_name in by_metric["response"]:
                    reach(d, cal_name, ("tiers", "response", tier))
        cc = policy.confirmed_closure
        if cc is not None and cc.remind_after is not None:
            for cal_name in by_metric["resolution"]:
                reach(cc.remind_after, cal_name, ("confirmed_closure", "remind_after"))
        esc = policy.escalation
        if esc is not None and esc.request_response is not None:
            for cal_name in by_metric["resolution"]:
                reach(esc.request_response, cal_name, ("escalation", "request_response"))
        for i, lv in enumerate(levels):
            if lv.classes is not None and c not in lv.classes:
                continue
            trig, loc = lv.after, ("escalation", "levels", i, "after")
            if trig is None:  # on_request: no time trigger
                continue
            if trig.metric is not None and trig.fraction is not None:
                t = targets.get(trig.metric)
                for cal_name in by_metric.get(trig.metric, ()):
                    reach(None if t is None else t.duration, cal_name, loc, float(trig.fraction))
            elif trig.created is not None:
                for cal_name in {trig.calendar} if trig.calendar else by_metric["resolution"]:
                    reach(trig.created, cal_name, loc)


def load_policy_text(text: str, source: str = "<string>") -> Policy:
    """Validate and compile a policy from YAML text; errors name ``source``."""
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(
            source, [("(top level)", "a policy is a mapping of keys (see docs/policy.md)")]
        )
    try:
        model = PolicyModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from_validation(exc, lines, data=data)) from None
    return compile_policy(model, lines, source)


def load_policy(path: str | Path) -> Policy:
    """Load a policy file; raises :class:`ConfigError` naming the file and the path in it.

    The file is at most :data:`~tracker_bridge.inputfile.MAX_POLICY_BYTES` (4 MiB) of UTF-8
    (or UTF-16/32 with a byte-order mark); see :mod:`tracker_bridge.inputfile`.
    """
    path = Path(path)
    text = read_text(path, what="policy", limit=MAX_POLICY_BYTES)
    return load_policy_text(text, str(path))


def iter_problems(exc: ConfigError) -> Iterator[str]:
    for path, msg in exc.problems:
        yield f"{exc.source}: {path}: {msg}" if path else f"{exc.source}: {msg}"
