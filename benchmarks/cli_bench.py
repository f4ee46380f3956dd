"""How fast the command line starts: ``tracker-bridge deadline``, ``evaluate`` and
``check --policy`` against ``python -c "import yaml"``, as ratios measured in one run.

Each command runs in a fresh interpreter (``sys.executable -m tracker_bridge.cli ...``, so no
launcher script or shim is counted), the commands alternating round by round so that a busy
machine slows them alike; the figure per command is its best round (the least disturbed) and
its median. Run from the repository root::

    python benchmarks/cli_bench.py [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = str(ROOT / "examples/policies/care-pathway.yaml")
TICKET = str(ROOT / "examples/tickets/new-high.json")
CLI = [sys.executable, "-m", "tracker_bridge.cli"]

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import yaml'": [sys.executable, "-c", "import yaml"],
    "deadline": [*CLI, "deadline", "--policy", POLICY, "--class", "high", "--start",
                 "2026-03-02T19:30:00+00:00"],
    "evaluate": [*CLI, "evaluate", "--policy", POLICY, TICKET, "--now",
                 "2026-03-02T10:50:00+00:00"],
    "check --policy": [*CLI, "check", "--policy", POLICY],
}
BASE = "python -c 'import yaml'"


def run_once(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # warm the file cache once
        run_once(cmd)
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            times[name].append(run_once(cmd))
    base = min(times[BASE])
    rows = [{"command": name, "best_s": round(min(ts), 4),
             "median_s": round(statistics.median(ts), 4),
             "ratio_to_import_yaml": round(min(ts) / base, 2)} for name, ts in times.items()]
    if args.json:
        print(json.dumps({"rounds": args.rounds, "python": sys.version.split()[0],
                          "rows": rows}, indent=2))
        return 0
    print(f"CLI start, {args.rounds} alternating rounds, fresh interpreter each "
          f"(Python {sys.version.split()[0]})")
    print(f"{'command':<26} {'best':>8} {'median':>8} {'x import yaml':>14}")
    for r in rows:
        print(f"{r['command']:<26} {r['best_s']:>7.3f}s {r['median_s']:>7.3f}s "
              f"{r['ratio_to_import_yaml']:>13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
