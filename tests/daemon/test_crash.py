"""Crash safety: `tracker-bridge run` killed with SIGKILL at random points, then restarted.

The tracker is the memory backend in file mode (written by rename, so a kill never leaves
half a file). Between two runs a "person" edits tickets (priority, status, comments, new
tickets); deadlines cross while the test runs. At the end every ticket must show exactly the
state the engine wants at that moment, every note the engine wants must be on it, and no note
may be there twice. The test also counts how many kills landed between a tracker write and
the store's commit (the tracker shows labels the store does not know yet), and requires some:
otherwise it would not test what it claims to.

The test's power is counted, not timed: it goes on until at least ``MIN_KILLS`` kills have
landed, ``MIN_AFTER_COMMIT`` of them after the run had committed a cycle (so the restart
resumes from a cursor, not from scratch), and one between a write and its commit. Every other
iteration waits (on the store, with a generous ceiling) for a cycle to commit before it kills,
so a slow or busy machine runs the same cases, only slower.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tracker_bridge.backend import posted_note_keys
from tracker_bridge.config import load_config
from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.verdict import NOTE_MARKER_RE
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.store import Store
from tracker_bridge.sync import compute_diff, owned_labels

from .conftest import (
    KEY,
    KEY_ENV,
    ago,
    load_tracker,
    memory_tracker,
    save_tracker,
    utcnow,
    write_config,
)

SEED = int(os.environ.get("TB_CRASH_SEED", "20260302"))
MIN_KILLS = int(os.environ.get("TB_CRASH_KILLS", "20"))
MIN_AFTER_COMMIT = int(os.environ.get("TB_CRASH_AFTER_COMMIT", "8"))
MAX_ITERATIONS = 200
#: ceiling for one wait on the daemon (a condition, left as soon as it holds)
WAIT_CEILING_S = 90.0


def keys_of(tr: MemoryTracker) -> list[str]:
    return list(tr.keys())


def all_markers(t: Any) -> list[str]:
    return [k for e in t.history if e.kind == "comment" and e.text
            for k in NOTE_MARKER_RE.findall(e.text)]


def person_edits(tr: MemoryTracker, rng: random.Random, made: Counter[str],
                 next_key: list[int]) -> None:
    """What people do between two runs of the daemon."""
    keys = tr.keys()
    for _ in range(rng.randint(1, 5)):
        action = rng.choice(["priority", "comment", "feedback", "resume", "resolve", "new",
                             "new-breached"])
        key = rng.choice(keys)
        t = tr.get(key)
        if action == "priority":
            new = "Low" if t.fields.get("priority") == "High" else "High"
            tr.update(key, fields={"priority": new})
        elif action == "comment":
            made[key] += 1
            tr.update(key, comment=f"a person's comment {made[key]}", by="agent")
        elif action == "feedback" and t.status == "New":
            tr.update(key, status="Feedback")
        elif action == "resume" and t.status == "Feedback":
            tr.update(key, status="New")
        elif action == "resolve" and t.status == "New" and rng.random() < 0.3:
            tr.update(key, status="Resolved")
        elif action in ("new", "new-breached"):
            k = str(next_key[0])
            next_key[0] += 1
            created = ago(7200) if action == "new-breached" else ago(rng.uniform(3590, 3600))
            tr.create(f"ticket {k}", key=k, created=created,
                      fields={"priority": rng.choice(["High", "Low"])})


def bridge_marks(tickets: Path, policy: Any) -> dict[str, tuple[frozenset[str], int]]:
    """What the bridge has written on each ticket: its labels and how many notes."""
    tr = load_tracker(tickets)
    return {k: (frozenset(owned_labels(tr.get(k).labels, policy)), len(all_markers(tr.get(k))))
            for k in keys_of(tr)}


def uncommitted_writes(tickets: Path, state: Path, policy: Any) -> bool:
    """True when the tracker shows a bridge write the store has not committed."""
    marks = bridge_marks(tickets, policy)
    if not state.exists():
        return any(labels or notes for labels, notes in marks.values())
    with Store(state) as st:
        for k, (labels, notes) in marks.items():
            s = st.ticket("desk", k)
            if (s is None and labels) or (s is not None and set(s.labels) != labels):
                return True
            if notes > len(st.note_keys("desk", k)):
                return True
    return False


def committed_cycles(state: Path) -> int:
    if not state.exists():
        return 0
    with Store(state) as st:
        return st.count("cycles")


def test_kill_9_at_random_points_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, start_daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    rng = random.Random(SEED)
    tickets = tmp_path / "tickets.json"
    # a slow tracker (0.1 s a write): a cycle's writes and its commit are seconds apart
    config = write_config(
        tmp_path, [memory_tracker(options={"file": "tickets.json", "write_delay_seconds": 0.1})],
        poll_interval="0.5s")
    cfg = load_config(config, pm=get_plugin_manager(load_entrypoints=False))
    policy = cfg.policy_obj

    tr = MemoryTracker("desk")
    for i in range(1, 31):
        # deadlines cross all through the first ~25 s (at risk, then breached), some are
        # breached already, some are hours away
        if i % 3 == 0:
            created = ago(7200)
        elif i % 3 == 1:
            created = ago(3600 - rng.uniform(-5, 25))
        else:
            created = ago(rng.uniform(0, 600))
        tr.create(f"ticket {i}", key=str(i), created=created,
                  fields={"priority": "High" if i % 2 else "Low"})
    save_tracker(tr, tickets)
    made: Counter[str] = Counter()
    next_key = [100]

    t_start = time.monotonic()
    kills = mid_write = committed = 0
    state = tmp_path / "state.sqlite"
    for it in range(MAX_ITERATIONS):
        if kills >= MIN_KILLS and committed >= MIN_AFTER_COMMIT and mid_write >= 1:
            break
        before = bridge_marks(tickets, policy)
        cycles_before = committed_cycles(state)
        d = start_daemon(config, "--log-level", "debug", log_name=f"run-{it}.log")
        if it == 0:
            # not left to chance: the first sync writes all 30 tickets, so killing it as soon
            # as the tracker file shows a write lands between a write and the commit
            first = tickets.read_bytes()
            waited = time.monotonic()
            while tickets.read_bytes() == first and time.monotonic() - waited < WAIT_CEILING_S:
                time.sleep(0.01)
            assert tickets.read_bytes() != first, "the first sync never wrote"
        elif it % 2:
            # after a committed cycle, at a random point of the next one(s)
            waited = time.monotonic()
            while (committed_cycles(state) == cycles_before
                   and time.monotonic() - waited < WAIT_CEILING_S and d.proc.poll() is None):
                time.sleep(0.02)
            assert committed_cycles(state) > cycles_before, \
                f"iteration {it}: no cycle committed: {d.text()[-2000:]}"
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            # anywhere: while starting, reading, writing or sleeping
            time.sleep(rng.uniform(0.2, 1.6))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        kills += 1
        assert d.proc.returncode == -signal.SIGKILL, d.text()[-2000:]
        if committed_cycles(state) > cycles_before:
            committed += 1
        # this run wrote to the tracker, and the store does not know it yet
        if bridge_marks(tickets, policy) != before and uncommitted_writes(tickets, state, policy):
            mid_write += 1
        tr = load_tracker(tickets)
        for k in keys_of(tr):  # checked after every kill, not only at the end
            assert all(n == 1 for n in Counter(all_markers(tr.get(k))).values()), \
                f"iteration {it}: ticket {k} has a note twice: {all_markers(tr.get(k))}"
        if rng.random() < 0.5:
            person_edits(tr, rng, made, next_key)
            save_tracker(tr, tickets)

    # the last run: let it catch up with every change and every deadline, then stop it
    final = start_daemon(config, log_name="final.log")
    final.wait_for(r"started: ")
    deadline = time.monotonic() + 90  # left as soon as it has caught up (~2 s here)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        with Store(tmp_path / "state.sqlite") as st:
            nxt = st.earliest_next_change(["desk"], after=utcnow())
            cycles = st.last_cycles(1)
        if (nxt is None or nxt > utcnow() + timedelta(minutes=10)) and cycles and \
                not cycles[0]["trackers"][0]["diffs"]:
            break
    assert final.stop() == 0, final.text()[-2000:]
    now = utcnow()
    print(f"\n{kills} kills in {time.monotonic() - t_start:.0f} s (seed {SEED}): {committed} "
          f"after at least one committed cycle, {mid_write} between a tracker write and the "
          "store's commit")
    assert kills >= MIN_KILLS, f"only {kills} kills in {MAX_ITERATIONS} iterations"
    assert committed >= MIN_AFTER_COMMIT, f"only {committed} kills after a committed cycle"
    assert mid_write >= 1, "no kill landed between a write and its commit"

    tr = load_tracker(tickets)
    with Store(tmp_path / "state.sqlite") as st:
        for k in keys_of(tr):
            t = tr.get(k)
            marks = all_markers(t)
            assert all(n == 1 for n in Counter(marks).values()), f"{k}: {marks}"
            verdict = evaluate(policy, t, now)
            assert {n.key for n in verdict.notes} <= posted_note_keys(t), \
                f"ticket {k} lacks a note: {verdict.notes} vs {marks}"
            diff = compute_diff(t, verdict, cfg.tracker("desk"), policy)
            assert not diff, f"ticket {k} does not show its verdict: {diff.to_dict()}"
            assert st.ticket("desk", k) is not None
            people = [e for e in t.history if e.kind == "comment" and e.by == "agent"]
            assert len(people) == made[k]  # no person's change was lost either
    for log in tmp_path.glob("*.log"):  # debug logs of every run: the key is never in them
        assert KEY not in log.read_text(errors="replace"), log
