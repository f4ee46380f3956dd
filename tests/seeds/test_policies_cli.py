"""The five example policies as files: they load, name their source, and the CLI accepts them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main

from .seedlib import POLICIES, policy

SOURCES = {
    "care-pathway": "000_f30eaa9fdf61c5b2.txt",
    "primary-care": "001_00bb004294d10132.txt",
    "emr-tiers": "002_0c571d642d83d6f3.txt",
    "cloud-imaging": "003_c20bcc785431a88f.txt",
    "clinical-docs": "004_005e13d725152e04.txt",
}


def test_one_policy_per_source_document() -> None:
    assert sorted(p.stem for p in POLICIES.glob("*.yaml")) == sorted(SOURCES)


@pytest.mark.parametrize(("name", "source"), SOURCES.items())
def test_header_names_the_source(name: str, source: str) -> None:
    text = (POLICIES / f"{name}.yaml").read_text(encoding="utf-8")
    header = text.split("\nname:")[0]
    assert header.lstrip().startswith("#")
    assert source in header
    assert policy(name).name == name


@pytest.mark.parametrize("name", SOURCES)
def test_check_accepts_the_policy(name: str) -> None:
    result = CliRunner().invoke(main, ["check", "--policy", str(POLICIES / f"{name}.yaml")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", SOURCES)
def test_labels_all_carry_the_prefix(name: str) -> None:
    labels = policy(name).all_labels()
    assert labels and len(labels) == len(set(labels))
    assert all(lbl.startswith("sla-") and " " not in lbl for lbl in labels)


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        # 000: Essentials critical, Fri 6 Mar 2026 17:00 -> response used up at 17:30 closing
        ("care-pathway", ["--class", "critical", "--plan", "essentials", "--metric", "response",
                          "--start", "2026-03-06T17:00:00+00:00"], "2026-03-06T17:30:00+00:00"),
        # 001: sev2 1bd from Fri 29 May 2026 17:00 BST over Saturday morning and the Irish bank
        # holiday: 0.5 + 3.5, Tue 2 Jun 09:00 + 4.5h
        ("primary-care", ["--class", "sev2", "--start", "2026-05-29T17:00:00+01:00"],
         "2026-06-02T13:30:00+01:00"),
        # 003: sev3 120h on the clock across the US clock change
        ("cloud-imaging", ["--class", "sev3", "--start", "2026-03-06T16:30:00-05:00"],
         "2026-03-11T17:30:00-04:00"),
        # 004: standard 5bd from Fri 6 Mar 16:00 CET
        ("clinical-docs", ["--class", "standard", "--start", "2026-03-06T16:00:00+01:00"],
         "2026-03-13T16:00:00+01:00"),
    ],
)
def test_deadline_command_on_worked_examples(name: str, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(
        main, ["deadline", "--policy", str(POLICIES / f"{name}.yaml"), *args, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert datetime.fromisoformat(json.loads(result.output)["due"]) == datetime.fromisoformat(expected)


def test_evaluate_command_prints_the_contract_shape(tmp_path: Path) -> None:
    # 002's Andre case as a file: Urgent by the matrix, still at tier 2 after its hour.
    ticket = {
        "tracker": "emr", "key": "7", "created": "2026-03-03T10:00:00+02:00", "status": "In Progress",
        "subject": "Nobody can reach the server",
        "fields": {"urgency": "Job Stopped", "impact": "Multiple Users", "tier": "L2"},
        "history": [{"at": "2026-03-03T10:10:00+02:00", "kind": "status", "from": "New",
                     "to": "In Progress", "by": "triage"}],
    }
    path = tmp_path / "ticket.json"
    path.write_text(json.dumps(ticket), encoding="utf-8")
    result = CliRunner().invoke(main, [
        "evaluate", "--policy", str(POLICIES / "emr-tiers.yaml"), str(path),
        "--now", "2026-03-03T11:00:00+02:00", "--json",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["class"] == "urgent"
    assert out["class_rule"].startswith("matrix")
    assert (out["tier"], out["escalate_to"], out["level"]) == ("L2", "L3", None)
    assert out["metrics"]["response"]["state"] == "met"
    assert out["metrics"]["response"]["elapsed_s"] == 600
    assert out["labels"] == ["sla-escalate-to-L3", "sla-urgent"]
    assert [n["key"] for n in out["notes"]] == ["tier:L3"]
