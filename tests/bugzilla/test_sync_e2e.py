"""One ``run_once`` cycle through the whole bridge (config, policy, engine, store) against the
fake Bugzilla: the first cycle writes the SLA state, the second writes nothing, and a
person's keyword survives both."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tracker_bridge.config import parse_config
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.policyfile import load_policy
from tracker_bridge.sync import run_once

from .conftest import KEY_ENV, tracker_section
from .fake import KEY, FakeBugzilla

POLICY = Path(__file__).resolve().parents[2] / "examples" / "policies" / "care-pathway.yaml"


def test_two_cycles(fake: FakeBugzilla, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    fake.keywords += [k for k in load_policy(POLICY).all_labels() if k not in fake.keywords]
    critical = fake.create_bug("Calendar unavailable for all users", priority="P3")
    fake.update(critical, keywords={"add": ["customer-vip"]})
    pm = get_plugin_manager(load_entrypoints=False)
    section = tracker_section(
        fields={"priority": "priority", "component": "component"},
        statuses={"new": ["UNCONFIRMED", "CONFIRMED"], "resolved": ["RESOLVED"],
                  "closed": ["VERIFIED"], "waiting": []})
    cfg = parse_config({"policy": str(POLICY), "state": str(tmp_path / "state.sqlite"),
                        "trackers": [section]}, pm=pm)

    now = fake.now + timedelta(minutes=5)
    first = run_once(cfg, now=now, pm=pm).trackers[0]
    assert first.errors == [] and first.fetched == 1
    assert first.writes["tickets"] == 1
    bug = fake.bugs[critical]
    assert "sla-critical" in bug["keywords"] and "customer-vip" in bug["keywords"]
    # filed 09:00:01 (a Monday), critical, Essentials plan: 30 min to respond, 4 h to resolve
    assert bug["cf_sla_response_due"] == "2026-03-02T09:30:01+00:00"
    assert bug["cf_sla_resolution_due"] == "2026-03-02T13:00:01Z"

    fake.calls.clear()
    second = run_once(cfg, now=now + timedelta(minutes=1), pm=pm).trackers[0]
    assert second.errors == []
    # our own write came back as a change and was evaluated again, yet nothing differs
    assert second.fetched == 1 and second.writes["tickets"] == 0
    assert [c for c in fake.calls if c.method == "PUT"] == []
    assert "customer-vip" in fake.bugs[critical]["keywords"]
