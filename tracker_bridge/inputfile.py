"""Reading the files users hand the bridge: policies, configs, tickets (untrusted input).

Every such file goes through here, so that a careless or hostile one is refused with a
:class:`~tracker_bridge.errors.ConfigError` naming the file (and, where there is one, the line
and path in it), exit status 2, before it can use much time or memory:

- **size**: at most :data:`MAX_POLICY_BYTES` / :data:`MAX_CONFIG_BYTES` (4 MiB) or
  :data:`MAX_TICKET_BYTES` (16 MiB); only one byte more than the limit is ever read;
- **encoding**: UTF-8, with or without a byte-order mark; UTF-16 and UTF-32 only with their
  byte-order mark (what Windows editors write). A byte that does not decode is reported with
  its line and byte offset; a NUL character (a binary file, or UTF-16 without a BOM) too;
- **YAML** is parsed once, as a stream of events from libyaml when it is installed (else
  PyYAML's own parser), and the data and the path -> line map are built from those events
  here, without recursion. Anchors and aliases are refused (a policy or config has no use for
  them, and they are what a "billion laughs" file is made of), so are tags other than YAML's
  plain scalars, a second document, nesting deeper than :data:`MAX_DEPTH` (64) and more than
  :data:`MAX_YAML_NODES` values. A duplicate key is an error with both lines
  (``care.yaml: line 12: classes.low: duplicate key (first at line 7)``). Only
  ``true``/``false`` are booleans (YAML 1.2: a holiday country ``NO`` stays a string) and
  mapping keys are strings (classes may be named ``1``..``5``);
- **JSON**: duplicate keys, ``NaN``/``Infinity`` (and numbers too large for a float), numbers
  written with more than 1000 characters, lone surrogate escapes (``"\\ud800"``: not text) and
  nesting deeper than :data:`MAX_DEPTH` are errors naming the path in the document
  (``history[2].at``).

Why events and not ``yaml.compose``: libyaml's composer recurses in C and crashes the process
(SIGSEGV) on 100,000-deep nesting, and both composers hand back alias graphs whose expansion is
the billion-laughs problem. The event stream is flat: depth, node count and aliases are checked
as each event arrives, so a hostile file is refused after a bounded amount of work.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import yaml

from .errors import ConfigError

MiB = 1 << 20
#: the largest policy file read (the five example policies are 3-10 KiB)
MAX_POLICY_BYTES = 4 * MiB
#: the largest config file read
MAX_CONFIG_BYTES = 4 * MiB
#: the largest normalized ticket read (long descriptions and histories fit many times over)
MAX_TICKET_BYTES = 16 * MiB
#: the largest secret file (``credentials: {file: PATH}``) read
MAX_SECRET_BYTES = 64 * 1024
#: the deepest nesting of mappings and lists in any of these files
MAX_DEPTH = 64
#: the most values (scalars, mappings, lists) one YAML file may hold
MAX_YAML_NODES = 100_000
#: a number written with more characters than this is refused (YAML 1.1 sexagesimal ints such
#: as 1:2:3:... cost quadratic time to convert)
_MAX_NUMBER_CHARS = 1000

Lines = dict[tuple[Any, ...], int]


def _size(n: int) -> str:
    if n % MiB == 0:
        return f"{n // MiB} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def format_loc(loc: tuple[Any, ...]) -> str:
    """``("classes", "high", "response")`` -> ``classes.high.response``; ints as ``[i]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _where(loc: tuple[Any, ...], line: int | None = None) -> str:
    # a path 64 levels deep is shown by its beginning
    path = format_loc(loc[:8]) + ("..." if len(loc) > 8 else "") or "(top level)"
    return f"line {line}: {path}" if line is not None else path


# --------------------------------------------------------------------------------------------
# Bytes and text


def read_bytes(
    path: str | os.PathLike[str],
    *,
    what: str,
    limit: int,
    source: str | None = None,
    missing_hint: str = "",
) -> bytes:
    """The file's bytes, at most ``limit`` of them; ``-`` reads standard input.

    :param what: the kind of file, for messages (``policy``, ``config``, ``ticket``)
    :raises ConfigError: the file cannot be read, or is larger than ``limit``
    """
    source = source or ("<stdin>" if str(path) == "-" else str(path))
    try:
        if str(path) == "-":
            if sys.stdin is None:  # a daemon or service without standard input
                raise ConfigError(source, [("", f"no standard input to read the {what} from")])
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:  # a text-only stdin (some test harnesses)
                data = sys.stdin.read(limit + 1).encode("utf-8", "surrogatepass")
            else:
                data = stream.read(limit + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = f" ({missing_hint})" if missing_hint and isinstance(exc, FileNotFoundError) else ""
        raise ConfigError(source, [("", f"cannot read the {what} file: {why}{hint}")]) from None
    if len(data) > limit:
        raise ConfigError(
            source,
            [("", f"the {what} file is larger than {_size(limit)}, the most a {what} file may be")],
        )
    return data


_BOMS = (  # UTF-32 first: its little-endian BOM begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


def decode_text(data: bytes, source: str) -> str:
    """``data`` as text: UTF-8 (a BOM is dropped), or UTF-16/UTF-32 announced by their BOM.

    :raises ConfigError: a byte sequence that does not decode (its line and byte offset), or
        a NUL character (a binary file, or UTF-16 without a byte-order mark)
    """
    skip, codec, name = 0, "utf-8", "UTF-8"
    for bom, c, n in _BOMS:
        if data.startswith(bom):
            skip, codec, name = len(bom), c, n
            break
    try:
        text = data[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        good = data[skip : offset].decode(codec, "replace")
        line = good.count("\n") + 1
        bad = data[offset : offset + 1].hex()
        hint = (
            "save the file as UTF-8"
            if name == "UTF-8"
            else f"the file starts with a {name} byte-order mark but is not {name}"
        )
        raise ConfigError(
            source,
            [(f"line {line}", f"not {name} text: byte 0x{bad} at byte offset {offset} ({hint})")],
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        offset = skip + len(text[:nul].encode(codec))
        raise ConfigError(
            source,
            [(
                f"line {line}",
                f"a NUL character at byte offset {offset}: this is not a text file (a binary "
                "file, or UTF-16 without a byte-order mark? save it as UTF-8)",
            )],
        )
    return text


def read_text(
    path: str | os.PathLike[str], *, what: str, limit: int, missing_hint: str = ""
) -> str:
    """:func:`read_bytes` then :func:`decode_text`."""
    source = "<stdin>" if str(path) == "-" else str(path)
    data = read_bytes(path, what=what, limit=limit, source=source, missing_hint=missing_hint)
    return decode_text(data, source)


# --------------------------------------------------------------------------------------------
# YAML


#: whether PyYAML was built with libyaml (its C parser is then used)
LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))


def _yaml12_booleans(cls: type) -> type:
    """``cls`` with PyYAML's safe resolvers, except that only true/false are booleans."""
    cls.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
    }
    cls.add_implicit_resolver(  # type: ignore[attr-defined]
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return cls


@_yaml12_booleans
class _PyEventLoader(yaml.SafeLoader):
    """PyYAML's own parser, resolver and safe scalar constructors."""


if LIBYAML:

    @_yaml12_booleans
    class _CEventLoader(yaml.CSafeLoader):
        """libyaml's parser with PyYAML's resolver and safe scalar constructors."""

    _LOADER: type = _CEventLoader
else:  # pragma: no cover - PyYAML without libyaml
    _LOADER = _PyEventLoader

_T = "tag:yaml.org,2002:"
_SCALARS: dict[str, Callable[[Any, yaml.ScalarNode], Any]] = {
    _T + name: yaml.SafeLoader.yaml_constructors[_T + name]
    for name in ("null", "bool", "int", "float", "str", "timestamp")
}
_KIND = {_T + "int": "an integer", _T + "float": "a number", _T + "timestamp": "a date",
         _T + "bool": "a boolean", _T + "null": "null", _T + "str": "a string"}
_SEQ_TAGS = (None, "!", _T + "seq")
_MAP_TAGS = (None, "!", _T + "map")
_NO_KEY = object()


class _Frame:
    __slots__ = ("is_map", "key", "path", "seen", "value")

    def __init__(self, is_map: bool, value: Any, path: tuple[Any, ...]) -> None:
        self.is_map = is_map
        self.value = value
        self.path = path
        self.key: Any = _NO_KEY
        self.seen: dict[str, int] = {}


def _key_text(k: Any) -> str:
    return str(k).lower() if isinstance(k, bool) else str(k)


def parse_yaml(
    text: str,
    source: str,
    *,
    limit: int = MAX_POLICY_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_YAML_NODES,
    pure: bool = False,
) -> tuple[Any, Lines]:
    """Parse one YAML document; returns the data and a map from path to line number.

    The line of a path is where its value starts (a mapping key's line when the value is on
    the same line). ``limit`` bounds the text in characters (files are bounded in bytes by
    :func:`read_bytes` already). Raises :class:`ConfigError` naming ``source``, the line and
    the path. ``pure`` uses PyYAML's own parser even where libyaml is installed (the tests
    run both).
    """
    if len(text) > limit:
        raise ConfigError(source, [("", f"the text is longer than {_size(limit)} (characters)")])
    if text.startswith("\ufeff"):
        text = text[1:]
    loader_class = _PyEventLoader if pure else _LOADER
    loader = None
    try:
        loader = loader_class(text)  # PyYAML's reader checks the characters here
        return _build(loader, source, text, max_depth, max_nodes)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source, text, loader_class is not _PyEventLoader) from None
    except UnicodeError as exc:  # a lone surrogate in a str handed over by a caller
        raise ConfigError(source, [("", f"not valid text: {exc.reason}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _syntax_error(exc: yaml.YAMLError, source: str, text: str, libyaml: bool) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = "" if mark is None else f"line {mark.line + 1}"
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml counts the position in UTF-8 bytes, PyYAML in characters
        pos = max(0, exc.position)
        if libyaml:
            before = text.encode("utf-8", "replace")[:pos].count(b"\n")
        else:
            before = text.count("\n", 0, pos)
        where = f"line {before + 1}"
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        problem = f"unacceptable character {shown}: {exc.reason}"
    return ConfigError(source, [(where, f"not valid YAML: {problem}")])


def _build(loader: Any, source: str, text: str, max_depth: int, max_nodes: int) -> tuple[Any, Lines]:
    def fail(loc: tuple[Any, ...], line: int | None, message: str) -> ConfigError:
        return ConfigError(source, [(_where(loc, line), message)])

    stack: list[_Frame] = []

    def get() -> Any:
        try:
            return loader.get_event()
        except yaml.YAMLError as exc:
            # libyaml 0.2.6 (PyYAML 6.0.4's wheels) has a nesting limit of its own, which its
            # scanner can meet before this builder sees the 65th level: the same refusal
            if "nesting depth" not in str(getattr(exc, "problem", None) or exc):
                raise
            mark = getattr(exc, "problem_mark", None)
            raise fail(stack[-1].path if stack else (), None if mark is None else mark.line + 1,
                       f"nested more than {max_depth} levels deep") from None

    get()  # StreamStartEvent
    ev = get()
    lines: Lines = {}
    if isinstance(ev, yaml.StreamEndEvent):
        return None, lines
    # ev is the first DocumentStartEvent
    root: Any = None
    nodes = 0
    while True:
        ev = get()
        if isinstance(ev, yaml.DocumentEndEvent):
            break
        if isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            continue
        line = ev.start_mark.line + 1
        parent = stack[-1] if stack else None
        if parent is not None and parent.is_map and parent.key is _NO_KEY:
            # a mapping key
            if not isinstance(ev, yaml.ScalarEvent):
                what = "an alias" if isinstance(ev, yaml.AliasEvent) else "a list or mapping"
                raise fail(parent.path, line, f"a key must be a plain value, not {what}")
            if ev.anchor is not None:
                raise fail(parent.path, line, _ANCHORS)
            key = _key_text(_scalar(loader, ev, parent.path, line, fail))
            first = parent.seen.get(key)
            if first is not None:
                raise fail((*parent.path, key), line, f"duplicate key (first at line {first})")
            parent.seen[key] = line
            parent.key = key
            continue
        # a value: where it goes
        if parent is None:
            path: tuple[Any, ...] = ()
        elif parent.is_map:
            path = (*parent.path, parent.key)
        else:
            path = (*parent.path, len(parent.value))
        if isinstance(ev, yaml.AliasEvent):
            raise fail(path, line, _ANCHORS)
        if ev.anchor is not None:
            raise fail(path, line, _ANCHORS)
        nodes += 1
        if nodes > max_nodes:
            raise fail(path, line, f"more than {max_nodes} values in one file")
        lines[path] = line
        frame: _Frame | None = None
        if isinstance(ev, yaml.ScalarEvent):
            value = _scalar(loader, ev, path, line, fail)
        else:
            is_map = isinstance(ev, yaml.MappingStartEvent)
            if ev.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                raise fail(path, line, f"the YAML tag {_tag(ev.tag)} is not supported")
            if len(stack) >= max_depth:
                raise fail(path, line, f"nested more than {max_depth} levels deep")
            value = {} if is_map else []
            frame = _Frame(is_map, value, path)
        if parent is None:
            root = value
        elif parent.is_map:
            parent.value[parent.key] = value
            parent.key = _NO_KEY
        else:
            parent.value.append(value)
        if frame is not None:
            stack.append(frame)
    ev = get()
    if isinstance(ev, yaml.DocumentStartEvent):
        raise ConfigError(
            source,
            [(f"line {ev.start_mark.line + 1}",
              "a second YAML document (---): a file holds exactly one")],
        )
    return root, lines


def _tag(tag: str) -> str:
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag


_ANCHORS = (
    "YAML anchors and aliases (&name, *name) are not supported: write the value out "
    "where it is needed"
)


def _scalar(
    loader: Any,
    ev: yaml.ScalarEvent,
    path: tuple[Any, ...],
    line: int,
    fail: Callable[[tuple[Any, ...], int | None, str], ConfigError],
) -> Any:
    tag = ev.tag
    if tag is None or tag == "!":
        tag = loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
    construct = _SCALARS.get(tag)
    if construct is None:
        if tag == _T + "merge":
            raise fail(path, line, "merge keys (<<) are not supported: write the keys out")
        raise fail(path, line, f"the YAML tag {_tag(tag)} is not supported")
    if tag in (_T + "int", _T + "float") and len(ev.value) > _MAX_NUMBER_CHARS:
        raise fail(path, line, f"a number written with more than {_MAX_NUMBER_CHARS} characters")
    if not _is_text(ev.value):  # "\ud800" in a double-quoted scalar (PyYAML's parser)
        raise fail(path, line, _SURROGATE)
    node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
    try:
        return construct(loader, node)
    except (ValueError, OverflowError, ArithmeticError, yaml.YAMLError) as exc:
        shown = ev.value if len(ev.value) <= 60 else ev.value[:57] + "..."
        why = getattr(exc, "problem", None) or str(exc)
        raise fail(path, line, f'"{shown}" is not {_KIND.get(tag, "valid")}: {why}') from None


_SURROGATE = "a lone surrogate escape (such as \\ud800) is not text"


def _is_text(s: str) -> bool:
    """Whether ``s`` is valid Unicode (no lone surrogate, which no encoder accepts)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_yaml_file(
    path: str | os.PathLike[str], *, what: str, limit: int, missing_hint: str = ""
) -> tuple[Any, Lines]:
    """Read, decode and parse a YAML file (see :func:`parse_yaml`)."""
    text = read_text(path, what=what, limit=limit, missing_hint=missing_hint)
    return parse_yaml(text, str(path), limit=limit)


# --------------------------------------------------------------------------------------------
# JSON


class _Refused:
    """A JSON value that is refused; found with its path after parsing."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Duplicate(dict):  # type: ignore[type-arg]
    """An object in which a key appears twice (the key in ``duplicate``)."""

    duplicate: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    marked = _Duplicate(out)
    marked.duplicate = dup
    return marked


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not valid JSON (refused)")


def _float(text: str) -> float | _Refused:
    if len(text) > _MAX_NUMBER_CHARS:
        return _Refused(f"a number written with more than {_MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        return _Refused(f"{text[:40]} is too large for a number")
    return value


def _int(text: str) -> int | _Refused:
    if len(text) > _MAX_NUMBER_CHARS:
        return _Refused(f"a number written with more than {_MAX_NUMBER_CHARS} characters")
    try:
        return int(text)
    except ValueError:
        return _Refused(f"an integer of {len(text)} digits is too long")


def parse_json(text: str, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON document strictly; raises :class:`ConfigError` naming ``source``.

    Refused, with the path in the document: a key twice in one object, ``NaN``,
    ``Infinity``, ``-Infinity`` and numbers too large for a float, integers too long to
    convert, nesting deeper than ``max_depth``.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as exc:
        raise ConfigError(
            source, [(f"line {exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})")]
        ) from None
    except RecursionError:
        raise ConfigError(source, [("", f"nested more than {max_depth} levels deep")]) from None
    except ValueError as exc:
        raise ConfigError(source, [("", f"not valid JSON: {exc}")]) from None
    _check_json(data, source, max_depth)
    return data


def _check_json(data: Any, source: str, max_depth: int) -> None:
    """Walk the document without recursion: refused values, duplicates, depth."""
    todo: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while todo:
        value, path = todo.pop()
        if isinstance(value, _Refused):
            raise ConfigError(source, [(_where(path), value.message)])
        if isinstance(value, str):
            if not _is_text(value):
                raise ConfigError(source, [(_where(path), _SURROGATE)])
            continue
        if isinstance(value, dict | list):
            if len(path) >= max_depth:
                raise ConfigError(
                    source, [(_where(path), f"nested more than {max_depth} levels deep")]
                )
            if isinstance(value, _Duplicate):
                raise ConfigError(
                    source, [(_where((*path, value.duplicate)), "duplicate key in this object")]
                )
            if isinstance(value, dict):
                bad = next((k for k in value if not _is_text(k)), None)
                if bad is not None:
                    raise ConfigError(source, [(_where(path), f"a key: {_SURROGATE}")])
            items = value.items() if isinstance(value, dict) else enumerate(value)
            # reversed: the first problem in document order is reported
            todo.extend(reversed([(v, (*path, k)) for k, v in items]))


def read_json_file(path: str | os.PathLike[str], *, what: str, limit: int) -> Any:
    """Read, decode and parse a JSON file (``-``: standard input); see :func:`parse_json`."""
    source = "<stdin>" if str(path) == "-" else str(path)
    text = read_text(path, what=what, limit=limit)
    return parse_json(text, source)


__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_POLICY_BYTES",
    "MAX_SECRET_BYTES",
    "MAX_TICKET_BYTES",
    "MAX_YAML_NODES",
    "decode_text",
    "format_loc",
    "parse_json",
    "parse_yaml",
    "read_bytes",
    "read_json_file",
    "read_text",
    "read_yaml_file",
]
