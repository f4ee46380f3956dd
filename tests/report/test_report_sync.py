"""``tracker-bridge report`` on a store a real sync wrote (memory backend): the hand-worked
numbers of tests/report/scenario.py, cross-checked against the stored verdicts, in every
format; bad input; the store is only read."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main
from tracker_bridge.plugins.memory import MemoryTracker

from .scenario import HOSTILE, run_scenario


@pytest.fixture(autouse=True)
def _fresh_memory():
    MemoryTracker.forget_all()
    yield
    MemoryTracker.forget_all()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return run_scenario(tmp_path)


def report(config: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["report", "--config", str(config), *args])
    return r.exit_code, r.output


def report_json(config: Path, *args: str) -> dict:
    code, out = report(config, "--format", "json", *args)
    assert code == 0, out
    return json.loads(out)


def by_key(doc: dict) -> dict:
    return {(r["month"], r["class"]): r for r in doc["rows"]}


def test_the_hand_worked_numbers(config: Path) -> None:
    doc = report_json(config)
    assert doc["goal"] == 0.8 and doc["policy"] == "report-desk"
    rows = by_key(doc)
    assert set(rows) == {("2026-02", "high"), ("2026-02", "low"), ("2026-03", "high")}
    feb = rows[("2026-02", "high")]
    # 1: answered after 30m, resolved after 2h; 2: answered after 90m, resolved after 10h
    assert feb["tickets"] == 2
    assert feb["metrics"] == {
        "response": {"met": 1, "breached": 1, "running": 0, "compliance": 0.5},
        "resolution": {"met": 1, "breached": 1, "running": 0, "compliance": 0.5}}
    assert feb["p50_s"] == {"response": 3600, "resolution": 21600}
    assert feb["p90_s"] == {"response": 5040, "resolution": 33120}
    low = rows[("2026-02", "low")]
    assert low["metrics"]["response"] == {"met": 1, "breached": 0, "running": 0,
                                          "compliance": 1.0}
    # no resolution target: not counted
    assert low["metrics"]["resolution"] == {"met": 0, "breached": 0, "running": 0,
                                            "compliance": None}
    mar = rows[("2026-03", "high")]
    # 4: answered after 20m, resolved, reopened; 5: unanswered for 7h at the second sync
    assert mar["metrics"]["response"] == {"met": 1, "breached": 1, "running": 0,
                                          "compliance": 0.5}
    assert mar["metrics"]["resolution"] == {"met": 0, "breached": 0, "running": 2,
                                            "compliance": None}
    # the latest verdict counts: 25200s (7h) at the second sync, not 21600s at the first
    assert mar["p50_s"]["response"] == 13200 and mar["p90_s"]["response"] == 22800
    assert mar["reopens"] == 1 and mar["reopened_tickets"] == 1
    assert mar["escalations"] == {"tickets": 1, "levels": {"manager": 1}, "tiers": {}}
    slow = [(s["key"], s["resolution"]["elapsed_s"]) for s in doc["slowest"]]
    assert slow == [("2", 36000), ("5", 25200), ("4", 21600), ("1", 7200)]


def test_counts_agree_with_the_stored_verdicts(config: Path) -> None:
    """An independent count: the latest verdict of each ticket in verdict_metrics, by SQL."""
    doc = report_json(config)
    db = sqlite3.connect(config.parent / "state.sqlite")
    latest = """SELECT substr(t.created, 1, 7), v.class, vm.metric, vm.state
                FROM verdict_metrics vm JOIN verdicts v ON v.id = vm.verdict_id
                JOIN tickets t ON t.tracker = v.tracker AND t.key = v.key
                WHERE v.id = (SELECT max(id) FROM verdicts w
                              WHERE w.tracker = v.tracker AND w.key = v.key)"""
    expect: dict = {}
    for month, cls, metric, state in db.execute(latest):
        bucket = {"met": "met", "breached": "breached", "running": "running",
                  "at_risk": "running", "paused": "running"}.get(state)
        counts = expect.setdefault((month, cls, metric),
                                   {"met": 0, "breached": 0, "running": 0})
        if bucket:
            counts[bucket] += 1
    got = {(r["month"], r["class"], name): {k: v for k, v in m.items() if k != "compliance"}
           for r in doc["rows"] for name, m in r["metrics"].items()}
    assert got == expect
    assert sum(r["tickets"] for r in doc["rows"]) == \
        db.execute("SELECT count(DISTINCT key) FROM verdicts").fetchone()[0] == 5


def test_the_store_records_what_reports_need(config: Path) -> None:
    db = sqlite3.connect(config.parent / "state.sqlite")
    rows = {k: (c, u, s, r) for k, c, u, s, r in
            db.execute("SELECT key, created, url, subject, reopens FROM tickets")}
    assert rows["4"] == ("2026-03-02T10:00:00.000000+00:00", "memory://desk/4",
                         "Calendar slow", 1)
    assert rows["5"][1:3] == ("https://tracker.example/issues/5?a=1&b=2", HOSTILE)
    assert {k: r[3] for k, r in rows.items()} == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}


def test_csv_is_the_json_one_line_per_row_and_metric(config: Path) -> None:
    doc = report_json(config)
    code, out = report(config, "--format", "csv")
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    # one line per row and counted metric (low's resolution has no target: no line)
    assert len(lines) == sum(1 for r in doc["rows"] for m in r["metrics"].values()
                             if m["met"] + m["breached"] + m["running"]) == 5
    for line in lines:
        row = by_key(doc)[(line["month"], line["class"])]
        m = row["metrics"][line["metric"]]
        assert (int(line["met"]), int(line["breached"]), int(line["running"])) == \
            (m["met"], m["breached"], m["running"])
        assert line["compliance"] == ("" if m["compliance"] is None else str(m["compliance"]))
        assert line["goal"] == "0.8"


def test_text_is_a_table_of_the_same_numbers(config: Path) -> None:
    code, out = report(config)
    assert code == 0
    assert "goal 80.0%" in out
    lines = [x.split() for x in out.splitlines()]
    feb = next(x for x in lines if x[:3] == ["2026-02", "desk", "high"])
    assert feb[4:10] == ["2", "response", "1", "1", "0", "50.0%"]
    assert any(x[:1] == ["desk:2"] for x in lines)  # the slowest ticket first


def test_since_until_and_tracker(config: Path) -> None:
    doc = report_json(config, "--since", "2026-03-01", "--until", "2026-04")
    assert [(r["month"], r["tickets"]) for r in doc["rows"]] == [("2026-03", 2)]
    assert doc["since"] == "2026-03-01" and doc["until"] == "2026-04-01"
    assert report_json(config, "--until", "2026-02-10")["rows"] == []
    assert len(report_json(config, "--tracker", "desk")["rows"]) == 3


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2026-02-30"], "--since: '2026-02-30' is not a day"),
    (["--until", "march"], "--until: 'march' is not a day"),
    (["--since", "2026-03-01", "--until", "2026-03-01"], "--until: 2026-03-01 is not after"),
    (["--tracker", "nope"], "no tracker named 'nope'"),
    (["--format", "pdf"], "'pdf' is not one of"),
])
def test_bad_arguments_exit_2_and_say_what(config: Path, args: list[str], message: str) -> None:
    code, out = report(config, *args)
    assert code == 2 and message in out


def test_a_missing_store_is_named_and_not_created(tmp_path: Path) -> None:
    from .scenario import write_config

    path = write_config(tmp_path)
    code, out = report(path)
    assert code == 2
    assert "no state store at" in out and "state.sqlite" in out
    assert not (tmp_path / "state.sqlite").exists()


def test_report_only_reads_the_store(config: Path) -> None:
    state = config.parent / "state.sqlite"
    db = sqlite3.connect(state)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()

    def digest() -> str:
        return hashlib.sha256(state.read_bytes()).hexdigest()

    before = digest()
    for fmt in ("text", "json", "csv", "html"):
        assert report(config, "--format", fmt)[0] == 0
    assert digest() == before


def test_a_store_from_before_v5_reports_from_first_sight(config: Path) -> None:
    state = config.parent / "state.sqlite"
    db = sqlite3.connect(state)
    for column in ("created", "url", "subject", "reopens"):
        db.execute(f"ALTER TABLE tickets DROP COLUMN {column}")
    db.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    db.commit()
    db.close()
    doc = report_json(config)
    # every ticket counts in the month of its first evaluation (March), without reopens
    assert [(r["month"], r["class"], r["tickets"]) for r in doc["rows"]] == [
        ("2026-03", "high", 4), ("2026-03", "low", 1)]
    assert all(r["reopens"] == 0 for r in doc["rows"])


def test_output_file(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, printed = report(config, "--json", "-o", str(out))
    assert code == 0 and printed == ""
    assert json.loads(out.read_text())["goal"] == 0.8


def test_other_commands_do_not_import_the_report_libraries() -> None:
    root = Path(__file__).resolve().parents[2]
    probe = ("import sys, json\nfrom tracker_bridge.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    policy = str(root / "examples/policies/care-pathway.yaml")
    out = subprocess.run([sys.executable, "-c", probe, "deadline", "--policy", policy,
                          "--class", "high", "--start", "2026-03-02T19:30:00Z"],
                         capture_output=True, text=True, cwd=root, timeout=120, check=False)
    modules = json.loads(out.stderr.strip().splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0] in ("matplotlib", "jinja2", "numpy")
             or m in ("tracker_bridge.compliance", "tracker_bridge.report_html")]
    assert heavy == []
