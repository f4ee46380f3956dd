"""The hostile and careless inputs a review fed the bridge, each refused with exit status 2.

Each message names the file and, where there is one, the line and the path in it. Before
these fixes they hung (alias bombs, 99999999bd, a 50 MB policy), raised a traceback
(OverflowError, UnicodeDecodeError, RecursionError, 2026-02-30) or were silently accepted
(duplicate keys, NaN). Memory-bound cases are in test_memory.py.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tracker_bridge.core.calendar import BusinessCalendar, CalendarError
from tracker_bridge.core.ticket import Ticket, TicketError

from .helpers import CARE, NOW, TICKETS, memory_config, ok_or_refused, refused, run, ticket_bytes

CARE_TEXT = CARE.read_text(encoding="utf-8")
CARE_LINES = CARE_TEXT.splitlines()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def policy(tmp_path: Path):
    def write(text: str | bytes, name: str = "care.yaml") -> Path:
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return p

    return write


def check(path: Path):
    return run("check", "--policy", str(path))


# -- policies ---------------------------------------------------------------------------------


def test_alias_bomb_policy(policy) -> None:
    text = "name: lol\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    p = policy(text)
    refused(check(p), p, "line 2: a:", "anchors and aliases")


def test_a_target_of_99999999bd(policy) -> None:
    p = policy(CARE_TEXT.replace("resolution: 4h", "resolution: 99999999bd", 1))
    line = line_of(p.read_text(), "99999999bd")
    refused(check(p), p, f"line {line}: classes.critical.resolution", "at most 10 years")
    out = refused(run("deadline", "--policy", str(p), "--class", "critical",
                      "--start", "2026-03-02T10:00:00Z"), p)
    assert "99999999bd" in out


@pytest.mark.parametrize(
    ("value", "reason"),
    [("1" * 40 + "h", "too long"), ("87673h", "at most 10 years"), ("5260321m", "at most 10 years"),
     ("3654bd", "at most 10 years"), ("1e308h", "not a duration")],
)
def test_huge_durations(policy, value: str, reason: str) -> None:
    p = policy(CARE_TEXT.replace("resolution: 4h", f"resolution: {value}", 1))
    line = line_of(p.read_text(), value)
    refused(check(p), p, f"line {line}: classes.critical.resolution", reason)


@pytest.mark.parametrize(("value", "reason"), [("1001%", "at most 1000%"), ("1e999999999", "not a percentage"),
                                               (".inf", "not a percentage")])
def test_huge_escalation_thresholds(policy, value: str, reason: str) -> None:
    assert "after: {response: 100%}" in CARE_TEXT
    p = policy(CARE_TEXT.replace("after: {response: 100%}", f"after: {{response: {value}}}", 1))
    line = line_of(p.read_text(), value)
    refused(check(p), p, f"line {line}: escalation.levels[0].after", reason)


def test_an_impossible_closed_date(policy) -> None:
    p = policy(CARE_TEXT.replace("calendars:\n", "calendars:\n  extra:\n    week: {mon: '09:00-17:00'}\n"
                                 "    closed: [2026-03-02, 2026-02-30]\n", 1))
    line = line_of(p.read_text(), "2026-02-30")
    refused(check(p), p, f"line {line}: calendars.extra.closed[1]", '"2026-02-30" is not a date')


@pytest.mark.parametrize("day", ["1969-12-31", "2200-01-01"])
def test_closed_dates_outside_the_range(policy, day: str) -> None:
    p = policy(CARE_TEXT.replace("calendars:\n", "calendars:\n  extra:\n    week: {mon: '09:00-17:00'}\n"
                                 f"    closed: [{day}]\n", 1))
    refused(check(p), p, "calendars.extra.closed[0]", "outside the range")


def test_a_calendar_open_too_little_for_its_target(policy) -> None:
    text = CARE_TEXT.replace("calendars:\n", "calendars:\n  rare:\n    week: {sun: '03:00-03:05'}\n"
                             "    business_day: 1h\n", 1)
    text = text.replace("resolution: 4h", "resolution: {target: 2000bd, calendar: rare}", 1)
    p = policy(text)
    refused(check(p), p, f"line {line_of(text, 'calendar: rare')}: classes.critical.resolution",
            "years to use up")


def test_non_utf8_policy(policy) -> None:
    p = policy(CARE_TEXT.encode("utf-8").replace(b"name: care-pathway", b"name: care-p\xe0thway"))
    refused(check(p), p, f"line {line_of(CARE_TEXT, 'name: care-pathway')}:", "not UTF-8 text: byte 0xe0",
            "byte offset")


def test_utf16_policy_with_a_bom_loads_and_without_one_is_refused(policy) -> None:
    p = policy(CARE_TEXT.encode("utf-16"))
    assert check(p).exit_code == 0
    p = policy(CARE_TEXT.encode("utf-16-le"))
    refused(check(p), p, "NUL character", "UTF-16 without a byte-order mark")


def test_utf16_with_a_bom_but_broken(policy) -> None:
    p = policy(CARE_TEXT.encode("utf-16") + b"\x00\xd8")  # a lone high surrogate at the end
    refused(check(p), p, "not UTF-16 text")


def test_binary_policy(policy) -> None:
    p = policy(bytes(range(256)) * 4)
    refused(check(p), p, "line ", "byte offset")
    p = policy(b"\x7fELF\x02\x01\x01" + b"\x00" * 64)
    refused(check(p), p, "NUL character at byte offset 7")


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_100000_deep_nesting_in_yaml(policy, opening: str) -> None:
    closing = {"[": "]", "{a: ": "}", "- ": ""}[opening]
    p = policy(f"name: deep\nx: {opening * 100_000}1{closing * 100_000}\n"
               if opening != "- " else "name: deep\nx:\n" + "- " * 100_000 + "1\n")
    refused(check(p), p, f"line {2 if opening != '- ' else 3}: x", "nested more than 64 levels deep")


def test_duplicate_yaml_keys(policy) -> None:
    first = line_of(CARE_TEXT, "default_class:")
    p = policy(CARE_TEXT + "default_class: low\n")
    refused(check(p), p, f"line {len(CARE_LINES) + 1}: default_class",
            f"duplicate key (first at line {first})")
    text = CARE_TEXT.replace("classes:\n", "classes:\n  low: {response: 1bd}\n", 1)
    p = policy(text)
    low = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith("  low:")]
    refused(check(p), p, f"line {low[1]}: classes.low", f"duplicate key (first at line {low[0]})")


@pytest.mark.parametrize(("pattern", "why"), [(r"(a)\\1", "backreferences"), ("x(?=y)", "look-around"),
                                               ("(?<!a)b", "look-around"), ("a{2000}", "repetition"),
                                               ("x" * 2001, "characters long")])
def test_patterns_re2_refuses(policy, pattern: str, why: str) -> None:
    assert "\nkb:" not in CARE_TEXT  # (the example needs no pattern of its own)
    text = CARE_TEXT + f"kb:\n  redact:\n    - \"{pattern}\"\n"
    p = policy(text)
    line = line_of(text, pattern[:40])
    refused(check(p), p, f"line {line}: kb.redact[0]", "not a pattern RE2 can run", why)


def test_other_yaml_refusals(policy) -> None:
    for text, needle in [
        ("name: x\n---\nname: y\n", "a second YAML document"),
        ("name: !!python/object/apply:os.system [id]\n", "the YAML tag !!python/object/apply:os.system"),
        ("name: x\nclasses:\n  <<: {a: {response: 1h}}\n", "merge keys (<<) are not supported"),
        ("name: x\n? [a, b]\n: 1\n", "a key must be a plain value"),
        ("name: " + "9" * 2000 + "\n", "more than 1000 characters"),
        ("name: x\x07\n", "not valid YAML: unacceptable character #x0007"),
    ]:
        p = policy(text)
        refused(check(p), p, "line ", needle)


# -- configs ----------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path):
    def write(text: str | bytes) -> Path:
        p = tmp_path / "tracker-bridge.yaml"
        p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return p

    return write


def test_the_memory_config_is_valid(config) -> None:
    assert run("check", "--config", str(config(memory_config()))).exit_code == 0


def test_alias_bomb_config(config) -> None:
    text = "x: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ) + memory_config()
    p = config(text)
    refused(run("check", "--config", str(p)), p, "line 1: x", "anchors and aliases")


def test_duplicate_tracker_names_name_line_and_path(config) -> None:
    base = memory_config()
    tracker = base[base.index("  - name: clinic-redmine"):]
    text = base + tracker.replace("clinic-redmine", "other", 1) + tracker
    p = config(text)
    line = [i for i, s in enumerate(text.splitlines(), 1) if "name: clinic-redmine" in s][1]
    refused(run("check", "--config", str(p)), p, f"line {line}: trackers[2].name",
            "'clinic-redmine' is used twice (first at trackers[0])")


def test_config_refusals(config) -> None:
    base = memory_config()
    first_state = line_of(base, "state:")
    cases = [
        (base + "state: other.sqlite\n", f"duplicate key (first at line {first_state})"),
        (base + "deep: " + "[" * 100_000 + "\n", "nested more than 64 levels deep"),
        (base.encode("utf-8").replace(b"clinic-redmine", b"clinic-r\xe9dmine"), "not UTF-8 text"),
        (base.encode("utf-16-le"), "NUL character"),
        (base.replace("poll_interval: 60s", "poll_interval: 1e400"), "at most 365d"),
        (base.replace("min_open: 10", "min_open: " + "9" * 5000), "more than 1000 characters"),
    ]
    for text, needle in cases:
        p = config(text)
        refused(run("check", "--config", str(p)), p, needle)


def test_a_config_whose_policy_is_hostile_names_the_policy(config, policy) -> None:
    bad = policy(CARE_TEXT + "default_class: low\n")
    p = config(memory_config(bad))
    refused(run("check", "--config", str(p)), bad, "duplicate key")


# -- tickets ----------------------------------------------------------------------------------


@pytest.fixture
def ticket(tmp_path: Path):
    def write(data: bytes | str) -> Path:
        p = tmp_path / "ticket.json"
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return p

    return write


def evaluate(path: Path | str, *extra: str, input: bytes | None = None):
    return run("evaluate", "--policy", str(CARE), str(path), "--now", NOW, *extra, input=input)


def test_the_example_tickets_evaluate(ticket) -> None:
    for t in TICKETS:
        assert evaluate(ticket(ticket_bytes(t))).exit_code == 0


def test_non_utf8_utf16_and_binary_tickets_name_the_file(ticket) -> None:
    good = ticket_bytes(TICKETS[0])
    p = ticket(good.replace(b"Looking", b"L\xf6oking"))
    refused(evaluate(p), p, "line ", "not UTF-8 text: byte 0xf6 at byte offset")
    p = ticket(json.dumps(TICKETS[0]).encode("utf-16-le"))
    refused(evaluate(p), p, "NUL character")
    p = ticket(bytes(range(256)))
    refused(evaluate(p), p, "not UTF-8 text")
    assert evaluate(ticket(json.dumps(TICKETS[0]).encode("utf-16"))).exit_code == 0
    refused(evaluate("-", input=b"\xff\xfe\xfd"), "<stdin>", "not UTF-16 text")


def test_100000_deep_nesting_in_json(ticket) -> None:
    p = ticket('{"tracker": "t", "fields": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    refused(evaluate(p), p, "nested more than 64 levels deep")
    p = ticket('{"a": ' + '{"a": ' * 70 + "1" + "}" * 71)
    refused(evaluate(p), p, "a.a.a.a.a.a.a.a...", "nested more than 64 levels deep")


def test_duplicate_json_keys_name_their_path(ticket) -> None:
    text = ticket_bytes(TICKETS[0]).decode()
    p = ticket(text.replace('"key": "42",', '"key": "42", "key": "43",', 1))
    refused(evaluate(p), p, "key: duplicate key")
    p = ticket(text.replace('"kind": "comment",', '"kind": "comment", "kind": "status",', 1))
    refused(evaluate(p), p, "history[1].kind: duplicate key")


def test_a_lone_surrogate_escape_in_json_is_not_text(ticket) -> None:
    """Found by the fuzz suite: "\\ud800" decoded to a str no encoder accepts, and RE2 (the
    override patterns, the error masking) raised UnicodeEncodeError on it."""
    text = ticket_bytes(TICKETS[0]).decode()
    p = ticket(text.replace('"Calendar unavailable for the ward"', '"Calendar \\ud800"', 1))
    refused(evaluate(p), p, "subject: a lone surrogate escape")
    refused(evaluate("-", input=p.read_bytes()), "<stdin>", "subject: a lone surrogate escape")
    # a pair is one character, and fine
    p = ticket(text.replace('"Calendar unavailable for the ward"', '"Calendar \\ud83d\\ude00"', 1))
    assert evaluate(p).exit_code == 0


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinity_in_json(ticket, value: str) -> None:
    text = ticket_bytes(TICKETS[0]).decode()
    p = ticket(text.replace('"tier": "L2"', f'"tier": {value}', 1))
    refused(evaluate(p), p, "fields.tier: ")


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("created", "0001-01-01T00:00:00+00:00", "clinic-redmine:42 created"),
        ("created", "9999-12-31T23:59:59-01:00", "clinic-redmine:42 created"),
        ("created", "1969-12-31T23:59:59+00:00", "clinic-redmine:42 created"),
        ("updated", "2200-01-01T00:00:01+00:00", "clinic-redmine:42 updated"),
    ],
)
def test_instants_outside_the_range_in_a_ticket(ticket, key: str, value: str, where: str) -> None:
    p = ticket(ticket_bytes(dict(TICKETS[0], **{key: value})))
    refused(evaluate(p), p, where, "outside the range")


def test_a_history_event_in_year_9999(ticket) -> None:
    t = json.loads(ticket_bytes(TICKETS[0]))
    t["history"][-1]["at"] = "9999-12-31T23:59:59+00:00"
    p = ticket(ticket_bytes(t))
    refused(evaluate(p), p, "history[4].at", "outside the range")


def test_the_ends_of_the_range_are_accepted(ticket) -> None:
    for created in ("1970-01-01T00:00:00+00:00", "2199-12-31T00:00:00+00:00"):
        t = dict(TICKETS[2], created=created)
        r = evaluate(ticket(ticket_bytes(t)))
        ok_or_refused(r)
        assert r.exit_code == 0, r.output


# -- --start and --now ------------------------------------------------------------------------


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00",
                                     "9999-12-31T00:00:00+00:00", "1969-12-31T23:59:59Z"])
def test_deadline_start_outside_the_range(instant: str) -> None:
    r = run("deadline", "--policy", str(CARE), "--class", "high", "--start", instant)
    refused(r, f"--start: '{instant}'", "outside the range")


def test_now_outside_the_range(ticket) -> None:
    p = ticket(ticket_bytes(TICKETS[0]))
    r = run("evaluate", "--policy", str(CARE), str(p), "--now", "0001-01-01T00:00:00Z")
    refused(r, "--now: '0001-01-01T00:00:00Z'", "outside the range")


# -- the library, not only the CLI ------------------------------------------------------------


def test_ticket_from_dict_refuses_year_one() -> None:
    with pytest.raises(TicketError, match=r"created.*outside the range"):
        Ticket.from_dict(dict(TICKETS[0], created="0001-01-01T00:00:00+00:00"))


def test_a_year_with_no_open_hours_is_skipped_and_no_open_hours_at_all_is_an_error() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=i) for i in range(52)]
    cal = BusinessCalendar("mondays", "Europe/London", {0: [(540, 1020)]}, closed=mondays)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert cal.add(start, timedelta(hours=1)) == datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
    rare = BusinessCalendar("rare", "UTC", {6: [(0, 1)]}, business_day=timedelta(hours=1))
    with pytest.raises(CalendarError, match=r"'rare'.*not used up before 2300-01-01"):
        rare.add(start, timedelta(days=3653))
    with pytest.raises(CalendarError, match="outside the range"):
        cal.add(datetime(1, 1, 1, tzinfo=UTC), timedelta(hours=1))
    with pytest.raises(CalendarError, match="outside the range"):
        cal.working(start, datetime(9999, 12, 31, tzinfo=UTC))
    with pytest.raises(CalendarError, match="not used up"):
        BusinessCalendar.always_open().add(start, timedelta.max)
