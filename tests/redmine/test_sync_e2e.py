"""``tracker-bridge sync --once`` end to end against a real Redmine (issue 3, item 5).

The command runs as a user runs it (the console script, a config file, the API key in the
environment); every assertion reads Redmine back over REST.

"Writes nothing" is checked through ``updated_on``: on Redmine any PUT moves it, even an
empty one (test_backend.test_a_noop_put_bumps_updated_on_here), so unchanged timestamps on
every issue of the project prove that no write reached Redmine at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker_bridge.plugins._http import parse_utc

from .conftest import BULK_COUNT, KEY_ENV, POLICY, RedmineEnv, tracker_section

pytestmark = pytest.mark.redmine


def write_config(env: RedmineEnv, tmp: Path, project: str) -> Path:
    section = tracker_section(env, [project])
    doc = {"policy": str(POLICY), "state": str(tmp / "state.sqlite"), "trackers": [section]}
    path = tmp / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sync(env: RedmineEnv, config: Path, *extra: str) -> dict[str, Any]:
    exe = shutil.which("tracker-bridge")
    cmd = [exe] if exe else [sys.executable, "-c",
                             "from tracker_bridge.cli import main; main()"]
    proc = subprocess.run([*cmd, "sync", "--once", "--json", "--config", str(config), *extra],
                          env={**os.environ, KEY_ENV: env.key}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert env.key not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    [tracker] = report["trackers"]
    assert tracker["errors"] == [], tracker["errors"]
    return dict(tracker)


def snapshot(env: RedmineEnv, project: str) -> dict[int, dict[str, Any]]:
    """Every issue of the project (list endpoint, 100 a page): updated_on and custom fields."""
    s = env.server.session()
    out: dict[int, dict[str, Any]] = {}
    offset = 0
    while True:
        page = s.get(f"{env.url}/issues.json", timeout=30, params={
            "project_id": project, "status_id": "*", "sort": "id", "limit": 100,
            "offset": offset}).json()["issues"]
        for i in page:
            out[int(i["id"])] = {"updated_on": i["updated_on"],
                                 **{cf["name"]: cf.get("value") for cf in i["custom_fields"]}}
        if len(page) < 100:
            return out
        offset += 100


def journal_count(env: RedmineEnv, iid: int) -> int:
    return len(env.server.get_issue(iid)["journals"])


def test_sync_writes_state_once_and_keeps_what_people_change(redmine: RedmineEnv,
                                                            tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("e2e")
    prio = s.ids("issue_priorities")
    status = s.ids("issue_statuses")
    plan_cf = {"id": redmine.fields["Support plan"], "value": "premium"}
    calendar = s.create_issue(proj, "Calendar unavailable for all users",
                              priority_id=prio["Normal"], custom_fields=[plan_cf])
    report = s.create_issue(proj, "Monthly activity report fails for one user",
                            priority_id=prio["High"])
    password = s.create_issue(proj, "Password reset for a locked-out clinician",
                              priority_id=prio["Low"])
    waiting = s.create_issue(proj, "Referral letters print with a blank footer",
                             priority_id=prio["Normal"])
    ids = {k: int(v["id"]) for k, v in {"calendar": calendar, "report": report,
                                        "password": password, "waiting": waiting}.items()}
    config = write_config(redmine, tmp_path, proj)

    # -- first sync: every ticket gets its SLA state --------------------------------------------
    first = sync(redmine, config)
    assert first["fetched"] == 4 and first["evaluated"] == 4
    assert first["writes"]["tickets"] == 4
    snap = snapshot(redmine, proj)
    labels = {k: set(snap[i]["SLA labels"]) for k, i in ids.items()}
    assert "sla-critical" in labels["calendar"]  # the "calendar unavailable" override
    assert "sla-high" in labels["report"]
    assert "sla-low" in labels["password"]
    assert "sla-medium" in labels["waiting"]
    # premium plan, critical class: the `always` calendar, so due = created + 30m / + 4h
    created = parse_utc(calendar["created_on"])
    assert parse_utc(snap[ids["calendar"]]["SLA response due"]) == created + timedelta(minutes=30)
    assert parse_utc(snap[ids["calendar"]]["SLA resolution due"]) == created + timedelta(hours=4)
    for i in ids.values():
        assert snap[i]["SLA response due"] and snap[i]["SLA resolution due"]
    journals = {i: journal_count(redmine, i) for i in ids.values()}

    # -- second sync: nothing to write, and nothing is written ----------------------------------
    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == []
    assert snapshot(redmine, proj) == snap
    assert {i: journal_count(redmine, i) for i in ids.values()} == journals

    # -- people edit in between -----------------------------------------------------------------
    labels_cf = redmine.fields["SLA labels"]
    s.update_issue(ids["report"], custom_fields=[
        {"id": labels_cf, "value": [*snap[ids["report"]]["SLA labels"], "customer-vip"]}])
    s.update_issue(ids["waiting"], status_id=status["Feedback"],
                   notes="Could you send us a sample letter?")
    s.update_issue(ids["password"], priority_id=prio["Urgent"])

    third = sync(redmine, config)
    assert third["fetched"] >= 3
    snap3 = snapshot(redmine, proj)
    after = {k: set(snap3[i]["SLA labels"]) for k, i in ids.items()}
    assert after["report"] == labels["report"] | {"customer-vip"}   # the person's label stays
    assert "sla-paused" in after["waiting"]                          # Feedback pauses the clocks
    assert not snap3[ids["waiting"]]["SLA resolution due"]          # paused: no deadline
    assert "sla-critical" in after["password"] and "sla-low" not in after["password"]
    assert snap3[ids["password"]]["SLA response due"] != snap[ids["password"]]["SLA response due"]
    issue = s.get_issue(ids["waiting"])
    assert issue["status"]["name"] == "Feedback"  # the bridge never touches the status
    assert any(j["notes"] == "Could you send us a sample letter?" for j in issue["journals"])
    assert s.get_issue(ids["password"], journals=False)["priority"]["name"] == "Urgent"

    # -- and again nothing to write -------------------------------------------------------------
    fourth = sync(redmine, config)
    assert fourth["writes"]["tickets"] == 0
    assert snapshot(redmine, proj) == snap3


def last_journal_at(env: RedmineEnv, iid: int) -> Any:
    """When the issue's newest journal was written (the admin reads journals newest first)."""
    journals = env.server.get_issue(iid)["journals"]
    return parse_utc(max(journals, key=lambda j: int(j["id"]))["created_on"])


def stored_metric(state: Path, key: int, metric: str) -> dict[str, Any]:
    """The last recorded verdict's ``metric`` for issue ``key`` (the state store's row)."""
    import sqlite3

    db = sqlite3.connect(state)
    db.row_factory = sqlite3.Row
    row = db.execute(
        "SELECT m.* FROM verdicts v JOIN verdict_metrics m ON m.verdict_id = v.id "
        "WHERE v.key = ? AND m.metric = ? ORDER BY v.id DESC LIMIT 1",
        (str(key), metric)).fetchone()
    db.close()
    assert row is not None, f"no {metric} recorded for issue {key}"
    return dict(row)


def test_a_person_s_escalation_request_starts_escalation_response(redmine: RedmineEnv,
                                                                  tmp_path: Path) -> None:
    # care-pathway.yaml: `requested_label: escalation-requested`, `request_response: 1bd`
    # (handbook 000: the incident owner contacts the customer within one business day)
    s = redmine.server
    proj = redmine.project("askesc")
    issue = s.create_issue(proj, "Appointment reminders not sent",
                           priority_id=s.ids("issue_priorities")["Normal"])
    iid = int(issue["id"])
    config = write_config(redmine, tmp_path, proj)
    state = tmp_path / "state.sqlite"
    sync(redmine, config)
    assert stored_metric(state, iid, "escalation_response")["state"] == "not_started"

    # the customer (the reporter) asks for escalation by adding the label in the web form
    labels_cf = redmine.fields["SLA labels"]
    current = snapshot(redmine, proj)[iid]["SLA labels"]
    s.update_issue(iid, custom_fields=[{"id": labels_cf,
                                        "value": [*current, "escalation-requested"]}])
    asked = last_journal_at(redmine, iid)
    sync(redmine, config)
    m = stored_metric(state, iid, "escalation_response")
    assert m["state"] in ("running", "at_risk") and m["stopped_at"] is None
    assert m["target_s"] == 8.5 * 3600  # one business day of Essentials' office calendar
    # the due instant is the request's instant plus one business day, never before it
    assert parse_utc(m["due"]) > asked
    labels = set(snapshot(redmine, proj)[iid]["SLA labels"])
    assert "escalation-requested" in labels          # the person's label is kept
    assert "sla-level-incident-owner" in labels      # the request raised the level by one

    # an agent's public reply answers the request: the metric stops at that journal
    r = s.session().put(f"{redmine.url}/issues/{iid}.json", timeout=30,
                        headers={"X-Redmine-Switch-User": "tb-agent"},
                        json={"issue": {"notes": "I am your incident owner; calling you now."}})
    assert r.status_code == 204, r.text[:300]
    answered = last_journal_at(redmine, iid)
    sync(redmine, config)
    m = stored_metric(state, iid, "escalation_response")
    assert m["state"] == "met"
    assert parse_utc(m["stopped_at"]) == answered


def test_sync_processes_150_tickets_in_one_project(redmine: RedmineEnv,
                                                   tmp_path: Path) -> None:
    proj = redmine.sync_project
    config = write_config(redmine, tmp_path, proj)
    first = sync(redmine, config)
    assert first["fetched"] == BULK_COUNT and first["evaluated"] == BULK_COUNT
    assert first["writes"]["tickets"] == BULK_COUNT
    snap = snapshot(redmine, proj)
    assert set(snap) == set(redmine.sync_ids)
    assert all(v["SLA labels"] and "sla-medium" in v["SLA labels"] for v in snap.values())
    assert all(v["SLA response due"] for v in snap.values())

    second = sync(redmine, config)
    assert second["writes"]["tickets"] == 0
    assert snapshot(redmine, proj) == snap  # not one PUT: no updated_on moved
