"""Smoke test: benchmarks/core_bench.py --quick runs and prints every figure.

Only the presence and shape of each figure's line is checked, never a value: timings depend
on the machine and its load.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "core_bench.py"
HAVE_BUSINESSTIME = importlib.util.find_spec("businesstime") is not None

NUMBER = r"[\d,]+(?:\.\d+)?"
FIGURE = r"\s+{impl}\s+" + NUMBER + r" ops/s\s+" + NUMBER + r" µs/op\s+\[" + NUMBER + r" \.\. " + NUMBER + r"\]"


def figure(label: str, impl: str) -> re.Pattern[str]:
    return re.compile(r"^  " + re.escape(label) + FIGURE.format(impl=re.escape(impl)), re.M)


def test_quick_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout

    for line in ("machine: ", "python: ", "packages: "):
        assert re.search("^" + line + r"\S", out, re.M), f"no {line!r} line in:\n{out}"

    operations = ["add 30m", "add 8h", "add 15bd", "working 6 months"]
    expected = [(op, impl) for op in operations for impl in ("ours, cold", "ours, warm")]
    expected += [
        ("cold part: holidays", "1 year, ours"),
        ("cold part: year table", "1 year, ours"),
        ("verdict", "ours, cold"),
        ("verdict", "ours, warm"),
    ]
    if HAVE_BUSINESSTIME:
        expected += [(op, "businesstime") for op in operations]
        expected += [
            ("verdict calendar calls", "ours, warm"),
            ("verdict calendar calls", "businesstime"),
        ]
    for label, impl in expected:
        assert figure(label, impl).search(out), f"no figure for {label} / {impl} in:\n{out}"

    if HAVE_BUSINESSTIME:
        for op in [*operations, "verdict calendar calls"]:
            assert re.search(
                r"^  " + re.escape(op) + r".*\s(\d+)/(\d+) equal", out, re.M
            ), f"no agreement count for {op} in:\n{out}"

    assert re.search(r"^memory: .* KiB held, [\d,]+ KiB peak", out, re.M), out
