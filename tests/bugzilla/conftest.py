"""Fixtures: a fake Bugzilla 5.0 on ``responses`` and backends configured like the bridge does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tracker_bridge.config import parse_config
from tracker_bridge.manager import collect_registry, get_plugin_manager
from tracker_bridge.plugins.bugzilla import BugzillaBackend

from .fake import BASE, KEY, FakeBugzilla

PAYLOADS = Path(__file__).parent / "payloads"
KEY_ENV = "TB_TEST_BUGZILLA_KEY"


def payload(name: str) -> Any:
    """A payload file: an example from Bugzilla 5.0's REST documentation."""
    data = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    data.pop("_source", None)  # where the example comes from (see each test's docstring)
    return data


def tracker_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "name": "clinic-bz",
        "backend": "bugzilla",
        "url": BASE,
        "credentials": {"env": KEY_ENV},
        "projects": ["Clinic"],
        "plan": "essentials",
        "project_plans": {"Lab": "premium"},
        "fields": {"priority": "priority", "severity": "severity", "impact": "cf_impact",
                   "plan": "cf_support_plan", "component": "component", "version": "version"},
        "statuses": {"waiting": ["UNCONFIRMED"]},
        "write": {"response_due": "cf_sla_response_due",
                  "resolution_due": "cf_sla_resolution_due",
                  "labels": "keywords", "notes": "comment", "timezone": "UTC"},
        "options": {"overlap_seconds": 60},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(section.get(k), dict):
            section[k] = {**section[k], **v}
        else:
            section[k] = v
    return section


@pytest.fixture
def fake() -> Iterator[FakeBugzilla]:
    bz = FakeBugzilla()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        bz.install(rsps)
        yield bz


@pytest.fixture
def make_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BugzillaBackend]]:
    """Build a backend the way the bridge does: a config section through the plugin registry."""
    monkeypatch.setenv(KEY_ENV, KEY)
    made: list[BugzillaBackend] = []

    def make(**overrides: Any) -> BugzillaBackend:
        pm = get_plugin_manager(load_entrypoints=False)
        cfg = parse_config({"policy": "unused.yaml", "trackers": [tracker_section(**overrides)]},
                           pm=pm, load_policy=False)
        tracker = cfg.trackers[0]
        cls = collect_registry(pm).get(tracker.backend)
        assert cls is BugzillaBackend, "the bugzilla backend is not registered through the hook"
        backend = cls.from_config(tracker)
        assert isinstance(backend, BugzillaBackend)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()


@pytest.fixture
def backend(fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]
            ) -> BugzillaBackend:
    return make_backend()
