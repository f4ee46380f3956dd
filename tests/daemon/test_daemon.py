"""`tracker-bridge run` as a process: the lock, signals, exact wake-ups, health and metrics,
JSON logs. A memory tracker in a JSON file stands in for the tracker."""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tracker_bridge.core.verdict import NOTE_MARKER_RE
from tracker_bridge.observability import Endpoint, Health, Metrics
from tracker_bridge.plugins.memory import MemoryTracker

from .conftest import KEY, ago, load_tracker, memory_tracker, save_tracker, utcnow, write_config


def markers(t: Any) -> list[str]:
    return [k for e in t.history if e.kind == "comment" and e.text
            for k in NOTE_MARKER_RE.findall(e.text)]


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    tr = MemoryTracker("desk")
    tr.create("Printer down", key="1", created=ago(600), fields={"priority": "High"})
    tr.create("Question", key="2", created=ago(600), fields={"priority": "Low"})
    save_tracker(tr, tmp_path / "tickets.json")
    return write_config(tmp_path, [memory_tracker()], poll_interval="60s")


def test_a_second_daemon_on_the_same_store_exits_1(desk: Path, start_daemon: Any) -> None:
    first = start_daemon(desk)
    first.wait_for(r"started: ")
    second = start_daemon(desk)
    assert second.proc.wait(timeout=20) == 1
    assert "is locked; one daemon per state store" in second.text()
    assert f"pid {first.proc.pid}" in second.text()
    assert first.proc.poll() is None  # the first one is untouched
    assert first.stop() == 0
    third = start_daemon(desk)  # the lock went with the first process
    third.wait_for(r"started: ")
    assert third.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_cleanly_within_seconds(desk: Path, start_daemon: Any,
                                                  sig: int) -> None:
    d = start_daemon(desk)
    d.wait_for(r"desk: fetched 2")  # the first cycle is done; now it sleeps 60 s
    t0 = time.monotonic()
    assert d.stop(sig) == 0
    took = time.monotonic() - t0
    print(f"\nstopped {took * 1000:.0f} ms after the signal")
    # the issue asks for "within a few seconds"; the figure is printed, the bound is loose so
    # a slow CI machine does not fail it (it is typically ~0.1 s)
    assert took < 5.0, took
    assert "stopping" in d.text() and d.text().rstrip().endswith("stopped")


def test_a_stop_during_a_retry_wait_is_prompt(tmp_path: Path, start_daemon: Any) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(tmp_path, [{"name": "down", "backend": "redmine",
                                   "url": f"http://127.0.0.1:{port}",
                                   "credentials": {"env": "TB_DAEMON_TEST_KEY"}}])
    d = start_daemon(cfg)
    d.wait_for(r"retrying in")
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5.0  # not the retry's backoff (up to a minute)
    assert KEY not in d.text()


def test_a_deadline_reaches_the_tracker_within_seconds_of_its_instant(
        tmp_path: Path, start_daemon: Any) -> None:
    tr = MemoryTracker("desk")
    crossing = utcnow() + timedelta(seconds=4)  # the 1 h response target runs out then
    tr.create("Printer down", key="1", created=crossing - timedelta(hours=1),
              fields={"priority": "High"})
    save_tracker(tr, tmp_path / "tickets.json")
    # a poll interval far away: only the exact wake-up can make it in time
    cfg = write_config(tmp_path, [memory_tracker()], poll_interval="10m")
    d = start_daemon(cfg, "--log-level", "debug")
    d.wait_for(r"desk: fetched 1")
    seen = None
    while utcnow() < crossing + timedelta(seconds=10):
        t = load_tracker(tmp_path / "tickets.json").get("1")
        if "breach:response" in markers(t):
            seen = utcnow()
            break
        time.sleep(0.01)
    assert seen is not None, d.text()
    lag = (seen - crossing).total_seconds()
    print(f"\nbreach written {lag * 1000:.0f} ms after the instant (polled every 10 ms)")
    # "within seconds of the instant, not at the next poll" (10 minutes away); typically
    # a few ms, bounded loosely so a slow CI machine does not fail it
    assert 0 <= lag < 5.0
    assert "sla-breached-response" in t.labels
    assert d.stop() == 0


def test_health_and_metrics_on_loopback(tmp_path: Path, start_daemon: Any) -> None:
    tr = MemoryTracker("desk")
    tr.create("Printer down", key="1", created=ago(7200), fields={"priority": "High"})
    save_tracker(tr, tmp_path / "tickets.json")
    (tmp_path / "broken.json").write_text("{not json")
    cfg = write_config(tmp_path, [memory_tracker(),
                                  memory_tracker("broken", file="broken.json")])
    d = start_daemon(cfg, "--metrics-port", "0", "--log-format", "json")
    d.wait_for(r"desk: fetched 1")
    health = d.get("/healthz")
    assert health.status_code == 503  # one tracker is failing
    doc = health.json()
    assert doc["status"] == "failing"
    assert doc["trackers"]["desk"]["ok"] is True
    assert doc["trackers"]["broken"]["ok"] is False
    assert doc["trackers"]["broken"]["last_error"]["kind"] == "backend"
    assert doc["trackers"]["broken"]["consecutive_failures"] >= 1
    text = d.get("/metrics").text
    for line in ('tracker_bridge_cycles_total{outcome="ok",tracker="desk"}',
                 'tracker_bridge_writes_total{kind="notes",tracker="desk"} 1.0',
                 'tracker_bridge_errors_total{kind="backend",tracker="broken"}',
                 'tracker_bridge_breaches_total{class="high",metric="response",tracker="desk"} 1.0',
                 'tracker_bridge_open_breached_tickets{class="high",metric="response",tracker="desk"} 1.0',
                 'tracker_bridge_tracker_up{tracker="desk"} 1.0',
                 'tracker_bridge_tracker_up{tracker="broken"} 0.0',
                 'tracker_bridge_seconds_since_last_good_cycle{tracker="desk"}',
                 "tracker_bridge_tickets_evaluated_total"):
        assert line in text, line
    # the tracker is repaired: health turns 200 without a restart
    save_tracker(MemoryTracker("broken"), tmp_path / "broken.json")
    deadline = time.monotonic() + 15
    while d.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, d.get("/healthz").text
        time.sleep(0.2)
    assert d.stop() == 0
    lines = d.text().splitlines()
    docs = [json.loads(x) for x in lines]  # --log-format json: every line is one object
    assert {"ts", "level", "logger", "msg"} <= set(docs[0])
    assert any(x.get("event") == "cycle" and x.get("tracker") == "desk" for x in docs)


def test_the_endpoint_listens_on_loopback_only() -> None:
    health = Health(max_age=60)
    ep = Endpoint(0, Metrics(health), health).start()
    try:
        assert ep.server.server_address[0] == "127.0.0.1"
    finally:
        ep.close()


def test_sighup_reloads_the_config_and_runs_a_new_tracker(tmp_path: Path,
                                                         start_daemon: Any) -> None:
    save_tracker(MemoryTracker("desk"), tmp_path / "tickets.json")
    cfg = write_config(tmp_path, [memory_tracker()], poll_interval="10m")
    d = start_daemon(cfg, "--log-level", "debug")
    d.wait_for(r"desk: fetched 0")
    tr = MemoryTracker("second")
    tr.create("Printer down", key="7", created=ago(7200), fields={"priority": "High"})
    save_tracker(tr, tmp_path / "second.json")
    write_config(tmp_path, [memory_tracker(), memory_tracker("second", file="second.json")],
                 poll_interval="10m")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(r"reloaded the config: 2 trackers")
    d.wait_for(r"second: fetched 1")
    t = load_tracker(tmp_path / "second.json", "second").get("7")
    assert markers(t) == ["breach:response"]
    (tmp_path / "tracker-bridge.yaml").write_text("trackers: [oops")  # a broken edit
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(r"reload failed, keeping the running config")
    assert d.proc.poll() is None
    assert d.stop() == 0
