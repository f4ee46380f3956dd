"""Trackers in parallel inside one daemon: a tracker hanging on a request (the memory
backend's ``hold``) delays no other tracker. Counted, never timed: the other tracker's
cycles are counted in the store and its writes on its tickets, while the hanging one is still
inside its first request; every wait is on a condition with a generous ceiling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracker_bridge.config import load_config
from tracker_bridge.daemon import Daemon
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.store import Store

from .conftest import KEY, KEY_ENV, WRITE, ago, write_config

CEILING_S = 60.0


def wait_until(cond: Callable[[], bool], what: str, ceiling: float = CEILING_S) -> None:
    deadline = time.monotonic() + ceiling
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {ceiling} s: {what}")


def tracker(name: str) -> dict[str, Any]:
    return {"name": name, "backend": "memory", "options": {"instance": name},
            "credentials": {"env": KEY_ENV}, "write": dict(WRITE)}


def cycles_of(state: Path, name: str) -> int:
    """Committed cycles in which ``name`` ran to its end."""
    if not state.exists():
        return 0
    with Store(state) as st:
        reports = st.last_cycles(10_000)
    return sum(1 for r in reports for t in r["trackers"]
               if t["tracker"] == name and not t.get("aborted"))


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Daemon]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    started: list[tuple[Daemon, threading.Thread]] = []

    def start(cfg_path: Path, **kw: Any) -> Daemon:
        pm = get_plugin_manager(load_entrypoints=False)
        d = Daemon(load_config(cfg_path, pm=pm), pm=pm, **kw)
        t = threading.Thread(target=d.run, daemon=True)
        t.start()
        started.append((d, t))
        return d

    yield start
    for d, t in started:
        d.request_stop("test over")
        t.join(30)


@pytest.mark.parametrize("hang_at", ["fetch_changed", "apply"])
def test_a_hanging_tracker_delays_no_other(tmp_path: Path, running: Callable[..., Daemon],
                                           hang_at: str) -> None:
    slow, fast = MemoryTracker.named("slow"), MemoryTracker.named("fast")
    for tr in (slow, fast):
        tr.create("Printer down", key="1", created=ago(7200), fields={"priority": "High"})
        tr.create("Question", key="2", created=ago(600), fields={"priority": "Low"})
    gate = threading.Event()
    slow.hold(hang_at, gate)  # hangs on its first fetch, or in the middle of its writes
    cfg = write_config(tmp_path, [tracker("slow"), tracker("fast")], poll_interval="1s")
    state = tmp_path / "state.sqlite"
    d = running(cfg, stop_timeout=5)
    try:
        # the fast tracker is written, and cycles again and again, while the slow one hangs
        wait_until(lambda: "sla-breached-response" in fast.get("1").labels,
                   "the fast tracker's breached ticket labelled")
        before = cycles_of(state, "fast")
        fast.create("New one", key="3", created=ago(7200), fields={"priority": "High"})
        wait_until(lambda: "sla-breached-response" in fast.get("3").labels,
                   "a ticket made after the start written on the fast tracker")
        wait_until(lambda: cycles_of(state, "fast") >= before + 3,
                   "three more committed cycles of the fast tracker")
        # (the slow tracker is still inside the request it hangs on)
        assert slow.requests[hang_at] == 1
        assert cycles_of(state, "slow") == 0
        assert not slow.writes if hang_at == "fetch_changed" else len(slow.writes) <= 1
        _, doc = d.health.snapshot()
        assert doc["trackers"]["fast"]["ok"] and not doc["trackers"]["slow"]["ok"]
    finally:
        gate.set()
    # released, the slow tracker finishes its cycle: everything it owes is written once
    wait_until(lambda: cycles_of(state, "slow") >= 1, "the slow tracker's first cycle")
    assert "sla-breached-response" in slow.get("1").labels
    notes = [e for e in slow.get("1").history if e.kind == "comment" and e.by ==
             "tracker-bridge"]
    assert len(notes) == len({n.text for n in notes}) >= 1


def test_a_hanging_cycle_is_abandoned_at_stop_and_its_records_never_committed(
        tmp_path: Path, running: Callable[..., Daemon]) -> None:
    slow = MemoryTracker.named("slow")
    slow.create("Printer down", key="1", created=ago(7200), fields={"priority": "High"})
    slow.create("Other", key="2", created=ago(7200), fields={"priority": "High"})
    gate = threading.Event()
    cfg = write_config(tmp_path, [tracker("slow")], poll_interval="1s")
    state = tmp_path / "state.sqlite"
    # the first write goes through, the second hangs: ticket 1 is written, not recorded yet
    first_done = threading.Event()
    real_apply = slow.apply

    def apply(diff: Any) -> None:
        if first_done.is_set():
            gate.wait()
        real_apply(diff)
        first_done.set()
    slow.apply = apply  # type: ignore[method-assign]
    d = running(cfg, stop_timeout=1)
    try:
        wait_until(first_done.is_set, "the first write")
        wait_until(lambda: slow.requests["apply"] >= 2, "the second write under way")
        stopper = threading.Thread(target=d.request_stop, args=("test",))
        stopper.start()
        wait_until(d._done.is_set, "the daemon's run() ended (the hanging cycle abandoned)")
    finally:
        gate.set()
    # (in-process the abandoned thread lives on: released, it must still commit nothing)
    d._workers["slow"].join(CEILING_S)
    assert not d._workers["slow"].is_alive()
    with Store(state) as st:
        assert st.count("cycles") == 0 and st.count("writes") == 0
        assert st.get_cursor("slow") is None
    # the next start redoes it: ticket 1's note is found on the ticket, never posted twice
    slow.apply = real_apply  # type: ignore[method-assign]
    running(cfg)
    wait_until(lambda: cycles_of(state, "slow") >= 1, "the next start's first cycle")
    for key in ("1", "2"):
        texts = [e.text for e in slow.get(key).history if e.kind == "comment"]
        assert len(texts) == len(set(texts)) >= 1, texts
