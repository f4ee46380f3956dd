"""`tracker-bridge run` against the real Redmine: an outage in the middle of a run, and kill -9
at random points (fewer than with the memory tracker: each Redmine cycle takes longer).

The daemon talks to a private Redmine process (same database, its own port) that the test
stops and starts; people keep editing through the shared instance meanwhile. Deadlines are
seconds long, so they cross while the test runs.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from redmine.conftest import FIELDS, WRITE, RedmineEnv

from tracker_bridge.backend import posted_note_keys
from tracker_bridge.config import load_config
from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.verdict import NOTE_MARKER_RE
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.sync import compute_diff, make_backend

from .conftest import KEY_ENV, utcnow

pytestmark = pytest.mark.redmine

# the labels are all among the values tests/redmine creates for the SLA labels field
POLICY = """\
name: daemon-redmine
timezone: UTC
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed, Rejected]}
classes:
  high: {response: 6s, resolution: 30s}
  low: {response: 12s, resolution: none}
default_class: low
plans:
  standard: {calendar: always}
default_plan: standard
classify: {field: priority, map: {High: high, Urgent: high}}
labels: {prefix: "sla-"}
"""


def config(env: RedmineEnv, tmp: Path, url: str, project: str) -> Path:
    (tmp / "policy.yaml").write_text(POLICY)
    doc = {"policy": "policy.yaml", "state": "state.sqlite", "poll_interval": "1s",
           "trackers": [{"name": "rm", "backend": "redmine", "url": url,
                         "credentials": {"env": KEY_ENV}, "projects": [project],
                         "plan": "standard", "fields": {"priority": FIELDS["priority"]},
                         "write": dict(WRITE), "options": {"timeout_seconds": 5}}]}
    path = tmp / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def check_converged(env: RedmineEnv, cfg_path: Path, ids: list[int],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every issue shows its verdict now, every wanted note once, no note twice."""
    monkeypatch.setenv(KEY_ENV, env.key)
    pm = get_plugin_manager(load_entrypoints=False)
    cfg = load_config(cfg_path, pm=pm)
    tc = cfg.tracker("rm")
    backend = make_backend(pm, tc)
    try:
        for iid in ids:
            t = backend.fetch_ticket(str(iid))
            marks = [k for e in t.history if e.kind == "comment" and e.text
                     for k in NOTE_MARKER_RE.findall(e.text)]
            assert all(n == 1 for n in Counter(marks).values()), f"#{iid}: {marks}"
            verdict = evaluate(cfg.policy_obj, t, utcnow())
            assert {n.key for n in verdict.notes} <= posted_note_keys(t), f"#{iid}: {marks}"
            diff = compute_diff(t, verdict, tc, cfg.policy_obj)
            assert not diff, f"#{iid} does not show its verdict: {diff.to_dict()}"
    finally:
        backend.close()


def wait_quiet(d: Any, seconds: float = 90) -> None:
    """Until every deadline of the test has passed and a cycle wrote nothing."""
    deadline = time.monotonic() + seconds
    mark = len(d.text())
    while time.monotonic() < deadline:
        time.sleep(1)
        tail = d.text()[mark:]
        if "wrote 0 tickets" in tail or ("rm: fetched" in tail and "wrote" not in
                                         tail.rsplit("rm: fetched", 1)[-1]):
            return
    raise AssertionError(d.text()[-3000:])


def test_redmine_stopped_and_restarted_in_the_middle_of_a_run(
        redmine: RedmineEnv, private_redmine: Any, tmp_path: Path, start_daemon: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    s = redmine.server
    proj = redmine.project("outage")
    prio = s.ids("issue_priorities")
    ids = [int(s.create_issue(proj, f"issue {i}", priority_id=prio["High" if i % 2 else
                                                                   "Low"])["id"])
           for i in range(4)]
    cfg = config(redmine, tmp_path, private_redmine.url, proj)
    d = start_daemon(cfg, "--metrics-port", "0", "--health-max-age", "4s",
                     "--log-level", "debug", env={KEY_ENV: redmine.key})
    d.wait_for(r"rm: fetched 4", timeout=60)
    assert d.get("/healthz").status_code == 200

    private_redmine.stop()
    t_down = time.monotonic()
    d.wait_for(r"cannot connect to", timeout=30)
    # people go on working through the other instance while the bridge's one is down
    s.update_issue(ids[0], priority_id=prio["Low"])
    s.update_issue(ids[1], notes="A person's comment while the bridge cannot reach Redmine")
    newcomer = int(s.create_issue(proj, "created during the outage",
                                  priority_id=prio["High"])["id"])
    t_newcomer = time.monotonic()
    ids.append(newcomer)
    while time.monotonic() - t_down < 8:  # deadlines cross while it is down
        time.sleep(0.5)
    health = d.get("/healthz")
    assert health.status_code == 503, health.text
    assert health.json()["trackers"]["rm"]["last_error"]["kind"] == "unavailable"
    assert d.proc.poll() is None  # an outage never ends the daemon

    private_redmine.start()
    t_up = time.monotonic()
    deadline = time.monotonic() + 90
    while d.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, d.text()[-3000:]
        time.sleep(0.25)
    print(f"\nhealthy again {time.monotonic() - t_up:.1f} s after Redmine answered")
    # until the newcomer's 30 s resolution target has run out: after that no verdict changes
    # by itself, so a quiet cycle means converged (checking earlier races the clock)
    time.sleep(max(0.0, t_newcomer + 32 - time.monotonic()))
    wait_quiet(d)
    assert d.stop() == 0
    check_converged(redmine, cfg, ids, monkeypatch)
    assert redmine.key not in d.text()
    journal = s.get_issue(ids[1])["journals"]
    assert any(j["notes"].startswith("A person's comment") for j in journal)


def test_kill_9_against_redmine(redmine: RedmineEnv, tmp_path: Path, start_daemon: Any,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(int(os.environ.get("TB_CRASH_SEED", "4")))
    kills = int(os.environ.get("TB_REDMINE_KILLS", "6"))
    s = redmine.server
    proj = redmine.project("kill9")
    prio = s.ids("issue_priorities")
    ids = [int(s.create_issue(proj, f"issue {i}", priority_id=prio[rng.choice(
        ["High", "Low", "Urgent"])])["id"]) for i in range(8)]
    t_created = time.monotonic()
    cfg = config(redmine, tmp_path, redmine.url, proj)
    for it in range(kills):
        d = start_daemon(cfg, "--log-level", "debug", env={KEY_ENV: redmine.key},
                         log_name=f"run-{it}.log")
        d.wait_for(r"started: ", timeout=30)
        time.sleep(rng.uniform(0.05, 2.5))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        if rng.random() < 0.5:  # a person edits between two runs
            iid = rng.choice(ids)
            s.update_issue(iid, priority_id=prio[rng.choice(["High", "Low"])],
                           notes=f"person {it}")
    final = start_daemon(cfg, "--log-level", "debug", env={KEY_ENV: redmine.key},
                         log_name="final.log")
    final.wait_for(r"started: ", timeout=30)
    # until every 30 s resolution target has run out
    time.sleep(max(0.0, t_created + 32 - time.monotonic()))
    wait_quiet(final)
    assert final.stop() == 0
    check_converged(redmine, cfg, ids, monkeypatch)
    for log in tmp_path.glob("*.log"):
        assert redmine.key not in log.read_text(errors="replace")
