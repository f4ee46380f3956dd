"""Regular expressions that customer text cannot hang: RE2 (``google-re2``), linear time.

Ticket subjects, descriptions and comments are written by customers: every pattern the bridge
runs over them, built in or written in a policy, goes through :func:`compile_safe`. RE2 matches
in time linear in the text and memory bounded by the compiled program, whatever the pattern; a
pattern it cannot run that way (backreferences, look-around) is refused at load with a message,
instead of being accepted and later backtracking for hours on a hostile subject.

Syntax differences from Python's ``re`` that users meet (documented in docs/policy.md):
``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII (use ``\\p{L}`` for letters of any script),
and there are no backreferences or look-around assertions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol

import re2

#: the compiled program may use at most this much memory (RE2's own bound; the default of RE2 itself): a pattern such as ``(a{1000}){1000}`` is refused instead of built
MAX_PROGRAM_BYTES = 8 << 20
#: a policy pattern longer than this is refused (a regex is a line, not a document)
MAX_PATTERN_CHARS = 2000


class Pattern(Protocol):
    """What the engine needs of a compiled pattern (RE2's and ``re``'s both fit)."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, /) -> object | None: ...

    def finditer(self, text: str, /) -> Iterator[Any]: ...

    def sub(self, repl: Any, text: str, /) -> str: ...


class RegexError(ValueError):
    """A pattern RE2 cannot compile or run in linear time; the message says why."""


def _options(case_insensitive: bool) -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False  # RE2 would print every refused pattern on stderr
    opts.max_mem = MAX_PROGRAM_BYTES
    opts.case_sensitive = not case_insensitive
    return opts


def compile_safe(pattern: str, *, ignore_case: bool = False) -> re2._Regexp:
    """``pattern`` compiled by RE2, or :class:`RegexError` naming what is wrong with it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(f"pattern is {len(pattern)} characters long (at most {MAX_PATTERN_CHARS})")
    try:
        return re2.compile(pattern, _options(ignore_case))
    except re2.error as exc:
        why = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(why, bytes):
            why = why.decode("utf-8", "replace")
        hint = ""
        if re.search(r"\\[1-9]|\(\?<?[=!]", pattern):
            hint = " (backreferences and look-around cannot run in linear time and are not supported)"
        raise RegexError(f"{why}{hint}") from None


#: every lone surrogate to U+FFFD, the replacement character
_SURROGATES = dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)


def scrub(text: str) -> str:
    """``text`` as RE2 can take it: a lone surrogate (``"\\ud800"``, which a tracker's JSON
    can carry and UTF-8 cannot encode) becomes U+FFFD, one character for one, so positions
    in the result are positions in ``text``."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.translate(_SURROGATES)
    return text
