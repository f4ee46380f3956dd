"""The engine's verdict on one ticket: desired state, never commands.

The sync layer diffs a verdict against what the tracker shows and writes only the
difference: the deadline fields, the labels under the policy's prefix, and notes, each
note carrying a stable key so that it is posted at most once per ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# the note marker lives in marker.py; re-exported here, where it was first defined
from .marker import NOTE_MARKER_RE as NOTE_MARKER_RE
from .marker import note_marker as note_marker

#: metric states, see docs/semantics.md, "States" (``no_target``: the target is ``none``)
STATES = ("running", "at_risk", "paused", "met", "breached", "no_target")


def seconds(td: timedelta | None) -> int | float | None:
    """A timedelta as seconds for JSON: an int when whole, else a float."""
    if td is None:
        return None
    s = td.total_seconds()
    return int(s) if s == int(s) else s


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


@dataclass(frozen=True, slots=True)
class Note:
    """A note the engine wants on the ticket.

    ``key`` is stable across cycles (``breach:resolution``, ``tier:L3``, ``level:manager``,
    ``kb``): the sync layer posts a note once per (ticket, key) and marks it with the key.
    """

    key: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "text": self.text}


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    """One SLA metric's state at ``now``."""

    name: str
    state: str
    elapsed: timedelta
    target: timedelta | None
    due: datetime | None
    remaining: timedelta | None
    calendar: str
    #: when the clock stopped (first response, resolution), if it has
    stopped_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "elapsed_s": seconds(self.elapsed),
            "target_s": seconds(self.target),
            "due": iso(self.due),
            "remaining_s": seconds(self.remaining),
            "calendar": self.calendar,
            "stopped_at": iso(self.stopped_at),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything the engine decided about one ticket at one instant."""

    ticket: str
    now: datetime
    class_: str
    class_rule: str
    plan: str
    metrics: dict[str, MetricVerdict]
    tier: str | None
    escalate_to: str | None
    level: str | None
    level_index: int | None
    labels: frozenset[str]
    label_prefix: str
    notes: tuple[Note, ...]
    #: the earliest instant after ``now`` at which the verdict changes with no tracker event
    #: (a metric turning at-risk or breached, a tier's time or an escalation level running out)
    next_change: datetime | None = None
    warnings: tuple[str, ...] = ()
    #: the reasoning in words, for ``explain``
    reasons: tuple[str, ...] = field(default=())
    #: when the ticket last entered a resolved or closed status, if it is there at ``now``
    stopped_at: datetime | None = None

    @property
    def deadlines(self) -> dict[str, datetime | None]:
        """The deadline fields the bridge stamps on the ticket: ``response_due``, ``resolution_due``."""
        return {f"{name}_due": m.due for name, m in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "now": iso(self.now),
            "class": self.class_,
            "class_rule": self.class_rule,
            "plan": self.plan,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "tier": self.tier,
            "escalate_to": self.escalate_to,
            "level": self.level,
            "level_index": self.level_index,
            "labels": sorted(self.labels),
            "notes": [n.to_dict() for n in self.notes],
            "deadlines": {k: iso(v) for k, v in self.deadlines.items()},
            "next_change": iso(self.next_change),
            "warnings": list(self.warnings),
        }
