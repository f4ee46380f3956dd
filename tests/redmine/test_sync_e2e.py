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
