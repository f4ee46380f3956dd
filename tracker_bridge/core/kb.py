"""KB-ready resolution notes, with patient data redacted.

The source handbooks ask for a knowledge-base entry for every resolved problem (problem,
related solution, reproducible steps, resolution/workaround) and forbid patient-identifiable
data in support records. The note is built from the ticket alone and every free text in it
goes through :func:`redact` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .ticket import Ticket
from .verdict import NOTE_MARKER_RE

REDACTED = "[redacted]"

#: built-in patterns for patient-identifiable data, applied in this order
BUILTIN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "labelled identifier",
        re.compile(
            r"(?i)\b(?:mrn|hospital\s+(?:no|number)|patient\s+(?:id|no|number)|nhs\s+(?:no|number)|"
            r"chi\s+(?:no|number)|medical\s+record\s+(?:no|number))\b\.?[\s:#]*[A-Za-z0-9][A-Za-z0-9 -]*\d"
        ),
    ),
    (
        "date of birth",
        re.compile(
            r"(?i)\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|born(?:\s+on)?)\b[\s:]*"
            r"(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}\s+[A-Za-z]{3,9}\s+\d{2,4})"
        ),
    ),
    ("email address", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("NHS number", re.compile(r"\b\d{3}[ -]?\d{3}[ -]?\d{4}\b")),
    ("phone number", re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s-]?|0)\d(?:[\s-]?\d){8,12}\b")),
    ("calendar date", re.compile(r"\b\d{1,2}[/.]\d{1,2}[/.](?:19|20)\d{2}\b")),
    (
        "patient name",
        re.compile(
            r"\b(?:[Pp]atient(?:'s)?(?:\s+name)?|[Nn]ame\s+of\s+patient)\s*[:\-]?\s*"
            r"[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)?"
        ),
    ),
    (
        "titled name",
        re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)?"),
    ),
)


def redact(text: str, extra: Iterable[re.Pattern[str]] = ()) -> str:
    """``text`` with every match of the built-in and ``extra`` patterns replaced."""
    for _, rx in BUILTIN_PATTERNS:
        text = rx.sub(REDACTED, text)
    for rx in extra:
        text = rx.sub(REDACTED, text)
    return text


_STEPS = re.compile(r"(?is)steps\s+to\s+reproduce\s*:?\s*(.+)")


def _steps(description: str) -> str:
    m = _STEPS.search(description)
    return (m.group(1) if m else description).strip()


def kb_note(
    ticket: Ticket,
    *,
    class_: str,
    plan: str,
    resolved_at_text: str,
    sla_lines: Sequence[str],
    extra_redact: Iterable[re.Pattern[str]] = (),
    until: float | None = None,
) -> str:
    """The KB-ready note for a resolved ticket (plain text, tracker-neutral)."""
    extra = tuple(extra_redact)
    fields = ticket.fields
    # The fix or workaround: the last public comment by support (not the reporter, not one
    # of the bridge's own notes) up to ``until``. Comments written just after the status
    # change count too: people often resolve first and explain second.
    solution = None
    for ev in ticket.history:
        if until is not None and ev.at.timestamp() > until:
            break
        if (
            ev.kind == "comment"
            and ev.public
            and ev.text
            and ev.by != ticket.reporter
            and not NOTE_MARKER_RE.search(ev.text)
        ):
            solution = ev.text.strip() or solution
    context = ", ".join(f"{k} {fields[k]}" for k in ("component", "version") if fields.get(k))
    lines = [
        "KB-ready resolution note",
        "",
        f"Problem: {redact(ticket.subject, extra) or '(no subject)'}",
        f"Classification: {class_} (plan {plan}){'; ' + redact(context, extra) if context else ''}",
        "",
        "Reproducible steps:",
        redact(_steps(ticket.description), extra) or "(not recorded)",
        "",
        "Resolution / workaround:",
        redact(solution, extra) if solution else "(not recorded: add the fix or workaround here)",
        "",
        f"Related solution: {redact(fields.get('related') or '', extra) or '(none recorded)'}",
        f"Resolved: {resolved_at_text}",
        *sla_lines,
        "",
        "Patient-identifiable data has been removed from this note.",
    ]
    return "\n".join(lines)
