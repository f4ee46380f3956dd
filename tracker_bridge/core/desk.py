"""The source documents' desk rules, evaluated with the clocks (docs/semantics.md, "Desk rules").

Each rule is off unless the policy names it, and costs nothing then. Each adds owned labels
(under the policy's label prefix) and notes with stable keys, posted once per ticket by the
sync layer. Pure: no I/O, the instant ``now`` comes in from the engine.

- ``patient_data``: the ticket's own subject, description and public comments are read by
  the KB redaction's detector (:func:`~.redact.find_identifiers`, plus the policy's
  ``kb.redact`` patterns); where something is found the ticket gets ``<prefix>phi-detected``
  and one internal note per place (``phi:subject``, ``phi:description``, ``phi:comment-N``)
  naming the place and the kinds of data found, never the data.
- ``completeness``: the fields a ticket of its category must carry; a ticket missing any gets
  ``<prefix>needs-info`` and one note (``needs-info``) listing them, in the tracker's own
  field names once the sync layer names them (:meth:`MissingNote.named`); with
  ``hold_response`` the response clock starts when the ticket became complete.
- ``confirmed_closure``: a resolved ticket the customer (its reporter) has not answered since
  its resolution gets one reminder note (``confirm-reminder:<resolved at>``) once
  ``remind_after`` has passed; a ticket closed by someone else with no answer from the
  customer since its resolution gets ``<prefix>closed-unconfirmed``.
- ``releases``: the ticket's version is in ``full`` support (the current quarterly release),
  ``sustaining`` (the previous three), ``extended`` (one year past its end of life, the day
  the fourth later release came out) or ``eosl``; a label says which, and at ``eosl`` the
  clocks do not run and one note (``eosl:<version>``) points to the upgrade path.
- ``contacts``: a ticket whose customer lists its registered contacts, reported by someone
  not among them, gets ``<prefix>unregistered-contact`` and one note
  (``unregistered:<reporter>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import partial
from typing import Any

from .marker import is_bridge_note
from .policy import Completeness, Policy, Release, Releases, release_key
from .redact import KIND_LABELS, find_identifiers, safe_text
from .ticket import Ticket
from .verdict import Note

#: texts whose detection result is kept (a text seen again costs one dict lookup); past this
#: many the memo is emptied
PHI_MEMO_LIMIT = 4096


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
            if is_bridge_note(text):
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


# -- completeness ---------------------------------------------------------------------------------

#: required names read from the ticket itself rather than its fields
TICKET_TEXTS = ("subject", "description")


def _empty(value: str | None) -> bool:
    return value is None or not value.strip()


def missing_fields(
    comp: Completeness, ticket: Ticket, fields: Mapping[str, str | None],
) -> tuple[tuple[str, ...], str | None]:
    """``(the required names missing at now, the category read)``; ``fields`` are the
    ticket's fields as of now."""
    category = fields.get(comp.field)
    out = []
    for name in comp.required_for(category):
        value = getattr(ticket, name) if name in TICKET_TEXTS else fields.get(name)
        if _empty(value):
            out.append(name)
    return tuple(out), category


def complete_since(
    comp: Completeness, ticket: Ticket, fields: Mapping[str, str | None],
    ats: Sequence[int], now_us: int, created: int,
) -> int:
    """When the ticket (complete at now) last became complete: its fields are replayed from
    creation through the field events up to now. The category and ``subject`` and
    ``description`` are taken as they are at now (the history does not carry their edits)."""
    required = [n for n in comp.required_for(fields.get(comp.field)) if n not in TICKET_TEXTS]
    if not required:
        return created
    wanted = set(required)
    events = [(ev, at) for ev, at in zip(ticket.history, ats, strict=True)
              if at <= now_us and ev.kind == "field" and ev.field in wanted]
    values = {n: fields.get(n) for n in required}
    for ev, _ in reversed(events):  # back to creation
        values[ev.field] = ev.from_  # type: ignore[index]
    since = None if any(_empty(v) for v in values.values()) else created
    for ev, at in events:
        values[ev.field] = ev.to  # type: ignore[index]
        done = not any(_empty(v) for v in values.values())
        if done and since is None:
            since = max(at, created)
        elif not done:
            since = None
    return created if since is None else since


def field_display(spec: str) -> str:
    """A tracker field as people see it: ``cf:Support plan`` -> ``Support plan``."""
    return spec[3:] if spec.startswith("cf:") else spec


def needs_info_text(names: Sequence[str], category: str | None) -> str:
    what = f"the category {category}" if category else "every ticket"
    return (
        f"More information needed: this ticket is missing {', '.join(names)} (required for "
        f"{what}). Please add it; the label goes once everything is there."
    )


class MissingNote(Note):
    """The ``needs-info`` note: its text names the missing fields by their normalized names
    until :meth:`named` gives the tracker's own."""

    __slots__ = ("category", "missing")
    missing: tuple[str, ...]
    category: str | None

    @classmethod
    def of(cls, missing: tuple[str, ...], category: str | None) -> MissingNote:
        note = cls.later("needs-info", partial(needs_info_text, missing, category))
        object.__setattr__(note, "missing", missing)
        object.__setattr__(note, "category", category)
        return note  # type: ignore[return-value]

    def named(self, names: Mapping[str, str]) -> Note:
        """The note with each missing field named as the tracker names it (``names``: the
        tracker config's ``fields:`` map, normalized -> tracker field)."""
        shown = tuple(field_display(names[n]) if n in names else n for n in self.missing)
        return Note("needs-info", needs_info_text(shown, self.category))


# -- confirmed closure ----------------------------------------------------------------------------


def customer_answered(ticket: Ticket, ats: Sequence[int], since: int, now_us: int) -> bool:
    """Whether the reporter commented in public (not a bridge note: the bridge may post as
    the reporter's account) or changed the status in [since, now]."""
    reporter = ticket.reporter
    for ev, at in zip(ticket.history, ats, strict=True):
        if at < since or at > now_us or ev.by is None or ev.by != reporter:
            continue
        if ev.kind == "status":
            return True
        if ev.kind == "comment" and ev.public and not is_bridge_note(ev.text):
            return True
    return False


def closed_by(ticket: Ticket, ats: Sequence[int], now_us: int) -> str | None:
    """Who made the last status change up to now (the one into the closed status)."""
    who = None
    for ev, at in zip(ticket.history, ats, strict=True):
        if at <= now_us and ev.kind == "status":
            who = ev.by
    return who


def reminder_text(resolved_text: str) -> str:
    return (
        f"Awaiting your confirmation: this ticket was marked resolved on {resolved_text}. It "
        "will not be closed until you confirm that the solution has resolved your incident: "
        "please reply to confirm, or tell us what is still wrong."
    )


# -- release lifecycle ----------------------------------------------------------------------------


def release_stage(
    rel: Releases, version: str | None, today: date,
) -> tuple[str, Release, Release, date | None, date | None] | None:
    """``(stage, the ticket's release, the current release, its end of life, the next day the
    stage changes)`` for ``version`` on ``today``; None when the ticket names no released
    version (no version, an unknown one, or none released yet)."""
    key = release_key(version)
    if key is None:
        return None
    released = [r for r in rel.releases if r.date <= today]
    idx = next((i for i, r in enumerate(released) if r.key == key), None)
    if idx is None:
        return None
    upcoming = next((r.date for r in rel.releases if r.date > today), None)
    current = released[-1]
    behind = len(released) - 1 - idx
    if behind == 0:
        return "full", released[idx], current, None, upcoming
    if behind <= rel.sustaining:
        return "sustaining", released[idx], current, None, upcoming
    eol = released[idx + rel.sustaining + 1].date
    end = eol + timedelta(days=rel.extended_days)
    if today < end:
        return "extended", released[idx], current, eol, end
    return "eosl", released[idx], current, eol, None


def eosl_text(version: str, release: Release, current: Release, eol: date, days: int,
              upgrade: str) -> str:
    path = f" {upgrade.strip()}" if upgrade.strip() else ""
    return (
        f"End of support life: version {version} (release {release.version}) reached its end "
        f"of life on {eol.isoformat()} and left extended support {days} days later. Support "
        "targets no longer apply; we can help you upgrade to the current release "
        f"{current.version}.{path}"
    )


# -- registered contacts --------------------------------------------------------------------------


def unregistered_text(reporter: str, customer: str, registered: int, limit: int) -> str:
    return (
        f"Unregistered contact: {reporter} is not a registered technical contact of "
        f"{customer}. Only registered technical contacts may open or update incidents: please "
        f"ask one of them to raise it, or have {reporter} registered ({customer} has "
        f"{registered} of {limit} contacts registered)."
    )
