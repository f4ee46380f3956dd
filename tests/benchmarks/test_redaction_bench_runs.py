"""Smoke test: benchmarks/redaction_bench.py runs on small sizes and prints every figure.

Only the presence and shape of each figure's line is checked, never a value: timings depend
on the machine and its load (the corpus figures themselves are held by
tests/core/test_redaction.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "redaction_bench.py"
sys.path.insert(0, str(SCRIPT.parent))

from redaction_bench import HOSTILE  # noqa: E402

NUMBER = r"[\d,]+(?:\.\d+)?"
FRACTION = r"\d+/\d+\s+" + NUMBER + "%"


def test_small_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "2000,20000"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout

    for line in ("machine: ", "python: ", "packages: ", "run: "):
        assert re.search("^" + line + r"\S", out, re.M), f"no {line!r} line in:\n{out}"

    for title in ("corpus: ", "holdout (written after the detector): "):
        assert re.search("^" + re.escape(title) + r"\d+ identifier lines", out, re.M), out
    for kind in ("nhs", "chi", "bsn", "ssn", "record_no", "dob", "postcode", "address", "phone",
                 "email", "name", "overall"):  # fmt: skip
        rows = re.findall(r"^  " + kind + r"\s+" + FRACTION + r"\s+" + FRACTION, out, re.M)
        assert len(rows) == 2, f"no recall / false-positive row for {kind} in:\n{out}"

    for size in ("2 KB", "20 KB"):
        assert re.search(
            r"^\s+" + size + r"\s+" + NUMBER + r" ms\s+" + NUMBER + " KB/s", out, re.M
        ), out

    assert re.search(r"^linear time: .* linear = ratio 10$", out, re.M), out
    for name, _ in HOSTILE:
        row = r"^  " + re.escape(name) + r"\s+" + NUMBER + r"s\s+" + NUMBER + r"s\s+" + NUMBER + "$"
        assert re.search(row, out, re.M), f"no linear-time row for {name} in:\n{out}"
