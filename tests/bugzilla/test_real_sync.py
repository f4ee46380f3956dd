"""The issue's scenario end to end against a real Bugzilla 5.2 under stock mod_perl, through
the command line (``tracker-bridge sync --once`` / ``check``): deadlines, keywords, the KB
note, a person's keyword kept, nothing written by the second sync, no duplicate note once the
state store is gone, ``check`` naming a missing status, and a wrong key under credentials.
Every request after the first meets a dropped kept-alive connection here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tracker_bridge.backend import note_marker
from tracker_bridge.plugins._http import parse_utc, survive_dropped_connections

from .conftest import POLICY, REAL_KEY_ENV, real_section


def cli(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from tracker_bridge.cli import main; main()", *args]
    proc = subprocess.run(cmd, env={**os.environ, REAL_KEY_ENV: key}, capture_output=True,
                          text=True, timeout=600)
    assert key not in proc.stdout + proc.stderr, "the API key was printed"
    return proc


def write_config(tmp: Path, url: str, product: str, **overrides: Any) -> Path:
    doc = {"policy": str(POLICY), "state": str(tmp / "state.sqlite"),
           "trackers": [real_section(url, [product], **overrides)]}
    path = tmp / f"tracker-bridge-{len(list(tmp.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sync(config: Path, key: str) -> dict[str, Any]:
    proc = cli("sync", "--once", "--json", "--config", str(config), key=key)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    [tracker] = json.loads(proc.stdout)["trackers"]
    assert tracker["errors"] == [], tracker["errors"]
    return dict(tracker)


def test_sync_scenario_of_the_issue(real_bugzilla: Any, real_product: str,
                                    tmp_path: Path) -> None:
    bz = real_bugzilla
    # a product of this test's own: the session's product holds the other tests' bugs
    real_product = f"{real_product}-sync"
    bz.create_product(real_product)
    calendar = bz.create_bug(real_product, "Calendar unavailable for all users",
                             priority="Normal", cf_support_plan="premium")
    report = bz.create_bug(real_product, "Monthly activity report fails for one user",
                           priority="High")
    resolved = bz.create_bug(real_product, "Discharge letter prints without the footer",
                             priority="Medium")
    bz.update(report, keywords={"add": ["customer-vip"]})  # a person's keyword
    ids = {calendar, report, resolved}
    config = write_config(tmp_path, bz.url, real_product)

    first = sync(config, bz.bot_key)
    assert first["fetched"] == 3 and first["evaluated"] == 3
    assert first["writes"]["tickets"] == 3, first
    # resolved while the bridge watches: the next sync posts the KB note
    bz.update(resolved, status="RESOLVED", resolution="FIXED",
              comment={"body": "Workaround: print from the preview; fixed in 5.1.1."})
    kb_sync = sync(config, bz.bot_key)
    assert kb_sync["writes"]["tickets"] >= 1, kb_sync
    bugs = {b: bz.bug(b) for b in ids}
    # the "calendar unavailable" override makes it critical; premium: round the clock
    created = parse_utc(bugs[calendar]["creation_time"])
    assert "sla-critical" in bugs[calendar]["keywords"]
    # a Date/Time field reads back in UTC with Z; the Free Text field as the bridge wrote it
    assert parse_utc(bugs[calendar]["cf_sla_response_due"]) == created + timedelta(minutes=30)
    assert parse_utc(bugs[calendar]["cf_sla_resolution_due"]) == created + timedelta(hours=4)
    assert "sla-high" in bugs[report]["keywords"]
    assert "customer-vip" in bugs[report]["keywords"]  # kept
    assert bugs[report]["cf_sla_response_due"] and bugs[report]["cf_sla_resolution_due"]
    kb = [c for c in bz.comments(resolved) if note_marker("kb") in c["text"]]
    assert len(kb) == 1 and "Problem: Discharge letter prints without the footer" in kb[0]["text"]
    assert kb[0]["creator"] == "sla-bot@example.org"
    comments = {b: len(bz.comments(b)) for b in ids}

    # the second sync: our own writes come back as changes, yet nothing is written
    second = sync(config, bz.bot_key)
    assert second["writes"]["tickets"] == 0 and second["diffs"] == []
    assert {b: bz.bug(b)["last_change_time"] for b in ids} == \
        {b: bugs[b]["last_change_time"] for b in ids}

    # the state store deleted: everything is read again, and no note is posted twice
    Path(tmp_path / "state.sqlite").unlink()
    third = sync(config, bz.bot_key)
    assert third["fetched"] == 3
    assert {b: len(bz.comments(b)) for b in ids} == comments
    assert len([c for c in bz.comments(resolved) if note_marker("kb") in c["text"]]) == 1
    assert {b: bz.bug(b)["keywords"] for b in ids} == {b: bugs[b]["keywords"] for b in ids}


def test_check_names_a_missing_status_and_a_wrong_key(real_bugzilla: Any, real_product: str,
                                                      tmp_path: Path) -> None:
    bz = real_bugzilla
    bz.create_bug(real_product, "A bug in scope, for the write probe")
    good = write_config(tmp_path, bz.url, real_product)
    ok = cli("check", "--config", str(good), key=bz.bot_key)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    missing = write_config(tmp_path, bz.url, real_product,
                           statuses={"new": ["UNCONFIRMED", "CONFIRMED"],
                                     "waiting": ["NEEDINFO", "ON_HOLD"],
                                     "resolved": ["RESOLVED"], "closed": ["VERIFIED"]})
    proc = cli("check", "--config", str(missing), "--json", key=bz.bot_key)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = proc.stdout
    assert "statuses.waiting" in text and "ON_HOLD" in text
    report = json.loads(text)
    problems = [p for t in report["trackers"] for p in t.get("problems", [])]
    assert [p["where"] for p in problems] == ["statuses.waiting"], problems
    assert "no status 'ON_HOLD'" in problems[0]["message"]

    wrong = cli("check", "--config", str(good), "--json", key="WrongKeyLocalOnly0123456789abcdefABCDE")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    problems = [p for t in json.loads(wrong.stdout)["trackers"] for p in t.get("problems", [])]
    assert [p["where"] for p in problems] == ["credentials"], problems
    assert "306" in problems[0]["message"] or "API key" in problems[0]["message"]


def test_every_request_survives_the_dropped_connection(real_bugzilla: Any,
                                                       make_real_backend: Any,
                                                       real_product: str) -> None:
    """Stock mod_perl ends the Apache child after each answer: without the adapter every
    second request on a session is reset; with it, reads and writes all go through."""
    bz = real_bugzilla
    bid = bz.create_bug(real_product, "Reset probe")
    url = f"{bz.url}/rest/bug/{bid}"
    with requests.Session() as plain:
        plain.params = {"api_key": bz.bot_key}  # type: ignore[assignment]
        assert plain.get(url, timeout=60).status_code == 200
        with pytest.raises(requests.ConnectionError):
            plain.get(url, timeout=60)
    with survive_dropped_connections(requests.Session()) as s:
        s.params = {"api_key": bz.bot_key}  # type: ignore[assignment]
        for _ in range(3):
            assert s.get(url, timeout=60).status_code == 200

    backend = make_real_backend()
    from tracker_bridge.backend import Diff

    for _ in range(2):
        backend.fetch_ticket(str(bid))
    backend.apply(Diff(str(bid), add_labels=frozenset({"sla-low"})))
    assert "sla-low" in backend.fetch_ticket(str(bid)).labels
    assert len(backend.fetch_changed(None).tickets) >= 1
