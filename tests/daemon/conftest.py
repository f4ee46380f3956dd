"""Shared pieces of the daemon tests: a seconds-scale policy, configs, a daemon subprocess,
and a stateful fake Redmine for `responses` (the backend's real request shapes)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

# Redmine fixtures (session server, a private server for outages), shared with tests/redmine
from redmine.conftest import private_redmine, redmine, redmine_server  # noqa: F401
from sync.conftest import WRITE

from tracker_bridge.plugins.memory import MemoryTracker

REPO = Path(__file__).resolve().parents[2]

#: targets of seconds, on an always-on calendar: deadlines cross while a test runs
POLICY = """\
name: daemon-test
timezone: UTC
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed]}
classes:
  high: {response: 1h, resolution: 8h}
  low: {response: 4h, resolution: none}
default_class: low
plans:
  standard: {calendar: always}
default_plan: standard
classify: {field: priority, map: {High: high, Low: low}}
labels: {prefix: "sla-"}
"""
#: a 40-hex API key, like Redmine's
KEY = "0123456789abcdef0123456789abcdef01234567"
KEY_ENV = "TB_DAEMON_TEST_KEY"


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    MemoryTracker.forget_all()
    yield
    MemoryTracker.forget_all()


@pytest.fixture(autouse=True)
def _own_log_handlers() -> Iterator[None]:
    """Remove the handlers setup_logging() added in a test (they hold the test's stream)."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tracker_bridge", False):
            root.removeHandler(h)


def write_config(tmp: Path, trackers: list[dict[str, Any]], policy: str = POLICY,
                 **top: Any) -> Path:
    (tmp / "policy.yaml").write_text(policy)
    doc: dict[str, Any] = {"policy": "policy.yaml", "state": "state.sqlite",
                           "poll_interval": "1s", "trackers": trackers}
    doc.update(top)
    path = tmp / "tracker-bridge.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def memory_tracker(name: str = "desk", file: str = "tickets.json", **over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "backend": "memory", "options": {"file": file},
                             "credentials": {"env": KEY_ENV}, "write": dict(WRITE)}
    entry.update(over)
    return entry


def save_tracker(tr: MemoryTracker, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(tr.to_json()))
    os.replace(tmp, path)


def load_tracker(path: Path, name: str = "desk") -> MemoryTracker:
    return MemoryTracker.from_json(name, json.loads(path.read_text()), str(path))


def cli() -> list[str]:
    exe = shutil.which("tracker-bridge")
    return [exe] if exe else [sys.executable, "-c", "from tracker_bridge.cli import main; main()"]


@dataclass
class DaemonProc:
    """A `tracker-bridge run` subprocess, its stderr collected in a file."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the daemon's log within {timeout} s "
                             f"(exit {self.proc.poll()}):\n{self.text()[-3000:]}")

    def port(self) -> int:
        return int(self.wait_for(r"http://127\.0\.0\.1:(\d+)/metrics").group(1))

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port()}{path}", timeout=5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProc]]:
    procs: list[DaemonProc] = []

    def start(config: Path, *args: str, env: dict[str, str] | None = None,
              log_name: str | None = None) -> DaemonProc:
        log = tmp_path / (log_name or f"daemon-{len(procs)}.log")
        fh = open(log, "wb")  # noqa: SIM115 - the child writes it after we return
        proc = subprocess.Popen([*cli(), "run", "--config", str(config), *args],
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, KEY_ENV: KEY, **(env or {})})
        fh.close()
        d = DaemonProc(proc, log)
        procs.append(d)
        return d

    yield start
    for d in procs:
        d.kill()


def utcnow() -> datetime:
    return datetime.now(UTC)


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
