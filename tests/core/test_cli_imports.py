"""The engine commands start light: ``deadline``, ``evaluate`` and ``check --policy`` import
no tracker plugin, no plugin manager and no HTTP library (``--help`` and tracker commands
load them when they need them). Counted in a fresh interpreter, never timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "examples/policies/care-pathway.yaml")
TICKET = str(ROOT / "examples/tickets/new-high.json")
HEAVY = ("requests", "urllib3", "redminelib", "jira", "bugzilla", "pluggy",
         "tracker_bridge.manager", "tracker_bridge.plugins", "tracker_bridge.sync")

PROBE = """
import json, sys
from tracker_bridge.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(*args: str) -> tuple[int, set[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         cwd=ROOT, check=False, timeout=120)
    doc = json.loads(out.stderr.strip().splitlines()[-1])
    return doc["code"], set(doc["modules"])


@pytest.mark.parametrize("args", [
    ("deadline", "--policy", POLICY, "--class", "high", "--start", "2026-03-02T19:30:00Z"),
    ("evaluate", "--policy", POLICY, TICKET, "--now", "2026-03-02T10:50:00Z"),
    ("check", "--policy", POLICY),
])
def test_engine_commands_import_no_plugin_and_no_http(args: tuple[str, ...]) -> None:
    code, modules = loaded(*args)
    assert code in (0, None)
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], heavy


def test_tracker_commands_still_load_the_plugins() -> None:
    code, modules = loaded("plugins", "--json")
    assert code in (0, None) and "tracker_bridge.manager" in modules
