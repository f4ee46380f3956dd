"""A sync cycle end to end (config file -> sync.run_once) against the stateful fake JIRA.

The fake moves ``updated`` on every PUT and comment, so the bridge's own writes come back
as changes on the next poll, as on a real JIRA: the second cycle must read them and write
nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker_bridge.config import load_config
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.sync import run_once

from .conftest import POLICY, TOKEN_ENV, tracker_section
from .fakejira import TOKEN, FakeJira


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    section = tracker_section(statuses={"new": ["Open"]})
    doc = {"policy": str(POLICY), "state": str(tmp_path / "state.sqlite"),
           "trackers": [section]}
    path = tmp_path / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _cycle(path: Path, fake: FakeJira, hours: float = 1) -> dict[str, Any]:
    config = load_config(path, pm=get_plugin_manager(load_entrypoints=False))
    report = run_once(config, now=fake.now + timedelta(hours=hours),
                      pm=get_plugin_manager(load_entrypoints=False))
    [tracker] = report.to_dict()["trackers"]
    assert tracker["errors"] == [], tracker["errors"]
    return dict(tracker)


def test_sync_writes_once_then_nothing_and_keeps_peoples_labels(
        fake: FakeJira, config_path: Path) -> None:
    high = fake.create("Orders stuck", priority="High", labels=["customer-vip"])
    low = fake.create("Typo on the invoice", priority="Low")
    first = _cycle(config_path, fake)
    assert first["fetched"] == 2 and first["writes"]["tickets"] == 2
    f = fake.issues[high]["fields"]
    assert "customer-vip" in f["labels"] and "sla-high" in f["labels"]
    assert f["customfield_10050"] and f["customfield_10051"]  # both deadlines written
    assert "sla-low" in fake.issues[low]["fields"]["labels"]

    puts_before = {k: i["fields"]["updated"] for k, i in fake.issues.items()}
    second = _cycle(config_path, fake)
    assert second["fetched"] == 2, "the bridge's own writes come back as changes"
    assert second["writes"]["tickets"] == 0 and second["diffs"] == []
    assert {k: i["fields"]["updated"] for k, i in fake.issues.items()} == puts_before

    # a person adds a label and raises the priority: the bridge changes its own only
    fake.set_labels(low, [*fake.issues[low]["fields"]["labels"], "escalation-requested"])
    fake.set_field(low, "priority", {"id": "2", "name": "High"})
    third = _cycle(config_path, fake)
    assert third["writes"]["labels_added"] >= 1
    labels = fake.issues[low]["fields"]["labels"]
    assert "escalation-requested" in labels and "sla-high" in labels
    assert "sla-low" not in labels


def test_notes_are_not_posted_again_when_the_store_is_lost(
        fake: FakeJira, config_path: Path, tmp_path: Path) -> None:
    key = fake.create("Server down", priority="High")
    # long enough after creation that the response target has passed: a breach note
    _cycle(config_path, fake, hours=72)
    notes = [c for c in fake.issues[key]["comments"] if c["author"]["displayName"] == "SLA Bot"]
    assert notes, "the policy's breach note was not posted"
    (tmp_path / "state.sqlite").unlink()
    _cycle(config_path, fake, hours=72)
    again = [c for c in fake.issues[key]["comments"] if c["author"]["displayName"] == "SLA Bot"]
    assert len(again) == len(notes)
