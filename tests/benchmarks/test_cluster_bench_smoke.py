"""Smoke test: benchmarks/cluster_bench.py --quick --no-pg runs and prints its figures.

Only the presence and shape of each line is checked, never a value: timings depend on the
machine and its load. The PostgreSQL phases (several daemons, kill -9) are left out here:
tests/cluster covers that behaviour, and they take minutes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cluster_bench.py"


def test_quick_run_without_postgresql_prints_the_parallel_figures() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-pg"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in ("machine: ", "python: ", "run: 12 trackers x 20 tickets"):
        assert re.search("^" + re.escape(line), out, re.M), f"no {line!r} line in:\n{out}"
    for label in ("trackers one after another (run_once over all):",
                  "a thread per tracker (Daemon):"):
        assert re.search(r"^  " + re.escape(label) + r"\s+\d+(\.\d+)? s$", out, re.M), out
    assert re.search(r"^  ratio sequential / parallel:\s+\d+\.\d+$", out, re.M), out
