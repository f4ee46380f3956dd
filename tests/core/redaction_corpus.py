"""Scores the redaction against the labelled corpus in tests/core/data/redaction/.

Used by tests/core/test_redaction.py (which holds the detector to its figures) and by
benchmarks/redaction_bench.py (which prints them). See the corpus README for its format.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracker_bridge.core.redact import Finding, find_identifiers, redact

DATA = Path(__file__).resolve().parent / "data" / "redaction"
IDENTIFIERS = DATA / "identifiers.jsonl"
TECHNICAL = DATA / "technical.jsonl"


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def occurrences(text: str, sub: str) -> list[tuple[int, int]]:
    """Every whole-word occurrence of ``sub`` in ``text``."""
    spans = []
    i = text.find(sub)
    while i >= 0:
        j = i + len(sub)
        glued_left = i > 0 and text[i - 1].isalnum() and sub[0].isalnum()
        glued_right = j < len(text) and text[j].isalnum() and sub[-1].isalnum()
        if not (glued_left or glued_right):
            spans.append((i, j))
        i = text.find(sub, i + 1)
    return spans


@dataclass
class Miss:
    kind: str
    identifier: str
    redacted: str


@dataclass
class Changed:
    text: str
    redacted: str
    kinds: list[str]
    category: str
    accepted: str | None


@dataclass
class Score:
    found: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)
    misses: list[Miss] = field(default_factory=list)
    identifier_lines: int = 0
    #: redacted words of identifier lines that are no part of a marked identifier
    over_redacted: list[tuple[str, str]] = field(default_factory=list)
    technical_lines: int = 0
    accepted_lines: int = 0
    changed: list[Changed] = field(default_factory=list)
    #: technical lines per finding kind that fired on them
    fp_kinds: Counter = field(default_factory=Counter)

    @property
    def recall(self) -> float:
        return sum(self.found.values()) / max(1, sum(self.total.values()))

    @property
    def false_positives(self) -> list[Changed]:
        """Technical lines changed, leaving out the documented by-design redactions."""
        return [c for c in self.changed if c.accepted is None]

    @property
    def fp_rate(self) -> float:
        return len(self.false_positives) / max(1, self.technical_lines - self.accepted_lines)


def covered(text: str, findings: list[Finding]) -> list[bool]:
    mask = [False] * len(text)
    for f in findings:
        for i in range(f.start, f.end):
            mask[i] = True
    return mask


def score(
    detect: Callable[[str], list[Finding]] = find_identifiers,
    scrub: Callable[[str], str] = redact,
) -> Score:
    """An identifier counts as removed when every letter and digit of it lies in a detected
    span and its text no longer appears in the redacted line; a technical line is a false
    positive when redaction changes it at all."""
    sc = Score()
    for row in load(IDENTIFIERS):
        text = row["text"]
        sc.identifier_lines += 1
        findings = detect(text)
        mask = covered(text, findings)
        out = scrub(text)
        marked = [False] * len(text)
        for kind, ident in row["ids"]:
            for a, b in occurrences(text, ident):
                sc.total[kind] += 1
                for i in range(a, b):
                    marked[i] = True
                ok = all(mask[i] for i in range(a, b) if text[i].isalnum())
                if ok and not occurrences(out, ident):
                    sc.found[kind] += 1
                else:
                    sc.misses.append(Miss(kind, ident, out))
        extra = "".join(c if mask[i] and not marked[i] else " " for i, c in enumerate(text))
        for word in extra.split():
            if any(c.isalnum() for c in word):
                sc.over_redacted.append((word, out))
    for row in load(TECHNICAL):
        text = row["text"]
        sc.technical_lines += 1
        accepted = row.get("accepted_redaction")
        if accepted:
            sc.accepted_lines += 1
        out = scrub(text)
        if out != text:
            kinds = sorted({f.kind for f in detect(text)})
            sc.changed.append(Changed(text, out, kinds, row["category"], accepted))
            if not accepted:
                for k in kinds:
                    sc.fp_kinds[k] += 1
    return sc


#: corpus kinds -> the finding kinds that count as detecting them (for per-kind FP figures)
CORPUS_KINDS = {
    "nhs": "nhs_number",
    "chi": "chi_number",
    "bsn": "bsn",
    "ssn": "ssn",
    "record_no": "record_number",
    "dob": "date_of_birth",
    "postcode": "postcode",
    "address": "address",
    "phone": "phone",
    "email": "email",
    "name": "name",
}
