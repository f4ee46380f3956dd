"""The demo shows what it claims (README: `make demo`), against the real Redmine.

The demo's seed (examples/demo/demo.py) runs into a project of this test's own (the demo's
tracker, fields and people are shared with a demo a user may have open, and are set up
idempotently), then one ``tracker-bridge sync --once`` with the demo's config pointed at it.
Checked over REST: the tickets are the customer's and the replies the agent's, the resolved
ticket's KB note carries the agent's workaround, the issues show the demo's custom fields
only (not the test suite's), deadlines are written in the human format and the state line is
there, and the project's default issue list shows those columns. The project is deleted
afterwards.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import yaml

from .server import RedmineServer

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"

#: 'Tue 15 Dec 2026 17:30 GMT' (docs/config.md, deadline_format: human, Europe/London)
HUMAN = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} (GMT|BST)$")


def _demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tb_demo", DEMO / "demo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return _demo_module()


@pytest.fixture(scope="module")
def seeded(redmine_server: RedmineServer, demo: ModuleType,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo seeded into a project of this module's own, and one sync over it."""
    import secrets

    tmp = tmp_path_factory.mktemp("demo")
    project = f"tbdemo-{secrets.token_hex(3)}"
    server = redmine_server
    ids = demo.seed(server, state=tmp / "demo-state.sqlite", project=project)
    try:
        key = server.api_key()
        (tmp / "redmine-api-key").write_text(key + "\n")
        cfg = yaml.safe_load((DEMO / "tracker-bridge.yaml").read_text())
        cfg["policy"] = str((DEMO / cfg["policy"]).resolve())
        cfg["state"] = str(tmp / "demo-state.sqlite")
        tc = cfg["trackers"][0]
        tc["url"] = server.url
        tc["projects"] = [project]
        config = tmp / "tracker-bridge.yaml"
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        exe = shutil.which("tracker-bridge")
        cmd = [exe] if exe else [sys.executable, "-c",
                                 "from tracker_bridge.cli import main; main()"]
        proc = subprocess.run([*cmd, "sync", "--once", "--config", str(config)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        yield {"server": server, "key": key, "project": project, "ids": ids, "sync": proc.stdout,
               "config": config, "state": tmp / "demo-state.sqlite", "cmd": cmd}
    finally:
        s = server.session()
        s.delete(f"{server.url}/projects/{project}.json", timeout=120)


def _issues(seeded: dict[str, Any]) -> list[dict[str, Any]]:
    server: RedmineServer = seeded["server"]
    return [server.get_issue(i) for i in seeded["ids"]]


def test_tickets_are_the_customers_and_replies_the_agents(seeded: dict[str, Any],
                                                          demo: ModuleType) -> None:
    issues = _issues(seeded)
    assert len(issues) == len(demo.CASES)
    assert {i["author"]["name"] for i in issues} == {demo.CUSTOMER.name}
    human_journals = [(j["user"]["name"], j["notes"]) for i in issues
                      for j in i.get("journals") or ()
                      if j.get("notes") and "[tracker-bridge:" not in j["notes"]]
    by_agent = [n for who, n in human_journals if who == demo.AGENT.name]
    by_customer = [n for who, n in human_journals if who == demo.CUSTOMER.name]
    assert by_agent and by_customer
    assert {who for who, _ in human_journals} == {demo.AGENT.name, demo.CUSTOMER.name}


def test_kb_note_carries_the_agents_workaround(seeded: dict[str, Any],
                                               demo: ModuleType) -> None:
    issue_id, note = demo.kb_note(seeded["server"].url, seeded["key"],
                                  project=seeded["project"])
    assert issue_id in seeded["ids"]
    assert note is not None, seeded["sync"][-2000:]
    case = next(c for c in demo.CASES if c.subject == demo.SHOWCASE)
    workaround = next(n for _, who, st, n in reversed(case.steps) if who == demo.AGENT and n)
    after = note.split("Resolution / workaround:", 1)[1].strip().splitlines()[0]
    assert after == workaround
    assert "not recorded" not in note.split("Related solution", 1)[0]


def test_issues_show_the_demos_fields_only_with_human_deadlines(seeded: dict[str, Any],
                                                                demo: ModuleType) -> None:
    demo_fields = {s.name for s in demo.field_specs()}
    issues = _issues(seeded)
    for issue in issues:
        assert issue["tracker"]["name"] == demo.TRACKER
        assert {cf["name"] for cf in issue["custom_fields"]} == demo_fields, issue["id"]
    values = [{cf["name"]: cf.get("value") for cf in i["custom_fields"]} for i in issues]
    deadlines = [v[f] for v in values for f in (demo.RESPONSE_DUE, demo.RESOLUTION_DUE)
                 if v.get(f)]
    assert len(deadlines) >= 5
    assert all(HUMAN.match(d) for d in deadlines), deadlines
    states = [v[demo.SLA_STATE] for v in values if v.get(demo.SLA_STATE)]
    assert len(states) == len(issues)
    assert any("breached" in st for st in states) and any("paused" in st for st in states)


def test_project_enables_only_the_demos_tracker_and_fields(seeded: dict[str, Any],
                                                           demo: ModuleType) -> None:
    server: RedmineServer = seeded["server"]
    s = server.session()
    demo_fields = [f.name for f in demo.field_specs()]
    p = s.get(f"{server.url}/projects/{seeded['project']}.json", timeout=30,
              params={"include": "trackers,issue_custom_fields"}).json()["project"]
    assert [t["name"] for t in p["trackers"]] == [demo.TRACKER]
    assert [f["name"] for f in p["issue_custom_fields"]] == demo_fields
    defs = s.get(f"{server.url}/custom_fields.json", timeout=30).json()["custom_fields"]
    ours = {d["name"]: d for d in defs if d["name"] in demo_fields}
    assert len(ours) == len(demo_fields)
    for d in ours.values():
        assert [t["name"] for t in d["trackers"]] == [demo.TRACKER]
    # nobody else's field is on the demo's tracker
    assert not [d["name"] for d in defs if d["name"] not in ours
                and demo.TRACKER in [t["name"] for t in d.get("trackers") or ()]]
    # the default issue list (no query string) shows the SLA columns, in the demo's order
    page = requests.get(f"{server.url}/projects/{seeded['project']}/issues", timeout=60).text
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    shown = re.findall(r'<th[^>]*class="([a-z_0-9]+)', head)
    ids = {d["name"]: d["id"] for d in ours.values()}
    want = [f"cf_{ids[c]}" if c in ids else c for c in demo.COLUMNS]
    assert [c for c in shown if c in want] == want
    assert not [c for c in shown if c.startswith("cf_") and c not in want]


def test_report_on_the_demo_store_in_every_format(seeded: dict[str, Any],
                                                  tmp_path: Path) -> None:
    """`tracker-bridge report` on the store the demo's sync left, its numbers cross-checked
    against the verdicts the store recorded (the latest one of each ticket)."""
    import json
    import sqlite3

    def report(*args: str) -> str:
        proc = subprocess.run([*seeded["cmd"], "report", "--config", str(seeded["config"]),
                               *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    doc = json.loads(report("--format", "json"))
    assert sum(r["tickets"] for r in doc["rows"]) == len(seeded["ids"])
    db = sqlite3.connect(seeded["state"])
    latest = db.execute(
        "SELECT vm.metric, vm.state, count(*) FROM verdict_metrics vm JOIN verdicts v "
        "ON v.id = vm.verdict_id WHERE v.id IN (SELECT max(id) FROM verdicts GROUP BY "
        "tracker, key) AND vm.metric IN ('response', 'resolution') "
        "GROUP BY vm.metric, vm.state").fetchall()
    db.close()
    stored: dict[tuple[str, str], int] = {}
    for metric, state, n in latest:
        bucket = state if state in ("met", "breached") else \
            "running" if state in ("running", "at_risk", "paused") else None
        if bucket:
            stored[(metric, bucket)] = stored.get((metric, bucket), 0) + n
    counted = {(metric, k): 0 for metric in ("response", "resolution")
               for k in ("met", "breached", "running")}
    for row in doc["rows"]:
        for metric in ("response", "resolution"):
            for k in ("met", "breached", "running"):
                counted[(metric, k)] += row["metrics"][metric][k]
    assert {k: v for k, v in counted.items() if v} == stored
    assert any(v for (_, k), v in counted.items() if k == "met")  # the resolved ticket
    classes = {r["class"] for r in doc["rows"]}
    text = report("--format", "text")
    csv_text = report("--format", "csv")
    assert all(c in text and c in csv_text for c in classes)
    assert csv_text.splitlines()[0].startswith("month,")
    html = tmp_path / "report.html"
    report("--format", "html", "-o", str(html))
    page = html.read_text(encoding="utf-8")
    assert "<svg" in page and "<script" not in page
