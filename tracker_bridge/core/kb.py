"""KB-ready resolution notes, with patient data redacted.

The source handbooks ask for a knowledge-base entry for every resolved problem (problem,
related solution, reproducible steps, resolution/workaround) and forbid patient-identifiable
data in support records. The note is built from the ticket alone and every free text in it
goes through :func:`~.redact.redact` first (detection lives in :mod:`.redact`). The note's last
line says what was removed and what a second, cruder check still finds in the redacted text
(:func:`closing_line`): it never claims more than that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .redact import (
    KIND_LABELS,
    REDACTED,
    ExtraPattern,
    Finding,
    find_identifiers,
    redact,
    redact_with_findings,
    residual_kinds,
    safe_text,
)
from .saferegex import compile_safe
from .ticket import Ticket
from .verdict import NOTE_MARKER_RE

__all__ = [
    "REDACTED",
    "ExtraPattern",
    "Finding",
    "closing_line",
    "find_identifiers",
    "kb_note",
    "redact",
]


_STEPS = compile_safe(r"(?is)steps\s+to\s+reproduce\s*:?\s*(.+)")


def _steps(description: str) -> str:
    description = safe_text(description)
    m = _STEPS.search(description)
    return (m.group(1) if m else description).strip()


def kb_note(
    ticket: Ticket,
    *,
    class_: str,
    plan: str,
    resolved_at_text: str,
    sla_lines: Sequence[str],
    extra_redact: Iterable[ExtraPattern] = (),
    until: float | None = None,
) -> str:
    """The KB-ready note for a resolved ticket (plain text, tracker-neutral).

    ``extra_redact`` are the policy's own ``kb.redact`` patterns (RE2 objects from
    ``compile_safe``; anything with ``finditer`` works), removed on top of the built-in
    detection.
    """
    extra = tuple(extra_redact)
    removed: list[Finding] = []
    customer_text: list[str] = []  # every redacted text that went into the note

    def clean(text: str) -> str:
        out, found = redact_with_findings(text, extra)
        removed.extend(found)
        customer_text.append(out)
        return out

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
            and not NOTE_MARKER_RE.search(safe_text(ev.text))
        ):
            solution = ev.text.strip() or solution
    context = ", ".join(f"{k} {fields[k]}" for k in ("component", "version") if fields.get(k))
    lines = [
        "KB-ready resolution note",
        "",
        f"Problem: {clean(ticket.subject) or '(no subject)'}",
        f"Classification: {class_} (plan {plan}){'; ' + clean(context) if context else ''}",
        "",
        "Reproducible steps:",
        clean(_steps(ticket.description)) or "(not recorded)",
        "",
        "Resolution / workaround:",
        clean(solution) if solution else "(not recorded: add the fix or workaround here)",
        "",
        f"Related solution: {clean(fields.get('related') or '') or '(none recorded)'}",
        f"Resolved: {resolved_at_text}",
        *sla_lines,
        "",
        closing_line(removed, residual_kinds("\n".join(customer_text))),
    ]
    return "\n".join(lines)


def closing_line(removed: Iterable[Finding], residual: Sequence[str]) -> str:
    """The note's last line: the kinds of data removed, and whether the second check (run on
    the redacted text) still finds something identifier-like. Names kinds, never data."""
    kinds = []
    for f in removed:
        label = KIND_LABELS.get(f.kind, f.kind)
        if label not in kinds:
            kinds.append(label)
    what = f" ({', '.join(kinds)})" if kinds else ""
    if residual:
        return (
            f"Patient-identifiable data was removed where detected{what}; review this note "
            f"before publishing: it may still hold some ({', '.join(residual)})."
        )
    return (
        f"Patient-identifiable data was removed where detected{what}; a second check found "
        "nothing identifier-like left in this note."
    )
