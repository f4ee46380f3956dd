"""``tracker-bridge sync --once`` end to end on a real Trac 1.6 environment.

The command runs as a user runs it: the console script, a config file naming the policy and
``backend: trac``, the plugin found through its ``tracker_bridge`` entry point (installed
with ``pip install -e examples/trac-plugin``). Every assertion reads Trac back through its
own ticket model. "Writes nothing" is checked through each ticket's ``changetime``, which
every saved change moves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tracenv import POLICY, TracPerson, make_env, require_trac, tracker_section

from tracker_bridge.backend import marker_keys


@pytest.fixture
def person(tmp_path: Path) -> TracPerson:
    require_trac()
    p = TracPerson(make_env(tmp_path / "env"))
    yield p
    p.close()


def write_config(tmp: Path) -> Path:
    doc = {"policy": str(POLICY), "state": str(tmp / "state.sqlite"),
           "trackers": [tracker_section(tmp / "env")]}
    path = tmp / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sync(config: Path) -> dict[str, Any]:
    exe = shutil.which("tracker-bridge")
    cmd = [exe] if exe else [sys.executable, "-c", "from tracker_bridge.cli import main; main()"]
    proc = subprocess.run([*cmd, "sync", "--once", "--json", "--config", str(config)],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={k: v for k, v in os.environ.items()
                               if k != "TRACKER_BRIDGE_DISABLE_PLUGINS"})
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    [tracker] = json.loads(proc.stdout)["trackers"]
    assert tracker["errors"] == [], tracker["errors"]
    return dict(tracker)


def labels(person: TracPerson, key: str) -> set[str]:
    return set(person.ticket(key)["keywords"].split())


def snapshot(person: TracPerson, keys: dict[str, str]) -> dict[str, Any]:
    return {name: (person.ticket(k)["changetime"], person.ticket(k)["keywords"],
                   person.ticket(k)["sla_response_due"], person.ticket(k)["sla_resolution_due"])
            for name, k in keys.items()}


def comments(person: TracPerson, key: str) -> list[tuple[str, str]]:
    return [(row[1], row[4]) for row in person.ticket(key)["_changelog"]
            if row[2] == "comment" and row[4]]


def test_sync_writes_state_once_and_keeps_what_people_change(person: TracPerson,
                                                            tmp_path: Path) -> None:
    keys = {
        "calendar": person.create_ticket("Calendar unavailable for all users",
                                         priority="blocker", support_plan="premium"),
        "report": person.create_ticket("Monthly activity report fails for one user",
                                       priority="critical", keywords="customer-vip"),
        "password": person.create_ticket("Password reset for a locked-out clinician",
                                         priority="minor"),
        "footer": person.create_ticket("Referral letters print with a blank footer"),
    }
    config = write_config(tmp_path)

    # -- first sync: every ticket gets its SLA state ----------------------------------------
    first = sync(config)
    assert first["fetched"] == 4 and first["evaluated"] == 4
    assert first["writes"]["tickets"] == 4
    # the class map speaks Trac's words: blocker is critical, Trac's "critical" is high
    assert "sla-critical" in labels(person, keys["calendar"])
    assert labels(person, keys["report"]) >= {"sla-high", "customer-vip"}
    assert "sla-low" in labels(person, keys["password"])
    assert "sla-medium" in labels(person, keys["footer"])
    # premium plan, critical class: the `always` calendar, so due = created + 30m / + 4h
    # (deadlines are written to the second; Trac keeps microseconds)
    cal = person.ticket(keys["calendar"])
    created = cal["time"].astimezone(UTC).replace(microsecond=0)
    assert datetime.fromisoformat(cal["sla_response_due"]) == created + timedelta(minutes=30)
    assert datetime.fromisoformat(cal["sla_resolution_due"]) == created + timedelta(hours=4)
    for k in keys.values():
        t = person.ticket(k)
        assert t["sla_response_due"] and t["sla_resolution_due"]
        # the bridge's change is in the ticket's change log under its own name
        assert any(row[1] == "tracker-bridge" for row in t["_changelog"])
    snap = snapshot(person, keys)

    # -- second sync: nothing to write, and nothing is written ------------------------------
    second = sync(config)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == []
    assert snapshot(person, keys) == snap

    # -- people edit in between -------------------------------------------------------------
    person.set_labels(keys["report"], [*person.ticket(keys["report"])["keywords"].split(),
                                       "escalation-requested"])
    person.edit(keys["password"], priority="blocker")
    person.edit(keys["footer"], "Fixed in the letter template; please check a sample.",
                status="closed", resolution="fixed")
    before_close = {k: labels(person, k) for k in keys.values()}

    third = sync(config)
    assert third["fetched"] >= 3
    after = {name: labels(person, k) for name, k in keys.items()}
    assert after["report"] == before_close[keys["report"]]  # both people's labels stay
    assert {"customer-vip", "escalation-requested"} <= after["report"]
    assert "sla-critical" in after["password"] and "sla-low" not in after["password"]
    pw = person.ticket(keys["password"])
    assert pw["priority"] == "blocker"  # the bridge never touches what it does not own
    assert pw["sla_response_due"] != snap["password"][2]
    footer = person.ticket(keys["footer"])
    assert footer["status"] == "closed" and footer["resolution"] == "fixed"
    bridge_notes = [text for who, text in comments(person, keys["footer"])
                    if who == "tracker-bridge"]
    assert any("kb" in marker_keys(text) for text in bridge_notes), bridge_notes
    assert ("nurse", "Fixed in the letter template; please check a sample.") in \
        comments(person, keys["footer"])

    # -- and again nothing to write ---------------------------------------------------------
    snap3 = snapshot(person, keys)
    fourth = sync(config)
    assert fourth["writes"]["tickets"] == 0
    assert snapshot(person, keys) == snap3
