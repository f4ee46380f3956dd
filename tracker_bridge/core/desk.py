"""The source documents' desk rules, evaluated with the clocks (docs/semantics.md, "Desk rules").

Each rule is off unless the policy names it, and costs nothing then. Each adds owned labels
(under the policy's label prefix) and notes with stable keys, posted once per ticket by the
sync layer. Pure: no I/O, the instant ``now`` comes in from the engine.

- ``patient_data``: the ticket's own subject, description and public comments are read by
  the KB redaction's detector (:func:`~.redact.find_identifiers`, plus the policy's
  ``kb.redact`` patterns); where something is found the ticket gets ``<prefix>phi-detected``
  and one internal note per place (``phi:subject``, ``phi:description``, ``phi:comment-N``)
  naming the place and the kinds of data found, never the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from .marker import NOTE_MARKER_RE
from .policy import Policy
from .redact import KIND_LABELS, find_identifiers, safe_text
from .ticket import Ticket
from .verdict import Note

#: texts whose detection result is kept (a text seen again costs one dict lookup); past this
#: many the memo is emptied
PHI_MEMO_LIMIT = 4096
#: every note marker starts so (the bridge's own notes are not customer text)
_MARKER_START = "[tracker-bridge:note="


class PhiChecker:
    """Finds the kinds of patient-identifiable data in a text, remembering texts seen.

    The engine is pure but a policy's compiled form lives as long as the policy: a ticket
    evaluated again with its text unchanged (every sync cycle) costs a lookup, not a scan.
    """

    __slots__ = ("extra", "memo")

    def __init__(self, extra: Sequence[Any] = ()) -> None:
        self.extra = tuple(extra)
        self.memo: dict[str, tuple[str, ...]] = {}

    def kinds(self, text: str) -> tuple[str, ...]:
        """The kinds found in ``text`` (``KIND_LABELS`` names, first found first); ``()``."""
        if not text:
            return ()
        found = self.memo.get(text)
        if found is None:
            clean = safe_text(text)
            out: list[str] = []
            for f in find_identifiers(clean):
                label = KIND_LABELS.get(f.kind, f.kind)
                if label not in out:
                    out.append(label)
            for rx in self.extra:
                if rx.search(clean) is not None:
                    out.append(KIND_LABELS["policy"])
                    break
            found = tuple(out)
            if len(self.memo) >= PHI_MEMO_LIMIT:
                self.memo.clear()
            self.memo[text] = found
        return found


def phi_places(
    policy: Policy, checker: PhiChecker, ticket: Ticket, ats: Sequence[int], now_us: int,
    local: Any,
) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(note key, where in words, kinds)`` of each place holding patient data at ``now``.

    Comments are numbered as the ticket's comments in order (private ones counted too, so a
    number never changes when one is made private); only public ones are read, the bridge's
    own notes never."""
    pd = policy.patient_data
    assert pd is not None
    out: list[tuple[str, str, tuple[str, ...]]] = []
    if pd.subject and (kinds := checker.kinds(ticket.subject)):
        out.append(("phi:subject", "the subject", kinds))
    if pd.description and (kinds := checker.kinds(ticket.description)):
        out.append(("phi:description", "the description", kinds))
    if pd.comments:
        n = 0
        for ev, at in zip(ticket.history, ats, strict=True):
            if ev.kind != "comment" or at > now_us:
                continue
            n += 1
            text = ev.text
            if not ev.public or not text:
                continue
            if _MARKER_START in text and NOTE_MARKER_RE.search(text):
                continue
            if kinds := checker.kinds(text):
                by = f"by {ev.by}, " if ev.by else ""
                out.append((f"phi:comment-{n}", f"comment {n} ({by}{local(at)})", kinds))
    return out


def phi_text(where: str, kinds: tuple[str, ...]) -> str:
    return (
        f"Patient-identifiable data in this ticket: {where} appears to hold "
        f"{', '.join(kinds)}. Support records must not carry patient-identifiable data: "
        "please remove it there (this note does not repeat it); the label goes once it is "
        "gone. This note is for support staff."
    )


def phi_notes(places: Sequence[tuple[str, str, tuple[str, ...]]]) -> list[Note]:
    return [Note.later(key, partial(phi_text, where, kinds), internal=True)
            for key, where, kinds in places]
