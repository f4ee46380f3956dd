"""The desk rules (docs/policy.md, "Desk rules") end to end: ``tracker-bridge sync --once``
against the real Redmine, in a project of each test's own, with the example policy plus the
rule. Each rule: its label written, its note posted once, a second sync writing nothing
(``updated_on`` and the journals unchanged: any PUT moves ``updated_on`` on Redmine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import POLICY, RedmineEnv, tracker_section
from .test_sync_e2e import journal_count, snapshot, sync

pytestmark = pytest.mark.redmine

NHS = "943 476 5919"  # the NHS's published example number (valid check digit)


def config_with(env: RedmineEnv, tmp: Path, project: str, rules: str) -> Path:
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY.read_text(encoding="utf-8") + "\n" + rules, encoding="utf-8")
    doc = {"policy": str(policy), "state": str(tmp / "state.sqlite"),
           "trackers": [tracker_section(env, [project])]}
    path = tmp / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def marked(env: RedmineEnv, iid: int, key: str) -> list[dict[str, Any]]:
    return [j for j in env.server.get_issue(iid)["journals"]
            if f"[tracker-bridge:note={key}]" in (j.get("notes") or "")]


def test_patient_data_label_and_one_note_per_place(redmine: RedmineEnv, tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("desk-phi")
    prio = s.ids("issue_priorities")
    dirty = s.create_issue(proj, "Referral letter prints the wrong footer",
                           description=f"Seen on the letter for NHS {NHS} this morning.",
                           priority_id=prio["Normal"])
    clean = s.create_issue(proj, "Report export is slow", priority_id=prio["Normal"])
    did, cid = int(dirty["id"]), int(clean["id"])
    s.update_issue(did, notes="Also: patient DOB 12/03/1961 shows it.")
    config = config_with(redmine, tmp_path, proj, "patient_data: true\n")

    first = sync(redmine, config)
    assert first["errors"] == []
    snap = snapshot(redmine, proj)
    assert "sla-phi-detected" in snap[did]["SLA labels"]
    assert "sla-phi-detected" not in snap[cid]["SLA labels"]
    for key, where in (("phi:description", "the description"),
                       ("phi:comment-1", "comment 1 (by")):
        (journal,) = marked(redmine, did, key)
        assert where in journal["notes"]
        assert "5919" not in journal["notes"] and "1961" not in journal["notes"]
    assert not [j for j in s.get_issue(cid)["journals"] if "note=phi:" in (j.get("notes") or "")]
    journals = {i: journal_count(redmine, i) for i in (did, cid)}

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == []
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in (did, cid)} == journals


def test_completeness_names_the_missing_fields_as_redmine_does(redmine: RedmineEnv,
                                                               tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("desk-complete")
    prio = s.ids("issue_priorities")
    impact, urgency = redmine.fields["Impact"], redmine.fields["Urgency"]
    bare = s.create_issue(proj, "Pathway editor will not save", description="Step 3 fails",
                          priority_id=prio["Normal"],
                          custom_fields=[{"id": impact, "value": "Single user"}])
    full = s.create_issue(proj, "Export stops at page 3", description="Every export",
                          priority_id=prio["Normal"], custom_fields=[
                              {"id": impact, "value": "Single user"},
                              {"id": urgency, "value": "Job function affected"}])
    bid, fid = int(bare["id"]), int(full["id"])
    config = config_with(redmine, tmp_path, proj,
                         "completeness: {required: [impact, urgency, description]}\n")

    sync(redmine, config)
    snap = snapshot(redmine, proj)
    assert "sla-needs-info" in snap[bid]["SLA labels"]
    assert "sla-needs-info" not in snap[fid]["SLA labels"]
    (journal,) = marked(redmine, bid, "needs-info")
    # the tracker's own name (cf:Urgency -> "Urgency"), not the normalized "urgency"
    assert "missing Urgency (required for every ticket)" in journal["notes"]
    assert not marked(redmine, fid, "needs-info")
    journals = {i: journal_count(redmine, i) for i in (bid, fid)}

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == []
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in (bid, fid)} == journals

    # the customer fills it in: the label goes, the note is not posted again
    s.update_issue(bid, custom_fields=[{"id": urgency, "value": "Job stopped"}])
    sync(redmine, config)
    assert "sla-needs-info" not in snapshot(redmine, proj)[bid]["SLA labels"]
    assert len(marked(redmine, bid, "needs-info")) == 1
