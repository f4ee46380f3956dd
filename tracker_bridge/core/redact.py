"""Patient-identifiable data in support-ticket text: find it, redact it, check what is left.

Detection is candidate-then-validate. A few RE2 patterns (:func:`~.saferegex.compile_safe`:
linear time, no look-around) find candidates; Python then checks each one in time bounded by
its own length and a small window around it: check digits (``python-stdnum``), phone-number
metadata (``phonenumbers``), calendar validity, postcode structure, and the words just before
it ("DOB", "patient", "epoch", ...). Nothing here backtracks, so a hostile ticket costs time
in proportion to its length. What is detected, how, and what is not: docs/redaction.md.

:func:`find_identifiers` reports what it finds (kind and span); :func:`redact` replaces it;
:func:`residual_kinds` is the deliberately cruder second opinion the KB note runs over its
own text after redaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum.gb import nhs as _nhs
from stdnum.nl import bsn as _bsn
from stdnum.us import itin as _itin
from stdnum.us import ssn as _ssn

from .saferegex import RegexError, compile_safe

REDACTED = "[redacted]"

#: what each kind of finding is called in a note (never the data itself)
KIND_LABELS: dict[str, str] = {
    "nhs_number": "NHS number",
    "chi_number": "CHI number",
    "bsn": "BSN",
    "ssn": "social security number",
    "record_number": "hospital/record number",
    "date_of_birth": "date of birth",
    "date": "pre-2000 date",
    "postcode": "postcode",
    "address": "street address",
    "phone": "phone number",
    "phone_unchecked": "phone-shaped number (too many in one text to check each)",
    "email": "e-mail address",
    "name": "name",
    "policy": "policy pattern",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One identifier in a text: ``text[start:end]`` is it (a label before it is not)."""

    kind: str
    start: int
    end: int

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


class ExtraPattern(Protocol):
    """A policy's own ``kb.redact`` pattern (RE2 from ``compile_safe``, or ``re``)."""

    def finditer(self, text: str, /) -> Iterator[Any]: ...  # matches with start() and end()


# -- small helpers ------------------------------------------------------------------------------

#: characters that may join two digit groups of one number ("943 476 5919", "1716.07.909",
#: "(020) 7946 0123", non-breaking and thin spaces, hyphens and dashes)
_JOINERS = frozenset(" \t\u00a0\u2007\u2009\u202f.-\u2010\u2011\u2012\u2013()")
_SPACES = frozenset(" \t\u00a0\u2007\u2009\u202f")
_CONTEXT = 48  # characters before a candidate that its context words are looked for in


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _wordchar(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _char_before(text: str, i: int) -> str:
    return text[i - 1] if i > 0 else ""


def _char_after(text: str, j: int) -> str:
    return text[j] if j < len(text) else ""


def _clean_before(text: str, i: int) -> bool:
    """Nothing word-like glued to the left of ``text[i]``."""
    return not _wordchar(_char_before(text, i))


def _clean_after(text: str, j: int) -> bool:
    return not _wordchar(_char_after(text, j))


def _before(text: str, i: int, n: int = _CONTEXT) -> str:
    """Up to ``n`` characters before ``text[i]``, from its own line only, unless ``text[i]``
    starts its line (then the line before counts: a label on one line, the value on the next)."""
    window = text[max(0, i - n) : i]
    k = window.rfind("\n")
    if k >= 0 and window[k + 1 :].strip():
        return window[k + 1 :]
    return window


# -- context words ------------------------------------------------------------------------------

#: a word shortly before a number that says it identifies a person
_IDENT_CONTEXT = compile_safe(
    r"(?i)(?:^|[^a-z])(?:nhs|chi|h&c|bsn|burgerservicenummer|sofi|ssn|social[ _-]?security|mrn|"
    r"patient|pati\x{eb}nt|client|cli\x{eb}nt|pid\||hosp|hospital|dob|born|geboren|spine|pds)"
)
#: a technical word right before a number ("epoch 1709374800", "order_id=...", "build #...")
_TECH_CONTEXT = compile_safe(
    r"(?i)(?:^|[^a-z0-9])(?:id|ids|uid|guid|uuid|build|version|ver|rev|revision|epoch|ts|"
    r"timestamp|time|unix|ticket|incident|inc|case|issue|bug|order|request|req|job|task|trace|"
    r"span|txn|transaction|session|thread|tid|port|offset|seq|sequence|batch|message|msg|"
    r"msgid|correlation|accession|study|series|serial|hash|checksum|crc|size|bytes|count|total|"
    r"elapsed|duration|run|pipeline|commit|line|row|rows|error|code|errno|exit|ref|reference|"
    r"key|token|object|oid|file|inode|pid|process|invoice|po|sku|part|lot|licen[cs]e|created|"
    r"updated|expires|expiry|date|since|until|lag|examined|sent|written|read|wrote|processed)"
    r"(?:[_ -]?(?:no|nr|number|id|at|ms|s))?[ \t]*(?:[:=#<>!]{1,2})?[ \t]*$"
)
_IDENT_AFTER = compile_safe(r"(?i)^[ \t]*[(\[]?(?:nhs|chi|bsn|ssn|mrn)(?:[^a-z]|$)")
_GLUE_BEFORE = frozenset("=:#/\\@$%&*")
#: a unit or count word right after a number
_UNIT_AFTER = compile_safe(
    r"(?i)^[ \t]?(?:ms|s|sec|secs|seconds|bytes|b|kb|mb|gb|tb|kib|mib|gib|rows|records|items|"
    r"entries|events|messages|msgs|ns|us|hz|px|%)(?:[^a-z]|$)"
)
_PHONE_CONTEXT = compile_safe(
    r"(?i)(?:tel|phone|call|ring|mobile|mob|cell|sms|text|fax|contact|landline|dial|whatsapp|"
    r"telefoon|mobiel|bel|bellen|nummer|number|no\.)"
)
_SSN_CONTEXT = compile_safe(r"(?i)(?:ssn|social[ _-]?security|itin|taxpayer)")
_CHI_CONTEXT = compile_safe(r"(?i)(?:^|[^a-z])chi(?:[^a-z]|$)")


def _number_context(text: str, start: int, end: int) -> str:
    """``"ident"``, ``"tech"`` or ``""`` for the number ``text[start:end]``."""
    window = _before(text, start)
    if _IDENT_CONTEXT.search(window) or _IDENT_AFTER.search(text[end : end + 12]):
        return "ident"
    if _char_before(text, start) in _GLUE_BEFORE:
        return "tech"
    if _TECH_CONTEXT.search(_before(text, start, 28)):
        return "tech"
    if _UNIT_AFTER.search(text[end : end + 12]):
        return "tech"
    return ""


# -- numbers: NHS, CHI, BSN, SSN, phones --------------------------------------------------------


@dataclass(slots=True)
class _Chain:
    """Digit groups joined by at most three joiner characters each: one number, or several."""

    groups: list[tuple[int, int]]


#: a chain of at least seven digits (the shortest phone number looked for; identifiers have 9
#: or 10), each joined to the next by at most three joiners: one RE2 match per chain, and none
#: at all for the short digit runs that fill ordinary text
_CHAIN = compile_safe(
    r"[0-9](?:[ \t\x{a0}\x{2007}\x{2009}\x{202f}.()\x{2010}-\x{2013}-]{0,3}[0-9]){6,}"
)


def _chains(text: str) -> Iterator[_Chain]:
    """The digit chains of ``text`` that have at least seven digits."""
    for m in _CHAIN.finditer(text):
        s, e = m.span()
        groups: list[tuple[int, int]] = []
        i = s
        while i < e:
            j = i
            while j < e and "0" <= text[j] <= "9":
                j += 1
            groups.append((i, j))
            i = j
            while i < e and not "0" <= text[i] <= "9":
                i += 1
        yield _Chain(groups)


def _gap(text: str, groups: list[tuple[int, int]], k: int) -> str:
    """The joiner text between groups ``k-1`` and ``k``, spaces of every width as one space."""
    g = text[groups[k - 1][1] : groups[k][0]]
    return "".join(" " if c in _SPACES else c for c in g)


def _valid_ddmmyy(d: str) -> bool:
    day, month = int(d[0:2]), int(d[2:4])
    return 1 <= month <= 12 and 1 <= day <= (
        29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
    )


def _id_numbers(text: str, chain: _Chain, out: list[Finding]) -> None:
    """NHS/CHI (10 digits, mod 11), BSN (9, 11-proof) and SSN (3-2-4) within one chain."""
    groups = chain.groups
    # glued to letters: a hash, a GUID, a code such as INC0012345678. A group glued so at
    # either end is left out when a blank parts it from the rest ("1234.56.782 0A"); a chain
    # glued with no blank between is no number of a person.
    if not _clean_before(text, groups[0][0]):
        if len(groups) < 2 or _gap(text, groups, 1).strip():
            return
        groups = groups[1:]
    if not _clean_after(text, groups[-1][1]):
        if len(groups) < 2 or _gap(text, groups, len(groups) - 1).strip():
            return
        groups = groups[:-1]
    n = len(groups)
    for i in range(n):
        digits = ""
        for j in range(i, min(n, i + 3)):
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > 10:
                break
            if len(digits) not in (9, 10):
                continue
            sizes = tuple(e - s for s, e in groups[i : j + 1])
            gaps = {_gap(text, groups, k) for k in range(i + 1, j + 1)}
            if len(gaps) > 1:
                continue
            sep = next(iter(gaps), "")
            if sep not in ("", " ", "-", ".", "\u2010", "\u2011", "\u2013"):
                continue
            whole = i == 0 and j == n - 1
            # a window inside a longer chain only when the chain around it is spaced
            # ("NHS 943 476 5919 2"), never dotted or hyphenated (versions, UIDs, dates); a
            # dotted window only in an NHS or BSN layout ("943.476.5919 2", "1234.56.782 0")
            if not whole:
                outer = []
                if i > 0:
                    outer.append(_gap(text, groups, i))
                if j < n - 1:
                    outer.append(_gap(text, groups, j + 1))
                if any(g.strip() for g in outer) or (
                        sep == "." and sizes not in ((4, 2, 3), (3, 3, 4))):
                    continue
            start, end = groups[i][0], groups[j][1]
            kind = _classify_number(text, start, end, digits, sizes, sep, whole)
            if kind:
                out.append(Finding(kind, start, end))


_NHS_LAYOUTS = {(3, 3, 4), (6, 4), (10,)}
_BSN_LAYOUTS = {(4, 2, 3), (3, 3, 3), (9,)}


def _classify_number(
    text: str, start: int, end: int, digits: str, sizes: tuple[int, ...], sep: str, whole: bool
) -> str:
    if len(digits) == 10:
        if sizes not in _NHS_LAYOUTS and not whole:
            return ""
        if not _nhs.is_valid(digits):
            return ""
        context = (
            _number_context(text, start, end)
            if sizes == (10,) or sizes not in _NHS_LAYOUTS
            else "ident"
        )
        if context == "tech":
            return ""
        if sizes == (10,) and digits[0] == "1" and context != "ident":
            return ""  # a Unix time (2001-2033) until something says it is a person's number
        chi = _valid_ddmmyy(digits[:6]) and (
            sizes == (6, 4) or bool(_CHI_CONTEXT.search(_before(text, start) + text[end : end + 8]))
        )
        return "chi_number" if chi else "nhs_number"
    # nine digits
    if sizes == (3, 2, 4) and sep in ("-", " ", "\u2010", "\u2011", "\u2013"):
        if _ssn.is_valid(digits) or _itin.is_valid(digits):
            return "ssn"
        return ""
    if sizes not in _BSN_LAYOUTS and not whole:
        return ""
    if sizes == (9,):
        context = _number_context(text, start, end)
        if _SSN_CONTEXT.search(_before(text, start)) and _ssn.is_valid(digits):
            return "ssn"
        if context == "tech":
            return ""
    if _bsn.is_valid(digits):
        return "bsn"
    return ""


# phones: windows of a chain that could be one phone number, checked by phonenumbers' matcher


def _phone_windows(text: str, chain: _Chain) -> Iterator[tuple[int, int, tuple[str, ...], int]]:
    """(start, end, regions, last group index) of plausible phone numbers in ``chain``."""
    groups = chain.groups
    n = len(groups)
    prefix = [0]  # digits before group k
    for gs, ge in groups:
        prefix.append(prefix[-1] + ge - gs)
    for i in range(n):
        s0, e0 = groups[i]
        if e0 - s0 > 17:
            continue  # a run no phone number fits in
        if _date_at(text, groups, i):
            continue  # 01-02-2026 10:22 is a time, not a Rotterdam number
        g = text[s0:e0]
        lead = _char_before(text, s0)
        cumulative = [prefix[j + 1] - prefix[i] for j in range(i, min(n, i + 7))]
        if lead == "+" or (g.startswith("00") and len(g) >= 3 and g[2] != "0"):
            start = s0 - 1 if lead == "+" else s0
            for k in range(len(cumulative) - 1, -1, -1):
                if 8 <= cumulative[k] - (0 if lead == "+" else 2) <= 16:
                    yield start, groups[i + k][1], ("GB",), i + k
                    break
            continue
        if g[0] == "0" and len(g) >= 2 and g[1] != "0":
            start = s0 - 1 if lead == "(" else s0
            for k in range(len(cumulative) - 1, -1, -1):
                if 9 <= cumulative[k] <= 11:
                    regions = ("GB", "NL") if cumulative[k] == 10 else ("GB",)
                    yield start, groups[i + k][1], regions, i + k
            continue
        sizes = tuple(e - s for s, e in groups[i : i + 4])
        if g[0] in "23456789" and (sizes[:3] == (3, 3, 4) or sizes[:2] == (3, 7)):
            yield (
                (s0 - 1 if lead == "(" else s0),
                groups[i + (2 if sizes[:3] == (3, 3, 4) else 1)][1],
                ("US",),
                i + (2 if sizes[:3] == (3, 3, 4) else 1),
            )
        elif g == "1" and sizes[:4] == (1, 3, 3, 4) and text[groups[i + 1][0]] in "23456789":
            yield s0, groups[i + 3][1], ("US",), i + 3
        elif len(g) == 10 and g[0] in "23456789" and _PHONE_CONTEXT.search(_before(text, s0, 32)):
            yield s0, e0, ("US",), i


def _date_at(text: str, groups: list[tuple[int, int]], i: int) -> bool:
    """Groups ``i``, ``i+1``, ``i+2`` read as a day-month-year (or month-day-year) date."""
    if i + 2 >= len(groups):
        return False
    (a0, a1), (b0, b1), (c0, c1) = groups[i : i + 3]
    if not (a1 - a0 <= 2 and b1 - b0 <= 2 and c1 - c0 == 4):
        return False
    sep = text[a1:b0]
    if sep not in ("-", ".", "/") or text[b1:c0] != sep:
        return False
    d, m, y = int(text[a0:a1]), int(text[b0:b1]), int(text[c0:c1])
    return _dmy_ok(d, m, y) or _dmy_ok(m, d, y)


_UK_LAYOUTS = {(5, 6), (4, 3, 4), (3, 4, 4), (5, 3, 3), (4, 7), (3, 8), (11,)}


#: matcher answers by window text, within one call: a thread pasted into a ticket repeats the
#: same numbers, and a repetitive hostile text should not cost a matcher run per repeat
_PhoneCache = dict[tuple[str, tuple[str, ...]], "tuple[int, int] | None"]
_PHONE_CACHE_SIZE = 4096


#: phonenumbers' matcher is slow (a few hundred microseconds a window): one text gets at most
#: this many windows checked by it. Past that, phone-shaped windows are redacted on their
#: shape alone, as "phone_unchecked", which the note names: more redaction, never less.
_PHONE_BUDGET = 1000


@dataclass(slots=True)
class _PhoneState:
    cache: _PhoneCache
    budget: int = _PHONE_BUDGET


def _phones(text: str, chain: _Chain, out: list[Finding], state: _PhoneState) -> None:
    groups = chain.groups
    first = groups[0][0]
    if _wordchar(_char_before(text, first)):
        return  # a letter glued on the left: a code such as INC0012345, not a phone
    technical = bool(_TECH_CONTEXT.search(_before(text, first, 28))) and not _PHONE_CONTEXT.search(
        _before(text, first, 32)
    )
    done_until = -1
    for start, end, regions, last in _phone_windows(text, chain):
        if start < done_until or (technical and start <= first):
            continue  # "build 0102.2026.10", "id 0161 496 0752" (a technical word before it)
        found = _match_phone(text, start, end, regions, state)
        if found == _UNCHECKED:
            s = start + 1 if text[start] == "(" else start
            out.append(Finding("phone_unchecked", s, end))
            done_until = end
            continue
        if found is None and regions != ("US",):
            found = _possible_phone(text, start, end, chain, last)
        if found is not None:
            out.append(Finding("phone", found[0], found[1]))
            done_until = found[1]


_UNCHECKED = (-1, -1)  # what _match_phone says once the budget is spent


def _match_phone(
    text: str, start: int, end: int, regions: tuple[str, ...], state: _PhoneState
) -> tuple[int, int] | None:
    """The phone number the matcher finds in the window, None, or :data:`_UNCHECKED`."""
    # one character of context each side, for the matcher's own "no letter glued on" checks
    ws = start - 1 if start > 0 and not text[start - 1].isdigit() else start
    we = end + 1 if end < len(text) and not text[end].isdigit() else end
    window = text[ws:we]
    key = (window, regions)
    cache = state.cache
    if key in cache:
        hit = cache[key]
        return None if hit is None else (ws + hit[0], ws + hit[1])
    if state.budget <= 0:
        return _UNCHECKED
    state.budget -= 1
    found = None
    for region in regions:
        for m in PhoneNumberMatcher(window, region, leniency=Leniency.VALID):
            found = (m.start, m.end)
            break
        if found:
            break
    if len(cache) >= _PHONE_CACHE_SIZE:
        cache.clear()
    cache[key] = found
    return None if found is None else (ws + found[0], ws + found[1])


def _possible_phone(
    text: str, start: int, end: int, chain: _Chain, last: int
) -> tuple[int, int] | None:
    """A number the metadata calls possible but not valid (Ofcom's drama ranges such as
    07700 900xxx, a new range the metadata lacks): a phone when the words before it say so,
    or, written nationally, when it is laid out as UK numbers are."""
    digits = "".join(c for c in text[start:end] if c.isdigit())
    intl = text[start] == "+" or digits.startswith("00")
    if intl:
        digits = "+" + (digits[2:] if text[start] != "+" else digits)
    try:
        parsed = phonenumbers.parse(digits, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    first = next(k for k, (s, _) in enumerate(chain.groups) if s >= start)
    sizes = tuple(e - s for s, e in chain.groups[first : last + 1])
    named = bool(_PHONE_CONTEXT.search(_before(text, start, 32)))
    if named or (not intl and sizes in _UK_LAYOUTS):
        return (start + 1 if text[start] == "(" else start), end
    return None


# -- labelled identifiers -----------------------------------------------------------------------

_NO = r"(?:no\.?|nr\.?|num(?:ber)?\.?|#|id|identifier|ref(?:erence)?)"
_LABELLED = compile_safe(
    r"(?i)(mrn|m\.r\.n\.?|medical[ \t]+record(?:[ \t]+" + _NO + r")?|"
    r"(?:hosp(?:ital)?\.?|unit|case[ \t]+note|patient|pt\.?|client|member|medicare|medicaid)"
    r"[ \t]*" + _NO + r"|patient[_-]id|"
    r"(?:nhs|chi|h&c|ssn|social[ \t]+security)(?:[ \t]*" + _NO + r")?|"
    r"bsn|burgerservicenummer|sofi(?:nummer)?|pati[e\x{eb}]nt(?:nummer|[ \t-]*(?:id|nr\.?))|"
    r"ziekenhuisnummer)"
    r"[ \t\x{a0}]*(?:is[ \t\x{a0}]+|[:#=\-][ \t\x{a0}]*)?"
    r"([A-Za-z]{0,4}[-/]?[0-9][A-Za-z0-9./-]{0,24}(?:[ \x{a0}][0-9]{1,10}){0,3})"
)


def _label_kind(label: str) -> str:
    lab = label.lower()
    if lab.startswith(("nhs", "h&c")):
        return "nhs_number"
    if lab.startswith("chi"):
        return "chi_number"
    if lab.startswith(("bsn", "burgerservice", "sofi")):
        return "bsn"
    if lab.startswith(("ssn", "social")):
        return "ssn"
    return "record_number"


def _shape(token: str) -> str:
    return "".join("9" if c.isdigit() else "A" if c.isalpha() else c for c in token.upper())


_SIBLING_WINDOW = 48
_SENTENCE_END = (". ", ".\n", ";", "\n", "? ", "! ")


def _labelled(text: str, out: list[Finding]) -> None:
    for m in _LABELLED.finditer(text):
        ls, le = m.span(1)
        if not _clean_before(text, ls):
            continue
        s, e = m.span(2)
        while e > s and text[e - 1] in "./-":
            e -= 1
        value = text[s:e]
        if sum(c.isdigit() for c in value) < 4 or not _clean_after(text, e):
            continue
        kind = _label_kind(text[ls:le])
        out.append(Finding(kind, s, e))
        if kind == "record_number" and " " not in value:
            _siblings(text, e, _shape(value), out)


def _siblings(text: str, pos: int, shape: str, out: list[Finding]) -> None:
    """A second number shaped like a labelled one in the same sentence is one too: "MRN
    4402231 was merged into 4402239", "hospital numbers K123456 and K123457"."""
    window = text[pos : pos + _SIBLING_WINDOW]
    for end_mark in _SENTENCE_END:
        cut = window.find(end_mark)
        if cut != -1:
            window = window[:cut]
    i = 0
    while i < len(window):
        if not window[i].isalnum():
            i += 1
            continue
        j = i
        while j < len(window) and (window[j].isalnum() or window[j] == "-"):
            j += 1
        token = window[i:j].rstrip("-")
        whole = j < len(window) or _clean_after(text, pos + j)  # not cut by the window's end
        if whole and _shape(token) == shape:
            out.append(Finding("record_number", pos + i, pos + i + len(token)))
        i = j


# -- dates of birth -----------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "january": 1, "januari": 1, "feb": 2, "february": 2, "februari": 2, "mar": 3,
    "march": 3, "maart": 3, "mrt": 3, "apr": 4, "april": 4, "may": 5, "mei": 5, "jun": 6,
    "june": 6, "juni": 6, "jul": 7, "july": 7, "juli": 7, "aug": 8, "august": 8, "augustus": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "okt": 10, "oktober": 10,
    "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORD = r"(?:st|nd|rd|th|e|ste|de)?"
# group 1 is the date; the character before it (consumed) keeps long digit runs from yielding
# a candidate every eight digits
_DATES = compile_safe(
    r"(?i)(?:^|[^0-9A-Za-z_])("
    r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4}|[0-9]{2})"  # 03/03/1971, 7/4/62
    r"|([0-9]{4})[/.-]([0-9]{1,2})[/.-]([0-9]{1,2})"  # 1984-03-12
    r"|([0-9]{1,2})" + _ORD + r"(?:[ \t]+of)?[ \t./-]+" + _MONTH + r",?[ \t./-]+([0-9]{4}|[0-9]{2})"
    r"|" + _MONTH + r"[ \t]+([0-9]{1,2})" + _ORD + r",?[ \t]+([0-9]{4})"  # March 3, 1971
    r"|([0-9]{8})"  # 19710303, only with a birth context
    r")"
)
_BIRTH_CONTEXT = compile_safe(
    r"(?i)(?:^|[^a-z])(?:dob|d\.o\.b|date[ \t]+of[ \t]+birth|birth[ \t]*date|birthday|born|"
    r"geboren|geb\.|geboortedatum)(?:[^a-z]|$)"
)
_BIRTH_AFTER = compile_safe(r"(?i)^[ \t]*\(?(?:dob|d\.o\.b)")


def _dmy_ok(day: int, month: int, year: int) -> bool:
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return 1 <= day <= days


def _date_parts(m: Any) -> tuple[int, int, int, bool] | None:
    """(day, month, year, four-digit year) if the candidate is a real calendar date."""
    g = m.groups()[1:]
    if g[0] is not None:
        a, b, y = int(g[0]), int(g[1]), g[2]
        year = int(y)
        ok = _dmy_ok(a, b, year if len(y) == 4 else 2000 + year) or _dmy_ok(
            b, a, year if len(y) == 4 else 2000 + year
        )
        return (a, b, year, len(y) == 4) if ok else None
    if g[3] is not None:
        year, month, day = int(g[3]), int(g[4]), int(g[5])
        return (day, month, year, True) if _dmy_ok(day, month, year) else None
    if g[6] is not None:
        day, month, y = int(g[6]), _MONTHS[g[7].lower()], g[8]
        year = int(y)
        return (
            (day, month, year, len(y) == 4)
            if _dmy_ok(day, month, year if len(y) == 4 else 2000 + year)
            else None
        )
    if g[9] is not None:
        month, day, year = _MONTHS[g[9].lower()], int(g[10]), int(g[11])
        return (day, month, year, True) if _dmy_ok(day, month, year) else None
    d = g[12]
    for year, month, day in (
        (int(d[:4]), int(d[4:6]), int(d[6:])),
        (int(d[4:]), int(d[2:4]), int(d[:2])),
    ):
        if 1880 <= year <= 2100 and _dmy_ok(day, month, year):
            return day, month, year, True
    return None


def _dates(text: str, out: list[Finding]) -> None:
    for m in _DATES.finditer(text):
        s, e = m.span(1)
        if not (_clean_before(text, s) and _clean_after(text, e)):
            continue
        # part of a longer run such as a version 1.2.3.4 or an IP address
        if _char_before(text, s) in "./-" and _char_before(text, s - 1).isdigit():
            continue
        if _char_after(text, e) in "./-" and _char_after(text, e + 1).isdigit():
            continue
        parts = _date_parts(m)
        if parts is None:
            continue
        day, month, year, four = parts
        if four and (year < 1880 or (year, month, day) == (1900, 1, 1)):
            continue  # not a living person's birth date; 1900-01-01 is the usual "unknown"
        birth = bool(
            _BIRTH_CONTEXT.search(_before(text, s, 32)) or _BIRTH_AFTER.search(text[e : e + 12])
        )
        if birth:
            out.append(Finding("date_of_birth", s, e))
        elif four and year < 2000 and m.group(14) is None:
            # a full date before 2000 in a support ticket is almost always someone's birth date
            out.append(Finding("date", s, e))


# -- postcodes and street addresses -------------------------------------------------------------

_UK_AREAS = _words(
    "AB AL B BA BB BD BF BH BL BN BR BS BT BX CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN "
    "DT DY E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA "
    "LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG "
    "SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO ZE"
)
_UK_POSTCODE = compile_safe(r"(?i)([A-Z]{1,2}[0-9][A-Z0-9]?)([ \t\x{a0}]{0,2})([0-9][A-Z]{2})")
_EIRCODE = compile_safe(r"([AC-FHKNPRTV-Y][0-9]{2}|D6W) ([AC-FHKNPRTV-Y0-9]{4})")
_NL_POSTCODE = compile_safe(r"([1-9][0-9]{3})[ \t]?([A-Z]{2})[ \t,]+\p{Lu}\p{Ll}")
_NL_NOT_LETTERS = _words(
    "SA SD SS KB MB GB TB PB HZ MS US NS PX PT EM AM PM OK ID IP UI DB HD TV PC CD VM GT CU SP "
    "HF RC CE BC AD"
)
_US_ZIP = compile_safe(
    r",[ \t]*(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|"
    r"MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)[ \t]+"
    r"([0-9]{5}(?:-[0-9]{4})?)"
)


def _uk_postcode_ok(outward: str, inward: str, space: str) -> bool:
    upper = outward.isupper() and inward[1:].isupper()
    lower = outward.islower() and inward[1:].islower() and bool(space)
    if not (upper or lower):
        return False  # mixed case is a code, not a postcode; lower case only when spaced
    o, i = outward.upper(), inward.upper()
    area = o[:2] if len(o) > 1 and o[1].isalpha() else o[:1]
    if area not in _UK_AREAS:
        return False
    if any(c in "CIKMOV" for c in i[1:]):
        return False
    rest = o[len(area) :]
    # district: 9, 99, 9A (after one letter) or 9A (after two letters)
    if len(rest) == 2 and rest[1].isalpha():
        allowed = "ABCDEFGHJKPSTUW" if len(area) == 1 else "ABEHMNPRVWXY"
        return rest[1] in allowed
    return rest.isdigit()


def _postcodes(text: str, out: list[Finding]) -> None:
    for m in _UK_POSTCODE.finditer(text):
        s, e = m.span()
        if (
            _clean_before(text, s)
            and _clean_after(text, e)
            and _uk_postcode_ok(m.group(1), m.group(3), m.group(2))
        ):
            out.append(Finding("postcode", s, e))
    for m in _EIRCODE.finditer(text):
        s, e = m.span()
        unique = m.group(2)
        if (
            _clean_before(text, s)
            and _clean_after(text, e)
            and any(c.isalpha() for c in unique)
            and any(c.isdigit() for c in unique)
        ):
            out.append(Finding("postcode", s, e))
    for m in _NL_POSTCODE.finditer(text):
        s, e = m.span(1)[0], m.span(2)[1]
        if _clean_before(text, s) and m.group(2) not in _NL_NOT_LETTERS:
            out.append(Finding("postcode", s, e))
    for m in _US_ZIP.finditer(text):
        s, e = m.span(1)
        if _clean_after(text, e):
            out.append(Finding("postcode", s, e))


# A word of a street name: a capital (ASCII, or any letter beyond Latin-1 punctuation) and up
# to 24 more. The class is wider than "letter" on purpose: \p{L} repeated 24 times makes an
# RE2 program of 100k+ instructions, too big for its DFA cache. Python checks the words.
_CAP = r"[A-Z\x{C0}-\x{10FFFF}]"
_NAME_WORD = _CAP + r"[A-Za-z\x{C0}-\x{10FFFF}'-]{0,24}"
_STREET = compile_safe(
    r"([0-9]{1,5}[A-Za-z]?),?[ \t]+((?:" + _NAME_WORD + r"|of|the)\.?[ \t]+){1,4}"
    r"((?i:road|rd|street|st|lane|ln|avenue|ave|drive|close|crescent|cres|way|place|court|"
    r"gardens|gdns|terrace|grove|square|sq|mews|boulevard|blvd|parade))"
)
_NL_SUFFIX = r"(?:straat|laan|weg|plein|gracht|kade|singel|dijk|steeg|dreef|markt|plantsoen)"
_NL_PARTICLE = r"(?:van|de|der|den|het|ter|ten|te|'t)"
_NL_STREET = compile_safe(
    r"((?:"
    + _NAME_WORD
    + r"[ \t]+|"
    + _NL_PARTICLE
    + r"[ \t]+){0,3}"
    + _CAP
    + r"[A-Za-z\x{C0}-\x{10FFFF}-]{1,30}"
    + _NL_SUFFIX
    + r"|(?:Laan|Weg|Plein|Kade|Singel|Dijk|Straat)[ \t]+(?:van|der|de|den|op|in)"
    r"[ \t]+(?:(?:de[rn]?|het)[ \t]+)?" + _NAME_WORD + r")[ \t]+([0-9]{1,5}(?:-?[A-Za-z])?)"
)


_STREET_JOINING_WORDS = _words("of the van de der den het ter ten te 't op in")


def _street_words_ok(words: str) -> bool:
    """Every word capitalised and made of letters (and ' or -), or a small joining word."""
    for w in words.split():
        w = w.rstrip(".")
        if w in _STREET_JOINING_WORDS:
            continue
        core = w.replace("'", "").replace("\u2019", "").replace("-", "")
        if not (core.isalpha() and w[0].isupper()):
            return False
    return True


def _addresses(text: str, out: list[Finding]) -> None:
    for m in _STREET.finditer(text):
        s, e = m.span()
        if (
            _clean_before(text, s)
            and not _char_after(text, e).isalpha()
            and _street_words_ok(m.group(2) + m.group(3).capitalize())
        ):
            out.append(Finding("address", s, e))
    for m in _NL_STREET.finditer(text):
        s, e = m.span()
        if not _clean_before(text, s) or _wordchar(_char_after(text, e)):
            continue
        if not _street_words_ok(m.group(1)):
            continue
        # leading lower-case particles belong to the sentence ("op de Van Goghlaan")
        words = text[s:e].split(" ")
        while words and words[0] in ("van", "de", "der", "den", "het", "ter", "ten", "te", "'t"):
            s += len(words.pop(0)) + 1
        out.append(Finding("address", s, e))


# -- e-mail addresses ---------------------------------------------------------------------------

# unbounded repeats and a wide class for non-ASCII keep the RE2 program small (\p{L} costs
# thousands of instructions each time it is repeated); each match still ends where the address
# does, so the scan stays linear, and Python checks the characters
_EMAIL_CHAR = r"[A-Za-z0-9\x{C0}-\x{10FFFF}"
_EMAIL = compile_safe(
    _EMAIL_CHAR + r"._%+'-]+@" + _EMAIL_CHAR + r"-]+(?:\." + _EMAIL_CHAR + r"-]+)*\."
    r"[A-Za-z\x{C0}-\x{10FFFF}]{2,24}"
)
#: shared mailboxes and service accounts, which name no person
_ROLE_MAILBOXES = _words(
    "noreply no-reply donotreply do-not-reply support servicedesk service-desk helpdesk help "
    "info admin administrator postmaster hostmaster webmaster root git alerts alert monitoring "
    "notifications notification mailer-daemon security abuse itsupport it-support sales billing "
    "enquiries office team ops devops jenkins build ci"
)


def _role_mailbox(address: str) -> bool:
    local = address.split("@", 1)[0].lower()
    return local in _ROLE_MAILBOXES or local.startswith(("svc_", "svc-", "svc."))


def _emails(text: str, out: list[Finding]) -> None:
    for m in _EMAIL.finditer(text):
        s, e = m.span()
        at = text.index("@", s, e)
        # the local part starts after anything that cannot be in one (a typographic space...)
        for k in range(at - 1, s - 1, -1):
            if not (text[k].isalnum() or text[k] in "._%+'-"):
                s = k + 1
                break
        while s < at and text[s] in ".'-":
            s += 1
        domain = text[at + 1 : e]
        if s == at or not all(c.isalnum() or c in ".-" for c in domain):
            continue
        if _clean_after(text, e) and not _role_mailbox(text[s:e]):
            out.append(Finding("email", s, e))


# -- names --------------------------------------------------------------------------------------

#: titles, case by case: "ms" is milliseconds and "MS" Microsoft, "DR" a disaster-recovery
#: site and "MR" an MRI modality, so those forms are not titles (or need a name after them)
_TITLES = (
    "Mr|MR|mr|Mrs|MRS|mrs|Ms|Miss|MISS|Mx|MX|mx|Dr|DR|dr|Prof|PROF|prof|Professor|Sir|SIR|Dame|"
    "Lady|Lord|Rev|Revd|Dhr|DHR|dhr|Mevr|MEVR|mevr|Mw|mw|Mevrouw|MEVROUW|mevrouw|Meneer|MENEER|"
    "meneer|Mej|mej|Herr|Frau|Mme|Mlle"
)
#: titles after which a name may be written in lower case ("mrs jane doe"); Dutch ones are
#: left out: "bel mevrouw terug" is a sentence, and Dutch names keep their capitals
_LOWER_NAME_TITLES = _words("mr mrs miss mx")
# Three trigger patterns without capture groups: the RE2 binding spends more per match on
# groups than on the match itself, and "Mr Mr Mr ..." is a match every three characters.
_TITLE_TRIGGER = compile_safe(r"(?:" + _TITLES + r")\.?[ \t\x{a0}]+")
_PATIENT_TRIGGER = compile_safe(
    r"(?i:(?:the[ \t]+)?(?:patient|pati\x{eb}nt|pati\x{eb}nte)(?:'s|\x{2019}s)?"
    r"(?:[ \t]+(?:name|called|named))?(?:[ \t]+(?:is|was))?)[ \t]*[:,-]?[ \t\x{a0}]+"
)
_LABEL_TRIGGER = compile_safe(
    r"(?i:(?:pt|client|cli\x{eb}nt)\.?[ \t]*(?:name)?|name[ \t]+of[ \t]+(?:the[ \t]+)?patient|"
    r"(?:sur|fore|first[ \t]*|last[ \t]*|given[ \t]*|family[ \t]*|full[ \t]*)name|"
    r"patient[ \t]*name|naam(?:[ \t]+pati\x{eb}nt)?|pati\x{eb}ntnaam|achternaam|voornaam)"
    r"[ \t]*:[ \t\x{a0}]*"
)
_PARTICLES = _words(
    "van der den de del della dos das da di du la le von zu ter ten te 't bin ibn ben ap y"
)
_PARTICLE_PAIRS = frozenset(("in", "op"))  # only before "'t", "het", "de", "den", "der"
_TITLE_WORDS = frozenset(t.lower() for t in _TITLES.split("|"))

# Words that end a name or show that the capitalised word after "patient" is not one. They
# matter most for all-caps and Title Case text ("PATIENT LIST NOT UPDATING", "Patient Record
# Viewer crashes"), where capitals say nothing.
_STOP_WORDS = _words(
    """
    a an the and or but nor so yet for of in on at to from by with without within into onto over
    under about after before since until via per as than then that this these those there here
    where when which who whom whose what why how it its he she they we you i me him her them us
    his hers their our your my is are was were be been being am has have had having do does did
    done can cannot can't could will would shall should may might must not no yes all any some
    none each every both either neither other another same such only also just still again even
    very too more most less least many much few several new old first last next previous own up
    down out off if else because while though although whether unless once twice please thanks
    thank hi hello dear regards ok okay now today yesterday tomorrow already
    called calls call rang rings ring phoned phones emailed emails said says say asked asks ask
    reported reports report states stated wants wanted needs needed came comes went goes left
    leaves arrived arrives attended attends presented died lives lived moved moves shows showed
    shown show appears appeared sees seen saw gets got gave given takes took taken made makes
    uses used using couldn't doesn't didn't isn't wasn't won't hasn't haven't complains
    complained confirmed confirms requested requests received receives sent sends booked books
    cancelled canceled missed misses waiting waits logged logs login log opened opens open closed
    close fails failed fail failing works worked work working loads loaded load loading crashes
    crashed crash prints printed print displays displayed display listed lists list filed files
    merged merge unmerged duplicated duplicate transferred transfer discharged discharge admitted
    admit registered register deceased belonged belongs not
    record records safety portal banner summary details detail demographics demographic search
    lookup index id ids identifier identifiers number numbers name names data information info
    flow tracker tracking timeline chart charts notes note letter letters merges registration
    administration admin management master transfers booking bookings appointment appointments
    alert alerts allergy allergies medication medications medicine medicines care access level
    type status screen view viewer form forms header context selector picker matching matches
    hub app application api service services module table queue feed feeds export import reports
    reporting dashboard experience engagement facing satisfaction survey consent preferences
    pathway pathways journey episode episodes encounter encounters visit visits admission
    admissions attendance attendances referral referrals result results observation observations
    vitals monitor monitoring wristband wristbands label labels barcode photo image images
    document documents file folder history profile account accounts self check kiosk arrivals
    ward wards bed beds location locations movement movements group groups cohort population
    count volume zero incident incidents risk harm event events nhs chi bsn ssn mrn dob tel phone
    mobile email e-mail address postcode gp team staff user users system systems test testing
    training live train demo environment server database site sites field fields column columns
    row rows page pages tab tabs button menu window dialog error errors issue issues problem
    problems ticket tickets case cases unknown anonymous anon null n/a na undefined male female
    adult child baby infant neonate newborn inpatient outpatient outpatients inpatients emergency
    icu theatre theatres clinic clinics lab labs pharmacy radiology imaging pathology x-ray xray
    ct mri ultrasound ecg brain head neck knee spine chest abdomen pelvis hip shoulder ankle wrist
    cardiac heart liver breast prostate angio scan scans scanner contrast protocol protocols
    series sequence study studies exam exams examination order orders request specimen sample
    samples prescription prescriptions dose doses dosing drug drugs diet therapy treatment plan
    plans assessment assessments triage handover transport ambulance follow-up followup recall
    recalls reminder reminders message messages sms text contact contacts relative relatives
    carer carers kin family mother father son daughter wife husband partner parent parents
    guardian consultant doctor nurse clinician surgeon physician practitioner provider identity
    identification verification tracing pds scr ehr emr epr pas ris pacs lims hl7 fhir dicom mpi
    adt ui api url
    het een en met voor naar bij uit aan om door onder zijn waren heeft hebben kan kon wil wordt
    werd niet geen wel ook nog staat stond belde belt kreeg krijgt woont woonde gaat ging komt
    kwam zegt zei vraagt vroeg dossier gegevens lijst nummer naam adres afspraak uitslag uitslagen
    opname afdeling huisarts portaal verkeerde dubbel onbekend
    patient patients patiënt patiënte patiënten patienten cliënt cliënten clients
    """
)
_MAX_NAME_WORDS = 5
_FIELD_LABELS = _words(
    "forename surname firstname lastname given family full middle title voornaam achternaam "
    "tussenvoegsel geboortedatum roepnaam"
)
_PUNCT_END = ',;:)]}!?"\u201d'


def _name_token_kind(tok: str) -> str:
    """``"cap"`` (Capitalised or CAPS), ``"initial"`` (J. or A.B.), ``"lower"`` or ``""``."""
    core = tok.replace("'", "").replace("\u2019", "").replace("-", "")
    if not core:
        return ""
    if all(c.isalpha() or c == "." for c in core) and core[0].isupper() and "." in core:
        letters = core.replace(".", "")
        if letters.isupper() and 1 <= len(letters) <= 3 and core.endswith("."):
            return "initial"
        return ""
    if not all(c.isalpha() for c in core):
        return ""
    if tok[0].isupper():
        return "cap"
    if tok.islower():
        return "lower"
    if tok[0] in "'\u2019" and len(tok) > 1:  # 't
        return "lower"
    return ""


def _name_after(
    text: str, pos: int, *, allow_lower: bool, stop_first: bool, caps_acronyms: bool
) -> tuple[int, int] | None:
    """The name starting at ``text[pos]``, if the words there read as one."""
    stop = text.find("\n", pos, pos + 200)
    chunk = text[pos : stop if stop != -1 else pos + 200]
    offset = pos
    words: list[tuple[int, int, str]] = []  # (start, end, kind)
    i = 0
    lower_mode: bool | None = None
    while i < len(chunk) and sum(1 for w in words if w[2] != "particle") < _MAX_NAME_WORDS:
        j = i
        while j < len(chunk) and chunk[j] not in " \t\u00a0":
            j += 1
        raw = chunk[i:j]
        tok = raw
        end_here = False
        comma = False
        while tok and tok[-1] in _PUNCT_END:
            comma = comma or tok[-1] == ","
            end_here = True
            tok = tok[:-1]
        if tok.endswith(("'s", "\u2019s")) and len(tok) > 2:
            tok = tok[:-2]
            end_here = True
        if raw.endswith(":") and (tok.lower() in _STOP_WORDS or tok.lower() in _FIELD_LABELS):
            break  # the next field's label ("Surname: SMITH, Forename: John")
        if tok.endswith(".") and _name_token_kind(tok) != "initial":
            tok = tok[:-1]
            end_here = True
        kind = _name_token_kind(tok)
        low = tok.lower()
        is_first = not any(w[2] != "particle" for w in words)
        particle = low in _PARTICLES or (
            low in _PARTICLE_PAIRS and _next_word(chunk, j) in ("'t", "het", "de", "den", "der")
        )
        if particle and kind in ("lower", "cap") and not end_here and tok.islower():
            words.append((offset + i, offset + i + len(tok), "particle"))
            i = _skip_spaces(chunk, j)
            continue
        if low in _TITLE_WORDS and kind != "initial":
            break
        if kind == "lower":
            if not allow_lower or lower_mode is False or low in _STOP_WORDS:
                break
            if sum(1 for w in words if w[2] == "lower") >= 3:
                break
            lower_mode = True
        elif kind == "cap":
            if lower_mode:
                break
            if (not is_first or stop_first) and low in _STOP_WORDS:
                break
            if caps_acronyms and is_first and tok.isupper() and len(tok) <= 3:
                break
            lower_mode = False
        elif kind == "initial":
            lower_mode = False
        else:
            break
        words.append((offset + i, offset + i + len(tok), kind))
        if comma and sum(1 for w in words if w[2] != "particle") == 1 and kind == "cap":
            # "SMITH, John": one more capitalised word after the comma
            k = _skip_spaces(chunk, j)
            nxt = chunk[k:].split(" ", 1)[0].rstrip(_PUNCT_END + ".")
            if (
                nxt
                and _name_token_kind(nxt) == "cap"
                and nxt.lower() not in _STOP_WORDS
                and nxt.lower() not in _TITLE_WORDS
            ):
                i = k
                continue
            break
        if end_here:
            break
        i = _skip_spaces(chunk, j)
        if i == j or i - j > 2:
            break
    while words and words[-1][2] == "particle":
        words.pop()
    if not words:
        return None
    return words[0][0], words[-1][1]


def _skip_spaces(chunk: str, j: int) -> int:
    k = j
    while k < len(chunk) and chunk[k] in " \t\u00a0":
        k += 1
    return k


def _next_word(chunk: str, j: int) -> str:
    k = _skip_spaces(chunk, j)
    e = k
    while e < len(chunk) and chunk[e] not in " \t\u00a0":
        e += 1
    return chunk[k:e].lower()


def _names(text: str, out: list[Finding]) -> None:
    found_names: list[Finding] = []

    def add(found: tuple[int, int] | None) -> None:
        if found is not None:
            found_names.append(Finding("name", *found))

    for m in _TITLE_TRIGGER.finditer(text):
        s, e = m.span()
        if _clean_before(text, s):
            title = text[s:e].rstrip(" \t\u00a0").rstrip(".")
            add(
                _name_after(
                    text,
                    e,
                    allow_lower=title.lower() in _LOWER_NAME_TITLES and title.islower(),
                    stop_first=title.isupper() and len(title) > 1,
                    caps_acronyms=False,
                )
            )
    for m in _PATIENT_TRIGGER.finditer(text):
        s, e = m.span()
        if _clean_before(text, s):
            said = text[s:e].rstrip(" \t\u00a0")
            word = said.rstrip(":,-").rstrip(" \t")
            add(
                _name_after(
                    text,
                    e,
                    allow_lower=said.endswith(":"),
                    stop_first=True,
                    caps_acronyms=not word.isupper(),
                )
            )
    for m in _LABEL_TRIGGER.finditer(text):
        s, e = m.span()
        if _clean_before(text, s):
            add(_name_after(text, e, allow_lower=True, stop_first=True, caps_acronyms=False))
    out += found_names
    if found_names:
        _name_elsewhere(text, found_names, out)


#: the other mentions of at most this many distinct name words are looked for (one RE2 pass
#: over the text with their alternation); names past that are still redacted where detected
_MAX_PROPAGATED_WORDS = 64


def _name_elsewhere(text: str, names: list[Finding], out: list[Finding]) -> None:
    """The words of a detected name wherever else they occur in the text, as written or in
    capitals ("Ms Li asked why her name is shown as LI")."""
    words: dict[str, None] = {}
    for f in names:
        for w in text[f.start : f.end].replace(",", " ").split():
            w = w.strip(".")
            low = w.lower()
            if (
                len(w) >= 2
                and low not in _PARTICLES
                and low not in _STOP_WORDS
                and low not in _TITLE_WORDS
                and all(c.isalpha() or c in "'\u2019-" for c in w)
            ):
                words[w] = None
                words[w.upper()] = None
        if len(words) >= 2 * _MAX_PROPAGATED_WORDS:
            break
    if not words:
        return
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    try:
        rx = compile_safe(alternation)
    except RegexError:  # longer than a pattern may be: leave it to the first detection
        return
    found = _Cover((f.start, f.end) for f in names)
    for m in rx.finditer(text):
        s, e = m.span()
        if not (_clean_after(text, e) or text.startswith(("'s", "\u2019s"), e)):
            continue
        if not found.covers(s, e) and _clean_before(text, s):
            out.append(Finding("name", s, e))


# -- HL7 v2 segments pasted into tickets --------------------------------------------------------

_HL7_SEGMENT = compile_safe(r"(PID|NK1|GT1|IN1|MRG)\|([^\r\n]*)")
#: segment -> {field number: kind} for the fields that identify a person
_HL7_FIELDS: dict[str, dict[int, str]] = {
    "PID": {2: "record_number", 3: "record_number", 4: "record_number", 5: "name", 6: "name",
            7: "date_of_birth", 9: "name", 11: "address", 13: "phone", 14: "phone",
            18: "record_number", 19: "ssn", 20: "record_number", 21: "record_number", 23: "address"},
    "NK1": {2: "name", 4: "address", 5: "phone", 6: "phone", 30: "name", 31: "phone",
            32: "address", 33: "record_number", 37: "ssn"},
    "GT1": {2: "record_number", 3: "name", 5: "address", 6: "phone", 7: "phone",
            8: "date_of_birth", 12: "ssn"},
    "IN1": {16: "name", 18: "date_of_birth", 19: "address", 36: "record_number",
            49: "record_number"},
    "MRG": {1: "record_number", 2: "record_number", 3: "record_number", 4: "record_number",
            7: "name"},
}  # fmt: skip


def _hl7(text: str, out: list[Finding]) -> None:
    for m in _HL7_SEGMENT.finditer(text):
        s = m.start()
        if s > 0 and text[s - 1].isalnum():
            continue
        fields = _HL7_FIELDS[m.group(1)]
        pos = m.start(2)
        body = m.group(2)
        for number, value in enumerate(body.split("|"), start=1):
            kind = fields.get(number)
            stripped = value.strip()
            if kind and stripped.strip("^~&") and stripped not in ('""', REDACTED):
                lead = len(value) - len(value.lstrip())
                out.append(Finding(kind, pos + lead, pos + lead + len(stripped)))
            pos += len(value) + 1


# -- the public API -----------------------------------------------------------------------------

_SURROGATES = dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)


def safe_text(text: str) -> str:
    """``text`` with lone surrogates (which JSON can carry, and which RE2's UTF-8 cannot) as
    U+FFFD, one character for one, so every position stays where it was."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.translate(_SURROGATES)
    return text


def find_identifiers(text: str) -> list[Finding]:
    """Every identifier detected in ``text``, sorted by position.

    Findings may overlap (a number can be both a valid NHS number and a valid phone number);
    :func:`redact` merges them. Never raises on any ``str``; time is linear in ``len(text)``.
    """
    text = safe_text(text)
    out: list[Finding] = []
    phones = _PhoneState(cache={}, budget=_PHONE_BUDGET)
    for chain in _chains(text):
        _id_numbers(text, chain, out)
        _phones(text, chain, out, phones)
    _labelled(text, out)
    _dates(text, out)
    _postcodes(text, out)
    _addresses(text, out)
    _emails(text, out)
    _names(text, out)
    _hl7(text, out)
    return _dedupe(out)


#: when findings overlap, the stronger evidence names the span: a check digit beats phone
#: metadata, which beats a label, which beats the shape of a date
_PRIORITY = {k: i for i, k in enumerate(
    ("nhs_number", "chi_number", "bsn", "ssn", "phone", "email", "record_number",
     "date_of_birth", "postcode", "address", "name", "date", "phone_unchecked", "policy")
)}  # fmt: skip
_CHECKED = frozenset(("nhs_number", "chi_number", "bsn", "ssn"))


def _dedupe(found: list[Finding]) -> list[Finding]:
    """One finding per span, and no phone inside a number whose check digit already said what
    it is (a valid NHS number is often a valid US phone number too)."""
    best: dict[tuple[int, int], Finding] = {}
    for f in found:
        if f.end <= f.start:
            continue
        old = best.get((f.start, f.end))
        if old is None or _PRIORITY.get(f.kind, 99) < _PRIORITY.get(old.kind, 99):
            best[(f.start, f.end)] = f
    ordered = sorted(best.values(), key=lambda f: (f.start, -f.end, f.kind))
    checked = _Cover((f.start, f.end) for f in ordered if f.kind in _CHECKED)
    return [
        f
        for f in ordered
        if not (f.kind in ("phone", "phone_unchecked") and checked.covers(f.start, f.end))
    ]


class _Cover:
    """Whether a span lies inside one of ``spans``, asked in order of start: one sweep."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        self.spans = sorted(spans)
        self.i = 0
        self.reach = -1  # the furthest end of the spans starting at or before the last query

    def covers(self, start: int, end: int) -> bool:
        while self.i < len(self.spans) and self.spans[self.i][0] <= start:
            self.reach = max(self.reach, self.spans[self.i][1])
            self.i += 1
        return self.reach >= end


def _extra_findings(text: str, extra: Iterable[ExtraPattern]) -> list[Finding]:
    found = []
    for rx in extra:
        for m in rx.finditer(text):
            if m.end() > m.start():
                found.append(Finding("policy", m.start(), m.end()))
    return found


def _apply(text: str, findings: list[Finding]) -> str:
    if not findings:
        return text
    spans = sorted((f.start, f.end) for f in findings)
    parts = []
    last = 0
    cur_s, cur_e = spans[0]
    for s, e in spans[1:]:
        if s <= cur_e:
            cur_e = max(cur_e, e)
            continue
        parts += [text[last:cur_s], REDACTED]
        last = cur_e
        cur_s, cur_e = s, e
    parts += [text[last:cur_s], REDACTED, text[cur_e:]]
    return "".join(parts)


#: redaction repeats on its own output until nothing more is found, at most this many times
_MAX_PASSES = 4


def redact_with_findings(
    text: str, extra: Iterable[ExtraPattern] = ()
) -> tuple[str, list[Finding]]:
    """``text`` with every identifier replaced by ``[redacted]``, and the findings of the
    first pass (on ``text`` itself). Lone surrogates come out as U+FFFD (:func:`safe_text`)."""
    text = safe_text(text)
    extra = tuple(extra)
    first: list[Finding] | None = None
    for _ in range(_MAX_PASSES):
        findings = find_identifiers(text) + _extra_findings(text, extra)
        if first is None:
            first = findings
        new = _apply(text, findings)
        if new == text:
            break
        text = new
    return text, first or []


def redact(text: str, extra: Iterable[ExtraPattern] = ()) -> str:
    """``text`` with every detected identifier, and every match of the ``extra`` patterns
    (a policy's ``kb.redact``), replaced by ``[redacted]``."""
    return redact_with_findings(text, extra)[0]


# -- the second opinion -------------------------------------------------------------------------

_RESIDUAL_DIGITS = compile_safe(r"[0-9]{7,}")
_RESIDUAL_GROUPS = compile_safe(r"[0-9]{1,6}(?:[ \x{a0}-][0-9]{1,6}){2,}")
_RESIDUAL_DOTTED = compile_safe(
    r"[0-9]{3}\.[0-9]{3}\.[0-9]{4}|[0-9]{4}\.[0-9]{2}\.[0-9]{3}|[0-9]{3}\.[0-9]{3}\.[0-9]{3}"
)
_RESIDUAL_POSTCODE = compile_safe(r"(?i)[A-Z]{1,2}[0-9][A-Z0-9]?[ \t]?[0-9][A-Z]{2}")
_RESIDUAL_EMAIL = compile_safe(r"[^\s@]+@[^\s@]+\.[A-Za-z\x{C0}-\x{10FFFF}]{2,24}")
_RESIDUAL_BIRTH = compile_safe(
    r"(?i)(?:^|[^a-z])(?:dob|d\.o\.b|date[ \t]+of[ \t]+birth|born|geboren)[^\n0-9]{0,16}[0-9]"
)
_ISO_START = compile_safe(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


def residual_kinds(text: str) -> list[str]:
    """What identifier-like text is left in ``text`` (already redacted), by a cruder test
    than :func:`find_identifiers`: long digit runs, postcode and e-mail shapes, a birth word
    followed by digits. An empty list means the check found nothing; never the data itself."""
    text = safe_text(text)
    kinds: list[str] = []
    if _RESIDUAL_DIGITS.search(text) or _RESIDUAL_DOTTED.search(text):
        kinds.append("long number")
    else:
        for m in _RESIDUAL_GROUPS.finditer(text):
            run = m.group()
            if sum(c.isdigit() for c in run) >= 9 and not _ISO_START.search(run):
                kinds.append("long number")
                break
    for m in _RESIDUAL_POSTCODE.finditer(text):
        s, e = m.span()
        if _clean_before(text, s) and _clean_after(text, e) and any(c.isupper() for c in m.group()):
            kinds.append("postcode-shaped text")
            break
    for m in _RESIDUAL_EMAIL.finditer(text):
        if not _role_mailbox(m.group()):
            kinds.append("e-mail-shaped text")
            break
    if _RESIDUAL_BIRTH.search(text):
        kinds.append("digits after a birth word")
    return kinds
