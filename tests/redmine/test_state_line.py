"""write.state and the human deadline format against the real Redmine: the line and the
deadlines land in text custom fields, read back equal, and a second sync writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tracker_bridge.plan import human_time
from tracker_bridge.plugins._http import parse_utc

from .conftest import POLICY, RedmineEnv, tracker_section
from .test_sync_e2e import journal_count, snapshot, sync

pytestmark = pytest.mark.redmine


def test_the_state_line_and_human_deadlines(redmine: RedmineEnv, tmp_path: Path) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    s = redmine.server
    proj = redmine.project("state")
    prio = s.ids("issue_priorities")
    plan_cf = {"id": redmine.fields["Support plan"], "value": "premium"}
    issue = s.create_issue(proj, "Calendar unavailable for all users",
                           priority_id=prio["Normal"], custom_fields=[plan_cf])
    iid = int(issue["id"])
    section = tracker_section(redmine, [proj])
    section["write"] = {**section["write"], "state": "cf:SLA state",
                        "deadline_format": "human", "timezone": "Europe/London"}
    config = tmp_path / "tracker-bridge.yaml"
    config.write_text(yaml.safe_dump({"policy": str(POLICY),
                                      "state": str(tmp_path / "state.sqlite"),
                                      "trackers": [section]}, sort_keys=False))
    first = sync(redmine, config)
    assert first["writes"]["tickets"] == 1
    got = snapshot(redmine, proj)[iid]
    # premium, critical (the "calendar unavailable" override): always, 30m / 4h
    created = parse_utc(issue["created_on"])
    london = ZoneInfo("Europe/London")
    due_resp = human_time(created + timedelta(minutes=30), london)
    due_res = human_time(created + timedelta(hours=4), london)
    assert got["SLA response due"] == due_resp
    assert got["SLA resolution due"] == due_res
    assert got["SLA state"] in (
        f"response due {human_time(created + timedelta(minutes=30), london, year=False)}"
        f" · resolution due {human_time(created + timedelta(hours=4), london, year=False)}",
        # a slow machine: 75% of the 30m passed before the sync
        f"response at risk, due "
        f"{human_time(created + timedelta(minutes=30), london, year=False)}"
        f" · resolution due {human_time(created + timedelta(hours=4), london, year=False)}")
    journals = journal_count(redmine, iid)
    second = sync(redmine, config)
    if got["SLA state"].startswith("response due"):
        # nothing changed unless the at-risk instant came in between
        assert second["writes"]["tickets"] in (0, 1)
    assert journal_count(redmine, iid) - journals == second["writes"]["tickets"]
    third = sync(redmine, config)
    assert third["writes"]["tickets"] == 0 or "at risk" in snapshot(redmine, proj)[iid][
        "SLA state"]
