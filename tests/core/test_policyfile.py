"""The policy file: the spec's example loads; every invalid policy names its first error's path."""

from __future__ import annotations

import re
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


# -- input that must be refused with its line and path, not accepted or crashed on ----------


def test_duplicate_keys_are_errors_with_both_lines() -> None:
    # a second `low:` class, and a second default_class: YAML would let the last one win
    text = BASE.replace("  high: {response: 1h, resolution: 8h}\n",
                        "  low: {response: 1bd}\n  high: {response: 1h, resolution: 8h}\n"
                        "  low: {response: 2bd}\n")
    assert errors_of(text) == [("line 8: classes.low", "duplicate key (first at line 6)")]
    text = BASE + "default_class: high\ndefault_class: low\n"
    assert errors_of(text) == [("line 10: default_class", "duplicate key (first at line 9)")]


def test_an_impossible_closed_date_names_its_line_and_path() -> None:
    problems = errors_of(BASE.replace("holidays: [GB/ENG]", "closed: [2026-02-30]"))
    assert problems[0][0] == "line 4: calendars.office.closed[0]"
    assert '"2026-02-30" is not a date' in problems[0][1]


@pytest.mark.parametrize("day", ["1969-12-31", "2200-01-01", "0001-01-01"])
def test_closed_dates_outside_the_range_are_refused(day: str) -> None:
    problems = errors_of(BASE.replace("holidays: [GB/ENG]", f"closed: [2026-01-02, {day}]"))
    assert problems[0][0].endswith("calendars.office.closed[1]"), problems
    assert "outside the range" in problems[0][1] or "is not a date" in problems[0][1]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("99999999bd", "too long (at most 10 years"),
        ("87673h", "too long (at most 10 years"),
        ("3654d", "too long (at most 10 years"),
        ("1" * 80 + "h", "too long"),
    ],
)
def test_durations_are_bounded(target: str, message: str) -> None:
    problems = errors_of(BASE.replace("resolution: 8h", f"resolution: {target}"))
    assert problems[0][0] == "line 6: classes.high.resolution"
    assert message in problems[0][1]


def test_the_longest_durations_load() -> None:
    p = load_policy_text(BASE.replace("response: 1h, resolution: 8h", "response: 87672h, resolution: 3653bd"))
    assert p.classes["high"]["resolution"].duration is not None


def test_percentages_and_business_days_are_bounded() -> None:
    text = BASE + "escalation:\n  levels:\n    - {name: boss, after: {resolution: 1001%}}\n"
    assert "at most 1000%" in errors_of(text)[0][1]
    text = BASE.replace("holidays: [GB/ENG]", "business_day: 25h")
    assert errors_of(text)[0] == ("line 4: calendars.office.business_day", '"25h" is longer than a day (at most 24h)')


def test_windows_and_holiday_countries_are_bounded() -> None:
    many = ",".join(f"{h:02d}:00-{h:02d}:30" for h in range(9))
    problems = errors_of(BASE.replace('"09:00-17:30"', f'"{many}"'))
    assert problems[0][0].endswith("calendars.office.week") and "at most 8" in problems[0][1]
    nine = "[GB/ENG, IE, US, FR, DE, NL, BE, ES, IT]"
    problems = errors_of(BASE.replace("[GB/ENG]", nine))
    assert problems[0][0].endswith("calendars.office.holidays") and "at most 8" in problems[0][1]
    # the same country twice is one country
    p = load_policy_text(BASE.replace("[GB/ENG]", "[GB/ENG, GB/ENG]"))
    assert p.calendars["office"].holiday_specs == ("GB/ENG",)


@pytest.mark.parametrize(
    ("when", "key"),
    [
        (r"{text_matches: '(a)\1'}", "text_matches"),
        ("{text_matches: 'x(?=y)'}", "text_matches"),
        ("{field: component, matches: '(?<!a)b'}", "matches"),
        ("{text_matches: '(unclosed'}", "text_matches"),
    ],
)
def test_patterns_re2_refuses_are_errors_with_their_path(when: str, key: str) -> None:
    text = BASE + f"classify:\n  overrides:\n    - class: high\n      when: {when}\n"
    problems = errors_of(text)
    assert problems[0][0] == f"line 12: classify.overrides[0].when.{key}", problems
    assert "not a pattern RE2 can run" in problems[0][1]


def test_redaction_patterns_are_re2_and_named_by_index() -> None:
    problems = errors_of(BASE + "kb:\n  redact:\n    - 'ok'\n    - '(?=x)'\n")
    assert problems[0][0] == "line 12: kb.redact[1]"
    p = load_policy_text(BASE + "kb:\n  redact: ['\\b\\d{3}-\\d{2}-\\d{4}\\b']\n")
    assert p.kb_redact[0].search("ssn 123-45-6789") is not None
    assert not isinstance(p.kb_redact[0], re.Pattern)  # RE2, not Python's backtracking re


def test_aliases_are_refused() -> None:
    text = BASE.replace("classes:\n", "x: &a [1]\nclasses:\n")
    assert errors_of(text)[0] == ("line 5: x", errors_of(text)[0][1])
    assert "anchors and aliases" in errors_of(text)[0][1]


def test_a_policy_file_in_utf16_with_a_bom_loads_and_binary_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_bytes(BASE.encode("utf-16"))
    assert load_policy(f).name == "p"
    f.write_bytes(BASE.encode("utf-8") + b"\xff\xfe\x00junk")
    with pytest.raises(ConfigError) as info:
        load_policy(f)
    assert info.value.source == str(f)
    assert "not UTF-8 text: byte 0xff at byte offset" in info.value.problems[0][1]


def test_a_target_its_calendar_cannot_use_up_in_90_years_is_refused_at_load() -> None:
    sparse = BASE.replace('"09:00-17:30"}, holidays: [GB/ENG]', '"09:00-09:01"}, business_day: 1h')
    problems = errors_of(sparse.replace("resolution: 8h", "resolution: 3653bd"))
    assert problems[0][0] == "line 6: classes.high.resolution", problems
    assert "on calendar 'office' (open 5m a week) takes about" in problems[0][1]
    # the same target on office hours is fine (about 47 years of office hours)
    assert load_policy_text(BASE.replace("resolution: 8h", "resolution: 3653bd"))
    # escalation thresholds count too: 1000% of a long target
    text = BASE.replace("resolution: 8h", "resolution: 3000bd") + (
        "escalation:\n  levels:\n    - {name: boss, after: {resolution: 1000%}}\n")
    assert errors_of(text)[0][0] == "line 11: escalation.levels[0].after"


def test_named_things_are_capped() -> None:
    classes = "".join(f"  c{i}: {{response: 1h}}\n" for i in range(201))
    problems = errors_of(BASE.replace("classes:\n", "classes:\n" + classes))
    assert problems[0] == ("line 6: classes", "too many entries (at most 200)")
