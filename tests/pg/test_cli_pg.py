"""The commands that read the state store work on a PostgreSQL one: `sync --once` records
into it and `explain` decides with what it remembers (the notes already posted)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sync.conftest import POLICY, WRITE

from tracker_bridge.cli import main
from tracker_bridge.plugins.memory import MemoryTracker

from .server import PgServer
from .test_store_pg import T0


def test_sync_and_explain_on_a_postgresql_store(tmp_path: Path, pg_server: PgServer,
                                                pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    MemoryTracker.forget_all()
    monkeypatch.setenv("TB_STATE_PW", pg_server.bridge_password)
    (tmp_path / "policy.yaml").write_text(POLICY)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "policy": "policy.yaml", "state": pg_url, "state_credentials": {"env": "TB_STATE_PW"},
        "trackers": [{"name": "desk", "backend": "memory", "options": {"instance": "desk"},
                      "write": WRITE}]}))
    desk = MemoryTracker.named("desk")
    desk.clock = lambda: T0
    desk.create("Printer down", key="1", created=T0, fields={"priority": "High"})
    late = (T0.replace(hour=12)).isoformat()  # the 1h response target breached: a note
    try:
        runner = CliRunner()
        before = runner.invoke(main, ["explain", "desk:1", "--config", str(config),
                                      "--now", late, "--json"])
        assert before.exit_code == 0, before.output
        assert [n["key"] for n in json.loads(before.output)["diff"]["notes"]] == [
            "breach:response"]
        synced = runner.invoke(main, ["sync", "--once", "--config", str(config),
                                      "--now", late, "--json"])
        assert synced.exit_code == 0, synced.output
        assert pg_server.bridge_password not in synced.output
        # a person deletes the bridge's note: only the store remembers it was posted
        t = desk.get("1")
        desk.add(replace(t, history=tuple(e for e in t.history if e.kind != "comment")))
        after = runner.invoke(main, ["explain", "desk:1", "--config", str(config),
                                     "--now", late, "--json"])
        assert after.exit_code == 0, after.output
        doc = json.loads(after.output)
        assert doc["posted_notes"] == []
        assert doc["diff"]["notes"] == []  # the store's memory: never posted twice
    finally:
        MemoryTracker.forget_all()
