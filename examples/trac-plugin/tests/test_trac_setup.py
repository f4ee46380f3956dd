"""The plugin as a user meets it: found by its entry point, checked by ``tracker-bridge
check`` against a real Trac environment, its errors named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tracenv import POLICY, TracPerson, make_env, require_trac, trac_backend, tracker_section

from tracker_bridge.backend import Diff
from tracker_bridge.errors import BackendError, TicketNotFound, TicketWriteRejected
from tracker_bridge.manager import collect_registry, get_plugin_manager


@pytest.fixture(scope="module")
def env_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_trac()
    return make_env(tmp_path_factory.mktemp("trac") / "setup")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("tracker-bridge")
    cmd = [exe] if exe else [sys.executable, "-c", "from tracker_bridge.cli import main; main()"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_plugin_is_found_by_its_entry_point() -> None:
    require_trac()
    registry = collect_registry(get_plugin_manager())
    assert registry.get("trac") is not None
    assert registry.origin("trac") == "trac"  # the entry point's name, not a built-in
    listed = json.loads(cli("plugins", "--json").stdout)
    assert any("trac" in p.get("backends", []) for p in listed["plugins"]), listed


def test_check_passes_on_a_prepared_environment(env_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "tracker-bridge.yaml"
    config.write_text(yaml.safe_dump({"policy": str(POLICY), "state": str(tmp_path / "s.db"),
                                      "trackers": [tracker_section(env_path)]}))
    proc = cli("check", "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_names_what_is_wrong(env_path: Path, tmp_path: Path) -> None:
    from tracenv import FIELDS

    backend = trac_backend(env_path, tmp_path, projects=["clinic"],
                           fields={**FIELDS, "impact": "impact"})
    problems = {p.where: p.message for p in backend.check(["sla-high", "sla high"])}
    assert "no projects" in problems["projects"]
    assert "no ticket field 'impact'" in problems["fields.impact"]
    assert "blanks or commas" in problems["write.labels"]
    assert "'sla high'" in problems["write.labels"]
    assert set(problems) == {"projects", "fields.impact", "write.labels"}


def test_check_refuses_a_field_the_bridge_cannot_write(env_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "tracker-bridge.yaml"
    section = tracker_section(env_path)
    section["write"] = {**section["write"], "notes": "journal", "resolution_due": "priority"}
    section["statuses"] = {"waiting": ["on hold"]}
    config.write_text(yaml.safe_dump({"policy": str(POLICY), "state": str(tmp_path / "s.db"),
                                      "trackers": [section]}))
    proc = cli("check", "--config", str(config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "write.notes" in out and "'journal'" in out
    assert "write.resolution_due" in out and "'priority' is a select field" in out
    assert "statuses.waiting" in out and "'on hold'" in out


def test_errors_name_the_ticket_and_the_environment(env_path: Path, tmp_path: Path) -> None:
    backend = trac_backend(env_path, tmp_path)
    with pytest.raises(TicketNotFound, match="ticket 424242"):
        backend.fetch_ticket("424242")
    with pytest.raises(TicketNotFound, match="a Trac key is a ticket number"):
        backend.fetch_ticket("PROJ-1")
    with pytest.raises(TicketWriteRejected, match="ticket PROJ-1"):
        backend.apply(Diff("PROJ-1", add_labels=frozenset({"sla-high"})))
    with pytest.raises(BackendError, match="not a Trac cursor"):
        backend.fetch_changed('{"v": 99}')
    gone = trac_backend(tmp_path / "no-such-env", tmp_path)
    with pytest.raises(BackendError, match=r"no Trac environment at .*no-such-env"):
        gone.fetch_changed(None)
    assert [p.where for p in gone.check([])] == ["options.env"]


def test_several_notes_are_several_comments_in_order(env_path: Path, tmp_path: Path) -> None:
    from tracker_bridge.core.verdict import Note

    person = TracPerson(env_path)
    key = person.create_ticket("notes in order")
    backend = trac_backend(env_path, tmp_path)
    backend.apply(Diff(key, set_fields={"response_due": "2026-03-02T17:30:00+00:00"},
                       notes=(Note("breach:response", "First."), Note("kb", "Second."))))
    rows = [r for r in person.ticket(key)["_changelog"] if r[2] == "comment" and r[4]]
    assert [r[4].split("\n")[0] for r in rows] == ["First.", "Second."]
    assert {r[1] for r in rows} == {"tracker-bridge"}
    t = backend.fetch_ticket(key)
    assert [e.kind for e in t.history] == ["comment", "comment"]  # deadline fields unmapped
    person.close()
