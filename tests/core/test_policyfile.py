"""The policy file: the spec's example loads; every invalid policy names its first error's path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tracker_bridge.core.durations import DurationError, parse_duration
from tracker_bridge.errors import ConfigError
from tracker_bridge.policyfile import load_policy, load_policy_text

SPEC_EXAMPLE = Path(__file__).parent / "data" / "spec-example.yaml"
BASE = """
name: p
calendars:
  office: {week: {mon-fri: "09:00-17:30"}, holidays: [GB/ENG]}
classes:
  high: {response: 1h, resolution: 8h}
plans:
  basic: {calendar: office}
"""


def test_spec_example_loads() -> None:
    p = load_policy(SPEC_EXAMPLE)
    assert list(p.classes) == ["critical", "high", "medium", "low"]
    assert p.calendars["saturday-mornings"].zone.key == "Europe/Dublin"
    assert p.calendars["office"].business_day == timedelta(hours=8, minutes=30)
    assert p.plans["premium"].by_class == {"critical": "always"}
    assert p.tiers is not None and p.tiers.order == ("L1", "L2", "L3", "L4")
    assert p.status_group("waiting for customer") == "waiting"
    assert p.status_group("In Progress") == "open"


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("30m", timedelta(minutes=30)),
        ("0.5h", timedelta(minutes=30)),
        ("8h30m", timedelta(hours=8.5)),
        ("2d", timedelta(days=2)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_durations(text: str, duration: timedelta) -> None:
    d = parse_duration(text)
    assert d is not None and d.resolve(timedelta(hours=8)) == duration


def test_business_days_resolve_against_the_calendar() -> None:
    d = parse_duration("5bd")
    assert d is not None and d.resolve(timedelta(hours=8, minutes=30)) == timedelta(
        hours=42, minutes=30
    )
    assert parse_duration("none") is None
    with pytest.raises(DurationError, match='"1x" is not a duration'):
        parse_duration("1x")


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_policy_text(text, "p.yaml")
    assert info.value.exit_code == 2
    return info.value.problems


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (("resolution: 8h", "resolution: 1x"), "classes.high.resolution", '"1x" is not a duration'),
        (("resolution: 8h", "resolution: 8"), "classes.high.resolution", "give a unit"),
        (
            ("{calendar: office}", "{calendar: ofice}"),
            "plans.basic.calendar",
            'calendar "ofice" does not exist',
        ),
        (("mon-fri", "mon-fry"), "calendars.office.week", '"mon-fry" is not a day'),
        (('"09:00-17:30"', '"09:00-25:30"'), "calendars.office.week", "is not a list of windows"),
        (("[GB/ENG]", "[XX]"), "calendars.office.holidays", '"XX" is not a country'),
        (("response: 1h", "respons: 1h"), "classes.high.respons", "unknown key"),
        (("name: p", "name: p\nwarn_at: 1.5"), "warn_at", "must be a fraction"),
        (
            ("name: p", "name: p\ndefault_class: urgent"),
            "default_class",
            'class "urgent" does not exist',
        ),
        (("name: p", "name: p\ntimezone: Mars/Base"), "timezone", "not an IANA time zone"),
        (
            ("name: p", "name: p\nstatuses: {pending: [Feedback]}"),
            "statuses",
            '"pending" is not a status group',
        ),
        (
            ("name: p", "name: p\nlabels: {prefix: 'SLA '}"),
            "labels.prefix",
            "not a usable label prefix",
        ),
    ],
)
def test_each_error_names_its_path(change: tuple[str, str], path: str, message: str) -> None:
    problems = errors_of(BASE.replace(*change, 1))
    first_path, first_message = problems[0]
    assert first_path.endswith(path), problems
    assert message in first_message


def test_errors_carry_line_numbers() -> None:
    problems = errors_of(BASE.replace("resolution: 8h", "resolution: 1x"))
    assert problems[0][0] == "line 6: classes.high.resolution"


def test_references_everywhere_are_checked() -> None:
    text = (
        BASE
        + """
classify:
  map: {Urgent: critical}
tiers:
  ladder: {L1: {medium: 4h}}
escalation:
  levels:
    - {name: boss, after: {created: 15m, calendar: nights}}
"""
    )
    paths = [p for p, _ in errors_of(text)]
    assert any(p.endswith("classify.map.Urgent") for p in paths)
    assert any(p.endswith("tiers.ladder.L1.medium") for p in paths)
    assert any(p.endswith("escalation.levels[0].after.calendar") for p in paths)


def test_level_needs_exactly_one_trigger() -> None:
    text = (
        BASE + "escalation:\n  levels:\n    - {name: boss, after: {response: 100%, created: 1h}}\n"
    )
    assert errors_of(text)[0][0].endswith("escalation.levels[0].after")


def test_yaml_12_booleans_keep_norway_a_country() -> None:
    p = load_policy_text(BASE.replace("[GB/ENG]", "[NO]"))
    assert p.calendars["office"].holiday_specs == ("NO",)


def test_numeric_class_names() -> None:
    p = load_policy_text(
        BASE.replace("  high:", "  1:").replace("plans:", "default_class: 1\nplans:")
    )
    assert list(p.classes) == ["1"]


def test_window_wrapping_midnight_is_split_onto_the_next_day() -> None:
    p = load_policy_text(
        BASE.replace('{mon-fri: "09:00-17:30"}', '{mon-fri: "22:00-06:00"}').replace(
            "holidays: [GB/ENG]", "business_day: 8h"
        )
    )
    week = p.calendars["office"].week
    assert week[0] == ((22 * 60, 24 * 60),)
    assert week[1] == ((0, 6 * 60), (22 * 60, 24 * 60))
    assert week[5] == ((0, 6 * 60),)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid YAML" in errors_of("name: [unclosed")[0][1]
    with pytest.raises(ConfigError, match="cannot read the policy file"):
        load_policy(tmp_path / "missing.yaml")
