"""What a sync cycle reports: :class:`SyncReport`, one :class:`TrackerReport` per tracker,
and the :class:`SyncError` problems in them.

Kept apart from the cycle (``sync.py``) so that what reads a report (the plugin hooks, the
daemon's health and metrics, the CLI) does not import the cycle.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .backend import Diff


@dataclass
class SyncError:
    """One problem in a cycle: ``kind`` is unavailable, auth, rejected, safety, evaluate,
    backend, plugin or internal; ``key`` names the ticket when there is one."""

    tracker: str
    kind: str
    message: str
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker, "key": self.key, "kind": self.kind,
                "message": self.message}

    def __str__(self) -> str:
        where = f"{self.tracker}:{self.key}" if self.key else self.tracker
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class TrackerReport:
    """What one tracker's part of a cycle did."""

    tracker: str
    fetched: int = 0
    refetched: int = 0
    evaluated: int = 0
    #: writes by kind: tickets, fields, labels_added, labels_removed, notes
    writes: Counter[str] = field(default_factory=Counter)
    #: every non-empty diff (written, or that would be written in a dry run)
    diffs: list[Diff] = field(default_factory=list)
    errors: list[SyncError] = field(default_factory=list)
    cursor_before: str | None = None
    cursor_after: str | None = None
    #: the tracker's part stopped early (its cursor did not move)
    aborted: bool = False
    #: it stopped early because the daemon was asked to stop (not an error)
    stopped: bool = False
    #: metrics that turned breached this cycle, by (class, metric)
    breaches: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: retried calls by kind: read, write
    retries: Counter[str] = field(default_factory=Counter)
    #: tickets recorded but not written: closed before the bridge first synced the tracker
    adopted: int = 0
    #: the server asked for this many seconds of patience (429/503 Retry-After) when it failed
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def count_diff(self, diff: Diff) -> None:
        """Count a non-empty diff written (or, in a dry run, that would be)."""
        self.diffs.append(diff)
        self.writes["tickets"] += 1
        self.writes["fields"] += len(diff.set_fields)
        self.writes["labels_added"] += len(diff.add_labels)
        self.writes["labels_removed"] += len(diff.remove_labels)
        self.writes["notes"] += len(diff.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker, "fetched": self.fetched, "refetched": self.refetched,
            "evaluated": self.evaluated,
            "writes": {k: self.writes.get(k, 0) for k in
                       ("tickets", "fields", "labels_added", "labels_removed", "notes")},
            "diffs": [d.to_dict() for d in self.diffs],
            "errors": [e.to_dict() for e in self.errors],
            "cursor_before": self.cursor_before, "cursor_after": self.cursor_after,
            "aborted": self.aborted, "stopped": self.stopped,
            "breaches": [{"class": c, "metric": m, "count": n}
                         for (c, m), n in sorted(self.breaches.items())],
            "retries": dict(self.retries),
            "adopted": self.adopted,
        }


@dataclass
class SyncReport:
    """The result of :func:`tracker_bridge.sync.run_once`."""

    now: datetime
    dry_run: bool
    trackers: list[TrackerReport] = field(default_factory=list)
    #: the earliest stored instant at which some ticket's verdict changes by itself: a daemon
    #: sleeps until ``min(next poll, next_change)``
    next_change: datetime | None = None
    #: problems raised by ``tracker_bridge_cycle_done`` implementations
    hook_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.trackers)

    @property
    def errors(self) -> list[SyncError]:
        return [e for t in self.trackers for e in t.errors]

    def to_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "ok": self.ok,
                "trackers": [t.to_dict() for t in self.trackers],
                "next_change": None if self.next_change is None else self.next_change.isoformat(),
                "hook_errors": list(self.hook_errors)}
