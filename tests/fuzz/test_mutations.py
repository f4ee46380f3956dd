"""Random damage to the example policies, config and tickets: exit 0 or 2, never a traceback.

Hypothesis mutates the real files (byte flips, truncation, a duplicated key, deep nesting,
huge numbers and dates, random unicode and bytes, YAML constructs we refuse) and runs the CLI
on the result. It must succeed (exit 0) or refuse the input (exit 2) with a message naming
the file; a traceback or a hang is a failure. Every input is bounded (a few KB plus at most a
100,000-character nesting, refused early), so each example is a small, bounded amount of work;
nothing here measures time.

The runs are derandomized (the same examples every run, so CI does not flake); set
TRACKER_BRIDGE_FUZZ=random (and TRACKER_BRIDGE_FUZZ_EXAMPLES=N) to search further locally.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracker_bridge.policyfile
from tracker_bridge.errors import ConfigError
from tracker_bridge.inputfile import parse_json, parse_yaml
from tracker_bridge.plugins.memory import MemoryTracker

from .helpers import (
    CARE,
    NOW,
    POLICIES,
    TICKETS,
    memory_config,
    no_traceback,
    ok_or_refused,
    run,
    ticket_bytes,
)

FUZZ = settings(
    max_examples=int(os.environ.get("TRACKER_BRIDGE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=os.environ.get("TRACKER_BRIDGE_FUZZ") != "random",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: values that stress a parser or a bound when put where a value goes
NASTY = [
    "~", "[]", "{}", "''", "true", "NO", "on", "-1", "0", "1e400", "-1e400", ".nan", ".inf",
    "9" * 30, "1" * 1500, "0x" + "f" * 64, "1:2:3:4:5", "2026-02-30", "0001-01-01", "9999-12-31",
    "2199-12-31T23:59:59Z", "99999999bd", "87673h", "3653bd", "0.0000001s", "1001%", "none",
    "&a x", "*a", "!!python/object:os.system x", "!!binary aGk=", "!!set {a, b}", "<<: {a: 1}",
    "? [a]", "'(a)\\1'", "'(?=x)'", "'[^a]{1000}'", "\"\\ud800\"", "|\n  text", "---", "...",
]
JSON_NASTY = [
    "null", "[]", "{}", '""', "true", "-1", "0", "1e400", "-1e400", "NaN", "Infinity",
    "-Infinity", "9" * 30, "1" * 1500, "1.5", '"0001-01-01T00:00:00+00:00"',
    '"9999-12-31T23:59:59-01:00"', '"2026-03-02T10:00:00"', '"2199-12-31T23:59:59+00:00"',
    '"1970-01-01T00:00:00+00:00"', '"\\ud800"', '"\\u0000"', '"x"', '{"a": 1, "a": 2}',
]
_VALUE = re.compile(rb"(?<=: )[^\n,}\]]+")
_JSON_KEY = re.compile(rb'"[A-Za-z_]+": ')
_YEAR = re.compile(rb"\b(19|20)\d\d(?=-\d\d-\d\d)")
_NUMBER = re.compile(rb"\d+")


@st.composite
def mutated(draw: st.DrawFn, base: bytes, json_doc: bool = False) -> bytes:
    """``base`` with one to three random mutations."""
    data = base
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(
            ["flip", "truncate", "duplicate", "nest", "value", "number", "year", "unicode", "bytes",
             "splice"]))
        data = MUTATIONS[kind](draw, data, json_doc)
    return data


def _pos(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def _flip(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= draw(st.integers(1, 255))
    return bytes(out)


def _truncate(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    return data[: _pos(draw, data)]


def _duplicate(draw: st.DrawFn, data: bytes, json_doc: bool) -> bytes:
    """The same key twice in one mapping: a line repeated (YAML) or a key re-inserted (JSON)."""
    if json_doc:
        keys = list(_JSON_KEY.finditer(data))
        if not keys:
            return data
        m = draw(st.sampled_from(keys))
        return data[: m.start()] + m.group() + b"null, " + data[m.start():]
    lines = data.split(b"\n")
    keyed = [i for i, line in enumerate(lines) if re.match(rb"\s*[\w-]+:", line)]
    if not keyed:
        return data
    i = draw(st.sampled_from(keyed))
    return b"\n".join([*lines[: i + 1], lines[i], *lines[i + 1:]])


def _nest(draw: st.DrawFn, data: bytes, json_doc: bool) -> bytes:
    depth = draw(st.one_of(st.integers(1, 80), st.just(100_000)))
    opening, closing = draw(st.sampled_from([(b"[", b"]"), (b'{"a": ', b"}")] if json_doc
                                            else [(b"[", b"]"), (b"{a: ", b"}")]))
    values = list(_VALUE.finditer(data))
    if not values:
        return data
    m = draw(st.sampled_from(values))
    return data[: m.start()] + opening * depth + b"1" + closing * depth + data[m.end():]


def _value(draw: st.DrawFn, data: bytes, json_doc: bool) -> bytes:
    values = list(_VALUE.finditer(data))
    if not values:
        return data
    m = draw(st.sampled_from(values))
    new = draw(st.sampled_from(JSON_NASTY if json_doc else NASTY)).encode("utf-8", "surrogatepass")
    return data[: m.start()] + new + data[m.end():]


def _number(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return data
    m = draw(st.sampled_from(numbers))
    new = draw(st.sampled_from([b"9" * 30, b"1" * 1200, b"99999999", b"0", b"4294967297", b"00"]))
    return data[: m.start()] + new + data[m.end():]


def _year(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    years = list(_YEAR.finditer(data))
    if not years:
        return data
    m = draw(st.sampled_from(years))
    year = draw(st.one_of(st.integers(1, 9999), st.sampled_from([1969, 1970, 2199, 2200])))
    return data[: m.start()] + f"{year:04d}".encode() + data[m.end():]


def _unicode(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    i = _pos(draw, data)
    text = draw(st.text(max_size=16))
    return data[:i] + text.encode("utf-8") + data[i:]


def _bytes(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    i = _pos(draw, data)
    return data[:i] + draw(st.binary(max_size=16)) + data[i:]


def _splice(draw: st.DrawFn, data: bytes, _j: bool) -> bytes:
    """A chunk of the file copied somewhere else in it (structure out of place)."""
    if len(data) < 2:
        return data
    a = draw(st.integers(0, len(data) - 1))
    b = draw(st.integers(a, min(len(data), a + 400)))
    return data[: (i := _pos(draw, data))] + data[a:b] + data[i:]


MUTATIONS: dict[str, Callable[[st.DrawFn, bytes, bool], bytes]] = {
    "flip": _flip, "truncate": _truncate, "duplicate": _duplicate, "nest": _nest,
    "value": _value, "number": _number, "year": _year, "unicode": _unicode, "bytes": _bytes,
    "splice": _splice,
}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- policies ---------------------------------------------------------------------------------

POLICY_BYTES = {p.name: p.read_bytes() for p in POLICIES}


@FUZZ
@given(data=st.data())
def test_mutated_policies(work: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(POLICY_BYTES)))
    text = data.draw(mutated(POLICY_BYTES[name]))
    path = work / name
    path.write_bytes(text)
    ok_or_refused(run("check", "--policy", str(path)), path)


def test_pyyaml_parser_refuses_a_lone_surrogate_escape() -> None:
    """libyaml refuses "\\ud800" itself; PyYAML's parser decodes it to a str that is not text."""
    for pure in (False, True):
        with pytest.raises(ConfigError, match="line 1"):
            parse_yaml('name: "\\ud800"\n', "p.yaml", pure=pure)


@FUZZ
@given(data=st.data())
def test_mutated_policies_either_yaml_parser(data: st.DataObject) -> None:
    """PyYAML's parser (the fallback without libyaml) refuses the same damage cleanly."""
    name = data.draw(st.sampled_from(sorted(POLICY_BYTES)))
    text = data.draw(mutated(POLICY_BYTES[name])).decode("utf-8", "replace")
    for pure in (False, True):
        try:
            parse_yaml(text, name, pure=pure)
        except ConfigError as exc:
            assert exc.source == name and exc.problems


# -- the config -------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _forget_memory_trackers() -> Iterator[None]:
    yield
    MemoryTracker.forget_all()


@FUZZ
@given(data=st.data())
def test_mutated_configs(work: Path, data: st.DataObject) -> None:
    text = data.draw(mutated(memory_config().encode("utf-8")))
    path = work / "tracker-bridge.yaml"
    path.write_bytes(text)
    result = run("check", "--config", str(path))
    no_traceback(result)
    if result.exit_code == 1:  # the config is valid; the memory tracker's own check objected
        assert "problems" in result.output, result.output
        return
    ok_or_refused(result, path, CARE)


# -- tickets ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cached_policy() -> Iterator[None]:
    """Load each policy once: its calendars then keep their year tables between examples, so an
    example costs the ticket's evaluation, not a cold policy (the loader is tested above)."""
    real = tracker_bridge.policyfile.load_policy
    cache: dict[str, object] = {}

    def load(path: str | Path) -> object:
        if str(path) not in cache:
            cache[str(path)] = real(path)
        return cache[str(path)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracker_bridge.policyfile, "load_policy", load)
        yield


TICKET_BYTES = [ticket_bytes(t) for t in TICKETS]


@FUZZ
@given(data=st.data())
def test_mutated_tickets(work: Path, cached_policy: None, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(TICKET_BYTES))
    text = data.draw(mutated(base, json_doc=True))
    path = work / "ticket.json"
    path.write_bytes(text)
    ok_or_refused(run("evaluate", "--policy", str(CARE), str(path), "--now", NOW, "--json"), path)


@FUZZ
@given(data=st.data())
def test_mutated_tickets_on_stdin(cached_policy: None, data: st.DataObject) -> None:
    text = data.draw(mutated(data.draw(st.sampled_from(TICKET_BYTES)), json_doc=True))
    # the reader names standard input <stdin>; evaluate names a ticket that reads but does not
    # follow the contract by its argument, "-"
    ok_or_refused(run("evaluate", "--policy", str(CARE), "-", "--now", NOW, input=text),
                  "<stdin>", "error: -: ")


@FUZZ
@given(data=st.data())
def test_mutated_json_parses_or_names_the_path(data: st.DataObject) -> None:
    text = data.draw(mutated(data.draw(st.sampled_from(TICKET_BYTES)), json_doc=True))
    try:
        parse_json(text.decode("utf-8", "replace"), "t.json")
    except ConfigError as exc:
        assert exc.source == "t.json" and exc.problems


# -- structured damage: a random value at a random place --------------------------------------
#
# Byte-level damage mostly breaks the syntax; these keep it valid and put odd values where
# the schema, the compiler and the engine meet them.

_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**999),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["99999999bd", "3653bd", "87672h", "0s", "1e999%", "1000%", "mon-sun",
                     "00:00-24:00", "23:59-00:00", "GB/ENG", "XX/YY", "Mars/Olympus", "none",
                     "(a)\\1", "(?=x)", "[^a]{1000}", "2026-02-30", "0001-01-01T00:00:00+00:00",
                     "2199-12-31T23:00:00+00:00", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]),
    st.dates(), st.datetimes(timezones=st.just(UTC)),
)
_values = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner,
                                                                      max_size=4)),
                       max_leaves=12)


def _places(doc: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _places(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _places(v, (*path, i))


def _put(doc: Any, path: tuple[Any, ...], value: object, how: str) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "new key" and isinstance(parent, dict):
        parent[f"{last}_x"] = value
    else:
        parent[last] = value
    return doc


@st.composite
def damaged(draw: st.DrawFn, doc: object) -> object:
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_places(doc))))
        doc = _put(doc, path, draw(_values), draw(st.sampled_from(["replace", "delete", "new key"])))
    return doc


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


def _yaml(doc: object) -> bytes:
    return yaml.dump(doc, Dumper=_NoAliases, allow_unicode=True, sort_keys=False).encode("utf-8")


POLICY_DOCS = {name: parse_yaml(text.decode("utf-8"), name)[0] for name, text in POLICY_BYTES.items()}
CONFIG_DOC = parse_yaml(memory_config(), "tracker-bridge.yaml")[0]


@FUZZ
@given(data=st.data())
def test_policies_with_odd_values(work: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(POLICY_DOCS)))
    path = work / f"odd-{name}"
    path.write_bytes(_yaml(data.draw(damaged(POLICY_DOCS[name]))))
    ok_or_refused(run("check", "--policy", str(path)), path)


@FUZZ
@given(data=st.data())
def test_configs_with_odd_values(work: Path, data: st.DataObject) -> None:
    path = work / "odd-tracker-bridge.yaml"
    path.write_bytes(_yaml(data.draw(damaged(CONFIG_DOC))))
    result = run("check", "--config", str(path))
    no_traceback(result)
    if result.exit_code == 1:  # valid; the memory tracker's own check objected
        assert "problems" in result.output, result.output
        return
    ok_or_refused(result, path, CARE)


@FUZZ
@given(data=st.data())
def test_tickets_with_odd_values(work: Path, cached_policy: None, data: st.DataObject) -> None:
    doc = data.draw(damaged(data.draw(st.sampled_from(TICKETS))))
    path = work / "odd-ticket.json"
    path.write_text(json.dumps(doc, default=str), encoding="utf-8")
    ok_or_refused(run("evaluate", "--policy", str(CARE), str(path), "--now", NOW), path)
