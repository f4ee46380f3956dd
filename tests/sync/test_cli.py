"""The tracker commands end to end through click, on a memory tracker kept in a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main
from tracker_bridge.plugins.memory import MemoryTracker

from .conftest import CREATED, POLICY, tracker_entry

NOW = "2026-03-02T11:30:00+00:00"


@pytest.fixture
def files(tmp_path: Path, write_config) -> Path:
    tr = MemoryTracker("desk")
    tr.create("Printer down", key="1", created=CREATED, fields={"priority": "High"},
              labels=["customer-label"])
    tr.create("Question", key="2", created=CREATED, fields={"priority": "Low"})
    (tmp_path / "tickets.json").write_text(json.dumps(tr.to_json()))
    return write_config([tracker_entry(options={"file": "tickets.json"})])


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def tickets(tmp_path: Path) -> dict[str, dict]:
    data = json.loads((tmp_path / "tickets.json").read_text())
    return {x["ticket"]["key"]: x["ticket"] for x in data["tickets"]}


def test_sync_once_then_again_writes_nothing(files: Path, tmp_path: Path) -> None:
    r = run("sync", "--once", "--now", NOW, "--config", str(files))
    assert r.exit_code == 0, r.output
    assert "wrote 2 tickets" in r.output
    assert "desk:1: " in r.output and "+sla-breached-response" in r.output
    t = tickets(tmp_path)["1"]
    assert set(t["labels"]) == {"customer-label", "sla-high", "sla-breached-response"}
    before = (tmp_path / "tickets.json").read_text()
    r = run("sync", "--once", "--now", NOW, "--config", str(files), "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["trackers"][0]["writes"]["tickets"] == 0
    assert (tmp_path / "tickets.json").read_text() == before


def test_dry_run_prints_the_writes_and_makes_none(files: Path, tmp_path: Path) -> None:
    before = (tmp_path / "tickets.json").read_text()
    r = run("sync", "--once", "--dry-run", "--now", NOW, "--config", str(files))
    assert r.exit_code == 0
    assert "dry run" in r.output and "would write 2 tickets" in r.output
    assert "note breach:response" in r.output
    assert (tmp_path / "tickets.json").read_text() == before
    from tracker_bridge.store import Store

    with Store(tmp_path / "state.sqlite") as st:
        assert st.get_cursor("desk") is None and st.count("verdicts") == 0


def test_config_from_the_environment(files: Path) -> None:
    r = run("sync", "--once", "--now", NOW, "--json",
            env={"TRACKER_BRIDGE_CONFIG": str(files)})
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"]


def test_sync_needs_once_and_a_valid_now(files: Path) -> None:
    r = run("sync", "--config", str(files))
    assert r.exit_code == 2 and "--once" in r.output
    r = run("sync", "--once", "--now", "2026-03-02T11:30:00", "--config", str(files))
    assert r.exit_code == 2 and "no UTC offset" in r.output
    r = run("sync", "--once", "--tracker", "nope", "--config", str(files))
    assert r.exit_code == 2 and "no tracker named 'nope'" in r.output


def test_a_failing_tracker_exits_1(files: Path, tmp_path: Path) -> None:
    (tmp_path / "tickets.json").write_text("{not json")
    r = run("sync", "--once", "--now", NOW, "--config", str(files), "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["trackers"][0]["errors"][0]["kind"] == "backend"


def test_config_errors_exit_2_with_paths_and_no_secret(write_config, monkeypatch) -> None:
    path = write_config([tracker_entry(token="hunter2-secret-token", colour="red")])
    r = run("sync", "--once", "--config", str(path))
    assert r.exit_code == 2
    assert "trackers[0].token: secrets are never written in the config file" in r.output
    assert "hunter2" not in r.output
    r = run("check", "--config", str(path), "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert {p["path"] for p in doc["problems"]} == {"line 14: trackers[0].token",
                                                    "line 15: trackers[0].colour"}
    assert "hunter2" not in r.stdout


def test_check_policy_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(POLICY)
    r = run("check", "--policy", "p.yaml")
    assert r.exit_code == 0 and "test-desk" in r.output
    r = run("check", "--policy", "p.yaml", "--json")
    assert json.loads(r.stdout)["policy"]["labels"][0] == "sla-high"
    (tmp_path / "p.yaml").write_text(POLICY.replace("default_class: low", "default_class: lo"))
    r = run("check", "--policy", "p.yaml")
    assert r.exit_code == 2 and "default_class" in r.output
    r = run("check")
    assert r.exit_code == 2 and "nothing to check" in r.output


def test_check_lists_the_label_values_an_admin_must_add(write_config) -> None:
    path = write_config([tracker_entry(options={"instance": "desk",
                                                "allowed_labels": ["sla-high", "sla-low"]}),
                         tracker_entry("fine")])
    r = run("check", "--config", str(path))
    assert r.exit_code == 1
    assert "tracker desk (memory): 1 problems" in r.output
    assert "values an admin must add:" in r.output
    for label in ("sla-breached-response", "sla-paused", "sla-at-risk-resolution"):
        assert f"      {label}\n" in r.output
    assert "      sla-high\n" not in r.output
    assert "tracker fine (memory): ok" in r.output
    doc = json.loads(run("check", "--config", str(path), "--json").stdout)
    assert not doc["ok"]
    assert doc["trackers"][0]["problems"][0]["missing_values"][0] == "sla-at-risk-response"
    assert doc["trackers"][1]["ok"]


def test_explain_prints_the_verdict_with_its_reasons(files: Path) -> None:
    r = run("explain", "desk:1", "--now", NOW, "--config", str(files))
    assert r.exit_code == 0, r.output
    assert "breached" in r.output and "why:" in r.output
    assert "sync would write:" in r.output
    doc = json.loads(run("explain", "desk:1", "--now", NOW, "--config", str(files),
                         "--json").stdout)
    assert doc["verdict"]["class"] == "high"
    assert doc["reasons"] and doc["diff"]["add_labels"] == ["sla-breached-response", "sla-high"]
    run("sync", "--once", "--now", NOW, "--config", str(files))
    r = run("explain", "desk:1", "--now", NOW, "--config", str(files))
    assert "sync would write nothing" in r.output


def test_explain_bad_references(files: Path) -> None:
    r = run("explain", "desk", "--config", str(files))
    assert r.exit_code == 2 and "TRACKER:KEY" in r.output
    r = run("explain", "desk:99", "--config", str(files))
    assert r.exit_code == 1 and "ticket 99" in r.output
    r = run("explain", "other:1", "--config", str(files))
    assert r.exit_code == 2


def test_plugins_lists_the_builtins() -> None:
    r = run("plugins")
    assert r.exit_code == 0 and "tracker_bridge.plugins.memory" in r.output
    assert "built-in" in r.output
    doc = json.loads(run("plugins", "--json").stdout)
    assert {"name", "version", "origin", "backends"} <= set(doc["plugins"][0])
