"""The holiday cache: the same dates as the holidays package, computed once per (country,
year) across runs, and never in the way (damaged, unreadable or unwritable: computed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from tracker_bridge.core.calendar import holiday_dates
from tracker_bridge.holidaycache import HolidayCache

ROOT = Path(__file__).resolve().parents[2]


def test_same_dates_and_computed_once_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    first = HolidayCache(path)
    assert first("GB/ENG", 2026) == frozenset(holiday_dates("GB/ENG", 2026))
    assert date(2026, 12, 25) in first("GB/ENG", 2026) and first.computed == 1
    again = HolidayCache(path)  # another run
    assert again("GB/ENG", 2026) == first("GB/ENG", 2026)
    assert again.computed == 0
    again("IE", 2027)
    assert again.computed == 1 and "IE|2027" in json.loads(path.read_text())


def test_a_damaged_or_huge_file_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text("{not json")
    c = HolidayCache(path)
    assert date(2026, 1, 1) in c("GB/ENG", 2026) and c.computed == 1
    path.write_text(json.dumps({"GB/ENG|2026": ["not a date"]}))
    c = HolidayCache(path)
    assert date(2026, 1, 1) in c("GB/ENG", 2026) and c.computed == 1


def test_no_place_to_write_is_no_problem(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        c = HolidayCache(ro / "sub" / "h.json")
        assert date(2026, 1, 1) in c("GB/ENG", 2026)
        assert date(2026, 1, 1) in HolidayCache(None)("GB/ENG", 2026)
    finally:
        os.chmod(ro, 0o700)


PROBE = """
import sys
from tracker_bridge.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("holidays" in sys.modules, file=sys.stderr)
"""


def test_a_second_deadline_run_does_not_load_the_holidays_package(tmp_path: Path) -> None:
    env = {**os.environ, "TRACKER_BRIDGE_CACHE_DIR": str(tmp_path)}
    args = [sys.executable, "-c", PROBE, "deadline", "--policy",
            str(ROOT / "examples/policies/care-pathway.yaml"), "--class", "high",
            "--start", "2026-03-02T19:30:00Z"]
    runs = [subprocess.run(args, capture_output=True, text=True, env=env, check=True,
                           timeout=120) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.startswith("2026-03-03T17:00")
    assert runs[0].stderr.strip().endswith("True")   # computed, then kept
    assert runs[1].stderr.strip().endswith("False")  # read back
