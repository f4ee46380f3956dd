"""`deadline` and `evaluate`: JSON shapes of docs/ticket.md and the exit codes of docs/cli.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main

POLICY = str(Path(__file__).parent / "data" / "spec-example.yaml")
TICKET = {
    "tracker": "clinic-redmine",
    "key": "42",
    "url": "http://127.0.0.1:3000/issues/42",
    "created": "2026-03-02T10:00:00+00:00",
    "updated": "2026-03-02T11:30:00+00:00",
    "reporter": "alice",
    "subject": "Report is slow",
    "description": "Steps to reproduce: ...",
    "status": "In Progress",
    "fields": {"priority": "High", "plan": "premium", "tier": "L2", "component": "Reports"},
    "labels": ["customer-label"],
    "history": [
        {"at": "2026-03-02T10:20:00+00:00", "kind": "status", "from": "New", "to": "In Progress", "by": "bob"},
        {"at": "2026-03-02T10:25:00+00:00", "kind": "comment", "by": "bob", "public": True, "text": "Looking"},
    ],
}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


@pytest.fixture
def ticket_file(tmp_path: Path) -> str:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(TICKET))
    return str(p)


def test_deadline_json() -> None:
    # high on premium = extended (Mon-Fri 08:00-20:00 London, GMT in March): Monday 19:30
    # leaves 30m, Tuesday 08:00 + 7h30 = 15:30.
    r = run("deadline", "--policy", POLICY, "--class", "high", "--plan", "premium",
            "--start", "2026-03-02T19:30:00+00:00", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"due": "2026-03-03T15:30:00+00:00"}


def test_deadline_response_metric_and_no_target() -> None:
    r = run("deadline", "--policy", POLICY, "--class", "critical", "--plan", "premium",
            "--start", "2026-12-25T03:00:00Z", "--metric", "response", "--json")
    assert json.loads(r.output) == {"due": "2026-12-25T03:30:00+00:00"}  # `always` for critical
    r = run("deadline", "--policy", POLICY, "--class", "low", "--start", "2026-03-02T10:00:00Z", "--json")
    assert json.loads(r.output) == {"due": None}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--class", "urgent", "--start", "2026-03-02T10:00:00Z"], "--class: 'urgent'"),
        (["--class", "high", "--plan", "gold", "--start", "2026-03-02T10:00:00Z"], "--plan: 'gold'"),
        (["--class", "high", "--start", "yesterday"], "--start: 'yesterday' is not an ISO 8601"),
        (["--class", "high", "--start", "2026-03-02T10:00:00"], "has no UTC offset"),
    ],
)
def test_deadline_bad_input_exits_2(args: list[str], needle: str) -> None:
    r = run("deadline", "--policy", POLICY, *args)
    assert r.exit_code == 2
    assert needle in r.output


def test_evaluate_json_has_the_contract_keys(ticket_file: str) -> None:
    r = run("evaluate", "--policy", POLICY, ticket_file, "--now", "2026-03-02T11:30:00+00:00", "--json")
    assert r.exit_code == 0, r.output
    v = json.loads(r.output)
    for key in ("class", "class_rule", "plan", "metrics", "tier", "escalate_to", "level", "labels", "notes"):
        assert key in v
    assert (v["class"], v["class_rule"], v["plan"]) == ("high", "map:priority", "premium")
    assert v["metrics"]["response"] == {
        "state": "met", "elapsed_s": 1200, "target_s": 3600, "due": None, "remaining_s": None,
        "calendar": "extended", "stopped_at": "2026-03-02T10:20:00+00:00",
    }
    res = v["metrics"]["resolution"]
    # extended opens 08:00: 10:00-11:30 = 1h30 elapsed of 8h, 6h30 left -> 18:00 the same day
    assert (res["state"], res["elapsed_s"], res["remaining_s"], res["due"]) == (
        "running", 5400, 23400, "2026-03-02T18:00:00+00:00")
    assert v["labels"] == ["sla-high"]


def test_evaluate_reads_stdin_and_prints_text() -> None:
    r = run("evaluate", "--policy", POLICY, "-", "--now", "2026-03-02T11:30:00Z", input=json.dumps(TICKET))
    assert r.exit_code == 0
    assert "class    high  (map:priority)" in r.output


def test_evaluate_bad_ticket_names_the_path(tmp_path: Path) -> None:
    bad = dict(TICKET, history=[{"at": "2026-03-02T10:20:00", "kind": "status", "to": "X"}])
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    r = run("evaluate", "--policy", POLICY, str(p), "--now", "2026-03-02T11:30:00Z")
    assert r.exit_code == 2
    assert "clinic-redmine:42 history[0].at" in r.output and "no UTC offset" in r.output


def test_invalid_policy_exits_2_with_json_problems(tmp_path: Path, ticket_file: str) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(Path(POLICY).read_text().replace("response: 1h,", "response: 1x,"))
    r = run("evaluate", "--policy", str(p), ticket_file, "--json")
    assert r.exit_code == 2
    doc = json.loads(r.output)
    assert doc["problems"][0]["path"].endswith("classes.high.response")
    assert '"1x" is not a duration' in doc["problems"][0]["message"]
