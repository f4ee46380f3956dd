"""A small desk whose numbers are worked out by hand: five tickets in two months, synced
twice over the memory backend (an always-on calendar, so working time is wall time)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sync.conftest import WRITE

from tracker_bridge.config import load_config
from tracker_bridge.core.ticket import HistoryEvent, Ticket
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.sync import run_once

POLICY = """\
name: report-desk
timezone: UTC
goal: 80%
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed]}
classes:
  high: {response: 1h, resolution: 8h}
  low: {response: 4h, resolution: none}
default_class: low
plans:
  standard: {calendar: always}
default_plan: standard
classify: {field: priority, map: {High: high, Low: low}}
escalation:
  levels:
    - {name: manager, after: {response: 100%}}
    - {name: director, after: {resolution: 100%}}
labels: {prefix: "sla-"}
"""

FEB = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
MAR = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FIRST_SYNC = MAR + timedelta(hours=6)
SECOND_SYNC = MAR + timedelta(hours=7)
#: a subject a customer could type, for the escaping tests
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


def _m(start: datetime, minutes: int) -> datetime:
    return start + timedelta(minutes=minutes)


def comment(start: datetime, minutes: int) -> HistoryEvent:
    return HistoryEvent(at=_m(start, minutes), kind="comment", by="agent", public=True,
                        text="Looking into it.")


def status(start: datetime, minutes: int, from_: str, to: str) -> HistoryEvent:
    return HistoryEvent(at=_m(start, minutes), kind="status", by="agent", from_=from_, to=to)


def write_config(tmp_path: Path, instance: str = "desk", state: str = "state.sqlite",
                 **top: Any) -> Path:
    """The desk's config; ``state``/``top``: e.g. a postgresql:// state and its credentials."""
    (tmp_path / "policy.yaml").write_text(POLICY)
    doc: dict[str, Any] = {
        "policy": "policy.yaml", "state": state, **top,
        "trackers": [{"name": "desk", "backend": "memory", "options": {"instance": instance},
                      "write": dict(WRITE)}]}
    path = tmp_path / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def seed(desk: MemoryTracker) -> None:
    """The five tickets (expected numbers: tests/report/test_report_sync.py)."""
    # February: closed before the first sync (recorded as history)
    desk.create("Printer queue stuck", key="1", created=FEB, fields={"priority": "High"},
                status="Resolved",
                history=[comment(FEB, 30), status(FEB, 120, "New", "Resolved")])
    desk.create("Lab results missing", key="2", created=FEB, fields={"priority": "High"},
                status="Resolved",
                history=[comment(FEB, 90), status(FEB, 600, "New", "Resolved")])
    desk.create("How do I export a letter?", key="3", created=FEB, fields={"priority": "Low"},
                status="In Progress",
                history=[comment(FEB, 60), status(FEB, 60, "New", "In Progress")])
    # March: one resolved and reopened, one nobody answered (a hostile subject, a real link)
    desk.create("Calendar slow", key="4", created=MAR, fields={"priority": "High"},
                status="In Progress",
                history=[comment(MAR, 20), status(MAR, 180, "New", "Resolved"),
                         status(MAR, 240, "Resolved", "In Progress")])
    t = Ticket(tracker="desk", key="5", created=MAR, updated=MAR, status="New",
               url="https://tracker.example/issues/5?a=1&b=2", reporter="customer",
               subject=HOSTILE, fields={"priority": "High"})
    desk.add(t)


def run_scenario(tmp_path: Path, instance: str = "desk", state: str = "state.sqlite",
                 **top: Any) -> Path:
    """Seed the tickets, sync at FIRST_SYNC and SECOND_SYNC; return the config's path."""
    MemoryTracker.forget_all()
    desk = MemoryTracker.named(instance)
    desk.clock = lambda: SECOND_SYNC
    seed(desk)
    path = write_config(tmp_path, instance, state, **top)
    pm = get_plugin_manager(load_entrypoints=False)
    cfg = load_config(path, pm=pm)
    for now in (FIRST_SYNC, SECOND_SYNC):
        run_once(cfg, now=now, pm=pm)
    return path


__all__ = ["FEB", "FIRST_SYNC", "HOSTILE", "MAR", "SECOND_SYNC", "replace", "run_scenario"]
