"""``tracker-bridge report`` on the store of a real sync against the real Redmine 5: the
numbers cross-checked against the stored verdicts, the issues' links and subjects as Redmine
gave them, every format."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .conftest import KEY_ENV, RedmineEnv
from .test_sync_e2e import sync, write_config

pytestmark = pytest.mark.redmine

HOSTILE = '<b onmouseover="alert(1)">Calendar</b> & <script>x()</script>'


def report(env: RedmineEnv, config: Path, *args: str) -> str:
    exe = shutil.which("tracker-bridge")
    cmd = [exe] if exe else [sys.executable, "-c", "from tracker_bridge.cli import main; main()"]
    proc = subprocess.run([*cmd, "report", "--config", str(config), *args],
                          env={**os.environ, KEY_ENV: env.key}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_report_on_a_real_redmine_store(redmine: RedmineEnv, tmp_path: Path) -> None:
    s = redmine.server
    proj = redmine.project("report")
    prio = s.ids("issue_priorities")
    status = s.ids("issue_statuses")
    premium = {"id": redmine.fields["Support plan"], "value": "premium"}
    made = [
        s.create_issue(proj, HOSTILE, priority_id=prio["Urgent"], custom_fields=[premium]),
        s.create_issue(proj, "Report fails for one user", priority_id=prio["High"]),
        s.create_issue(proj, "Password reset", priority_id=prio["Low"]),
        s.create_issue(proj, "Letter footer blank", priority_id=prio["Normal"]),
    ]
    ids = [int(i["id"]) for i in made]
    # a status change out of New is the response; one is resolved, one waits on the customer
    s.update_issue(ids[1], status_id=status["In Progress"])
    s.update_issue(ids[2], status_id=status["Resolved"])
    s.update_issue(ids[3], status_id=status["Feedback"])
    config = write_config(redmine, tmp_path, proj)
    sync(redmine, config)
    s.update_issue(ids[2], status_id=status["In Progress"])  # reopened
    sync(redmine, config)

    doc = json.loads(report(redmine, config, "--format", "json"))
    month = datetime.now(UTC).strftime("%Y-%m")
    assert {r["month"] for r in doc["rows"]} <= {month, _previous(month)}
    assert sum(r["tickets"] for r in doc["rows"]) == 4
    assert sum(r["reopens"] for r in doc["rows"]) == 1

    # the same counts from the stored verdicts, by SQL (the latest verdict of each issue)
    db = sqlite3.connect(tmp_path / "state.sqlite")
    expect: dict[tuple[str, str, str], dict[str, int]] = {}
    for cls, plan, metric, state in db.execute(
            """SELECT v.class, v.plan, vm.metric, vm.state FROM verdict_metrics vm
               JOIN verdicts v ON v.id = vm.verdict_id
               WHERE v.id = (SELECT max(id) FROM verdicts w
                             WHERE w.tracker = v.tracker AND w.key = v.key)"""):
        c = expect.setdefault((cls, plan, metric), {"met": 0, "breached": 0, "running": 0})
        bucket = {"met": "met", "breached": "breached", "running": "running",
                  "at_risk": "running", "paused": "running"}.get(state)
        if bucket:
            c[bucket] += 1
    got: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in doc["rows"]:
        for name, m in r["metrics"].items():
            c = got.setdefault((r["class"], r["plan"], name),
                               {"met": 0, "breached": 0, "running": 0})
            for k in c:
                c[k] += m[k]
    assert got == expect
    # the response of the three issues whose status left New within seconds is met
    responded = sum(m["met"] for (_c, _p, name), m in got.items() if name == "response")
    assert responded >= 3

    # links and subjects as Redmine gave them
    links = {str(x["key"]): (x["url"], x["subject"]) for x in doc["slowest"]}
    assert links[str(ids[0])] == (f"{redmine.url}/issues/{ids[0]}", HOSTILE)

    lines = list(csv.DictReader(io.StringIO(report(redmine, config, "--format", "csv"))))
    assert len(lines) == sum(1 for r in doc["rows"] for m in r["metrics"].values()
                             if m["met"] + m["breached"] + m["running"])
    text = report(redmine, config)
    tracker = doc["rows"][0]["tracker"]
    assert "SLA compliance" in text and f"{tracker}:{ids[0]}" in text
    html = report(redmine, config, "--format", "html")
    assert HOSTILE not in html and "<script>" not in html
    assert f'href="{redmine.url}/issues/{ids[0]}"' in html


def _previous(month: str) -> str:
    y, m = (int(x) for x in month.split("-"))
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"
