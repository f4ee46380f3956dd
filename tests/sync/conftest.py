"""Shared fixtures: a small policy, a config around the memory backend, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

from tracker_bridge.config import BridgeConfig, load_config
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryTracker

# always-on calendar: deadlines are plain arithmetic, easy to check by hand
POLICY = """\
name: test-desk
timezone: UTC
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed]}
classes:
  high: {response: 1h, resolution: 8h}
  low: {response: 4h, resolution: none}
default_class: low
plans:
  standard: {calendar: always}
default_plan: standard
classify: {field: priority, map: {High: high, Low: low}}
labels: {prefix: "sla-"}
"""

CREATED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WRITE = {"response_due": "cf:SLA response due", "resolution_due": "cf:SLA resolution due",
         "labels": "cf:SLA labels", "notes": "journal", "timezone": "UTC"}


def at(hh: int, mm: int = 0) -> datetime:
    """An instant on the test day (2026-03-02, UTC)."""
    return datetime(2026, 3, 2, hh, mm, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    MemoryTracker.forget_all()
    yield
    MemoryTracker.forget_all()


@pytest.fixture
def pm() -> pluggy.PluginManager:
    return get_plugin_manager(load_entrypoints=False)


def tracker_entry(name: str = "desk", **over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "backend": "memory", "options": {"instance": name},
                             "write": dict(WRITE)}
    entry.update(over)
    return entry


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write policy.yaml and tracker-bridge.yaml into tmp_path; return the config's path."""

    def write(trackers: list[dict[str, Any]] | None = None, **top: Any) -> Path:
        (tmp_path / "policy.yaml").write_text(POLICY)
        doc: dict[str, Any] = {"policy": "policy.yaml", "state": "state.sqlite",
                               "trackers": trackers if trackers is not None
                               else [tracker_entry()]}
        doc.update(top)
        path = tmp_path / "tracker-bridge.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write


@pytest.fixture
def make_config(write_config, pm) -> Callable[..., BridgeConfig]:
    def make(trackers: list[dict[str, Any]] | None = None, **top: Any) -> BridgeConfig:
        return load_config(write_config(trackers, **top), pm=pm)

    return make


@pytest.fixture
def desk() -> MemoryTracker:
    """The memory tracker behind the default config; its clock sits at the test day."""
    tr = MemoryTracker.named("desk")
    tr.clock = lambda: at(10, 5)
    return tr
