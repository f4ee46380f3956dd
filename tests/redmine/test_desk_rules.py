"""The desk rules (docs/policy.md, "Desk rules") end to end: ``tracker-bridge sync --once``
against the real Redmine, in a project of each test's own, with the example policy plus the
rule. Each rule: its label written, its note posted once, a second sync writing nothing
(``updated_on`` and the journals unchanged: any PUT moves ``updated_on`` on Redmine)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker_bridge.plugins._http import parse_utc

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


#: a policy of its own for the closure test: every clock on `always`, so that a reminder a few
#: seconds of working time after the resolution is due whatever the hour the test runs at (the
#: labels are among the example policy's, which the Redmine labels field offers)
CLOSURE_POLICY = """
name: closure-e2e
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed, Rejected]}
classes:
  medium: {response: 1bd, resolution: 5bd}
default_class: medium
confirmed_closure: {remind_after: 5s}
"""


def test_confirmed_closure_reminds_once_and_labels_a_close_by_support(
        redmine: RedmineEnv, tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("desk-closure")
    status = s.ids("issue_statuses")
    waiting = s.create_issue(proj, "Report totals are off by one")
    closed = s.create_issue(proj, "Printer tray not detected")
    wid, cid = int(waiting["id"]), int(closed["id"])

    def as_agent(iid: int, **attrs: Any) -> None:  # support acts as tb-agent, not the reporter
        r = s.session().put(f"{redmine.url}/issues/{iid}.json", timeout=30,
                            headers={"X-Redmine-Switch-User": "tb-agent"},
                            json={"issue": attrs})
        assert r.status_code == 204, r.text[:300]

    as_agent(wid, status_id=status["Resolved"], notes="Fixed in the nightly build.")
    as_agent(cid, status_id=status["Resolved"])
    as_agent(cid, status_id=status["Closed"])
    resolved_at = parse_utc(s.get_issue(wid, journals=False)["updated_on"])
    policy = tmp_path / "policy.yaml"
    policy.write_text(CLOSURE_POLICY, encoding="utf-8")
    doc = {"policy": str(policy), "state": str(tmp_path / "state.sqlite"),
           # the tickets are resolved and closed before the first sync: not adopted, judged
           "trackers": [tracker_section(redmine, [proj], adopt_closed=False)]}
    config = tmp_path / "tracker-bridge.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))

    # the reminder is due 5 s of working time (`always`) after the resolution journal; the
    # bridge reads now from this machine's clock, which Redmine shares
    due = resolved_at + timedelta(seconds=6)
    while datetime.now(UTC) < due:
        time.sleep(0.5)

    sync(redmine, config)
    snap = snapshot(redmine, proj)
    assert "sla-closed-unconfirmed" in snap[cid]["SLA labels"]
    assert "sla-closed-unconfirmed" not in snap[wid]["SLA labels"]
    (reminder,) = [j for j in s.get_issue(wid)["journals"]
                   if "[tracker-bridge:note=confirm-reminder:" in (j.get("notes") or "")]
    assert "will not be closed until you confirm" in reminder["notes"]
    assert not [j for j in s.get_issue(cid)["journals"]
                if "note=confirm-reminder:" in (j.get("notes") or "")]
    journals = {i: journal_count(redmine, i) for i in (wid, cid)}

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == [], second["diffs"]
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in (wid, cid)} == journals


def test_an_enhancement_request_loses_its_resolution_deadline_and_is_labelled(
        redmine: RedmineEnv, tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("desk-categories")
    prio = s.ids("issue_priorities")
    category = redmine.fields["Incident category"]
    enh = s.create_issue(proj, "Let pathways be copied between sites", priority_id=prio["High"],
                         custom_fields=[{"id": category, "value": "Enhancement request"}])
    inc = s.create_issue(proj, "Pathway copy fails", priority_id=prio["High"],
                         custom_fields=[{"id": category, "value": "Support incident"}])
    eid, iid = int(enh["id"]), int(inc["id"])
    # the example policy as it is (categories on); the category field mapped
    section = tracker_section(redmine, [proj])
    section["fields"]["category"] = "cf:Incident category"
    doc = {"policy": str(POLICY), "state": str(tmp_path / "state.sqlite"),
           "trackers": [section]}
    config = tmp_path / "tracker-bridge.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))

    sync(redmine, config)
    snap = snapshot(redmine, proj)
    assert "sla-enhancement" in snap[eid]["SLA labels"] and "sla-high" in snap[eid]["SLA labels"]
    assert not snap[eid]["SLA resolution due"]         # no resolution target
    assert snap[eid]["SLA response due"]               # but it is to be answered
    assert "sla-enhancement" not in snap[iid]["SLA labels"]
    assert snap[iid]["SLA resolution due"]
    journals = {i: journal_count(redmine, i) for i in (eid, iid)}

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == [], second["diffs"]
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in (eid, iid)} == journals


#: 5.0 left the n-3 window when 6.0 came out and has no extended support here: EOSL today
RELEASE_POLICY = """
name: releases-e2e
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed, Rejected]}
classes:
  medium: {response: 1bd, resolution: 5bd}
default_class: medium
releases:
  list:
    - {version: "5.0", date: 2025-01-06}
    - {version: "5.1", date: 2025-04-07}
    - {version: "5.2", date: 2025-07-07}
    - {version: "5.3", date: 2025-10-06}
    - {version: "6.0", date: 2026-01-05}
  extended_days: 0
  upgrade: See the upgrade guide.
"""


def test_an_eosl_version_stops_the_clocks_with_one_upgrade_note(redmine: RedmineEnv,
                                                                tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("desk-releases")
    versions = {}
    for name in ("5.0.2", "6.0.1"):  # Redmine's own versions (the `fixed_version` field)
        r = s.session().post(f"{redmine.url}/projects/{proj}/versions.json", timeout=30,
                             json={"version": {"name": name}})
        assert r.status_code == 201, r.text[:300]
        versions[name] = int(r.json()["version"]["id"])
    old = s.create_issue(proj, "Pathway list is slow", fixed_version_id=versions["5.0.2"])
    new = s.create_issue(proj, "Pathway list is slow too", fixed_version_id=versions["6.0.1"])
    oid, nid = int(old["id"]), int(new["id"])
    policy = tmp_path / "policy.yaml"
    policy.write_text(RELEASE_POLICY, encoding="utf-8")
    doc = {"policy": str(policy), "state": str(tmp_path / "state.sqlite"),
           "trackers": [tracker_section(redmine, [proj])]}
    config = tmp_path / "tracker-bridge.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))

    sync(redmine, config)
    snap = snapshot(redmine, proj)
    assert "sla-release-eosl" in snap[oid]["SLA labels"]
    assert not snap[oid]["SLA response due"] and not snap[oid]["SLA resolution due"]
    (journal,) = marked(redmine, oid, "eosl:5.0")
    assert "upgrade to the current release 6.0. See the upgrade guide." in journal["notes"]
    assert "sla-release-full" in snap[nid]["SLA labels"]
    assert snap[nid]["SLA response due"] and not marked(redmine, nid, "eosl:6.0")
    journals = {i: journal_count(redmine, i) for i in (oid, nid)}

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == [], second["diffs"]
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in (oid, nid)} == journals


def test_an_unregistered_reporter_is_labelled_with_one_note(redmine: RedmineEnv,
                                                            tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("desk-contacts")
    customer = redmine.fields["Customer"]
    trust = [{"id": customer, "value": "Example Trust"}]
    # the admin (Redmine Admin) reports one; the registered contact (Alex Agent) the other
    stranger = s.create_issue(proj, "Pathway export fails", custom_fields=trust)
    r = s.session().post(f"{redmine.url}/issues.json", timeout=30,
                         headers={"X-Redmine-Switch-User": "tb-agent"},
                         json={"issue": {"project_id": proj, "subject": "Export slow",
                                         "custom_fields": trust}})
    assert r.status_code == 201, r.text[:300]
    sid, rid = int(stranger["id"]), int(r.json()["issue"]["id"])
    reporter = stranger["author"]["name"]
    config = config_with(redmine, tmp_path, proj, "")
    # the example policy's contacts block, with this Redmine's registered contact
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace(
        "contacts: [Priya Shah, Tom Reid, Ana Lopes]", "contacts: [Alex Agent]"),
        encoding="utf-8")
    doc = yaml.safe_load(config.read_text())
    doc["trackers"][0]["fields"]["customer"] = "cf:Customer"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))

    sync(redmine, config)
    snap = snapshot(redmine, proj)
    assert "sla-unregistered-contact" in snap[sid]["SLA labels"]
    assert "sla-unregistered-contact" not in snap[rid]["SLA labels"]
    key = "unregistered:" + reporter.replace(" ", "-")
    (journal,) = marked(redmine, sid, key)
    assert f"{reporter} is not a registered technical contact of Example Trust" in journal["notes"]
    assert not [j for j in s.get_issue(rid)["journals"]
                if "note=unregistered:" in (j.get("notes") or "")]
    journals = {i: journal_count(redmine, i) for i in (sid, rid)}

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == [], second["diffs"]
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in (sid, rid)} == journals
