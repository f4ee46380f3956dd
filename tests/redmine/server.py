"""A real Redmine 5 for tests and the demo: start it, stop it, find the admin's API key.

Debian's ``redmine`` package (installed by ``.ci/install-redmine.sh``) runs under webrick on
127.0.0.1. Starting takes about 4 s on a warm machine; each ``rails runner`` call about 3 s, so
callers batch their setup (every custom field in one call, see :meth:`RedmineServer.runner`).

Usable as a module (``from tests.redmine.server import RedmineServer``) or from a shell::

    python -m tests.redmine.server start    # prints the URL once Redmine answers
    python -m tests.redmine.server apikey   # prints the admin's API key (a local test instance)
    python -m tests.redmine.server stop

The port is ``$REDMINE_PORT`` (default 3000); ``REDMINE_PORT=0`` picks a free one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REDMINE_DIR = Path(os.environ.get("REDMINE_DIR", "/usr/share/redmine"))
REDMINE_DB = Path("/var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default")
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / ".ci" / "install-redmine.sh"
DEFAULT_PORT = 3000


class RedmineNotInstalled(RuntimeError):
    """Debian's redmine package (plus the webrick Gemfile.local) is not on this machine."""


def is_installed() -> bool:
    """True when ``.ci/install-redmine.sh`` (or an equivalent) has run on this machine."""
    local = REDMINE_DIR / "Gemfile.local"
    return (REDMINE_DIR / "bin" / "rails").exists() and local.exists() and (
        "webrick" in local.read_text()
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rails_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAILS_ENV"] = "production"
    return env


def rails_runner(script: str, *args: str, timeout: float = 180) -> str:
    """Run Ruby code inside the Redmine app (``rails runner``) and return its stdout.

    ``args`` reach the script as ``ARGV`` (no quoting problems for JSON payloads). About 3 s
    per call whatever the script does, so batch work into one script.
    """
    if not is_installed():
        raise RedmineNotInstalled(f"no Redmine in {REDMINE_DIR}; run {INSTALL_SCRIPT}")
    proc = subprocess.run(
        ["ruby", "bin/rails", "runner", script, *args],
        cwd=REDMINE_DIR, env=_rails_env(), capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        # Ruby prints the exception first and its backtrace after: keep both ends
        lines = proc.stderr.strip().splitlines()
        shown = lines if len(lines) <= 30 else [*lines[:10], "...", *lines[-15:]]
        raise RuntimeError(f"rails runner failed (exit {proc.returncode}):\n" + "\n".join(shown))
    return proc.stdout


# Ruby run once when the database is not ready for the API (fresh install without our script).
_PREPARE_RB = """
Setting.rest_api_enabled = "1" unless Setting.rest_api_enabled?
u = User.find_by_login("admin")
if u.must_change_passwd
  u.must_change_passwd = false
  u.save!
end
puts u.api_key
"""


@dataclass(frozen=True)
class CustomFieldSpec:
    """An issue custom field the tests or the demo need (created if missing, by name)."""

    name: str
    field_format: str = "string"  # string, list, date, int, ...
    possible_values: tuple[str, ...] = ()
    multiple: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "field_format": self.field_format,
                "possible_values": list(self.possible_values), "multiple": self.multiple}


# find-or-create each field by name; list values are only ever added (never removed), so a
# field shared by several test sessions keeps every value any of them needs.
_CUSTOM_FIELDS_RB = """
require "json"
specs = JSON.parse(ARGV[0])
out = {}
specs.each do |s|
  cf = IssueCustomField.find_by(name: s["name"]) || IssueCustomField.new(
         name: s["name"], field_format: s["field_format"], multiple: s["multiple"],
         is_for_all: true, is_filter: true, visible: true, editable: true)
  if s["field_format"] == "list"
    cf.possible_values = (Array(cf.possible_values) + s["possible_values"]).uniq
  end
  cf.trackers = Tracker.all if cf.new_record?
  cf.save!
  out[s["name"]] = cf.id
end
puts "CF-JSON " + JSON.generate(out)
"""


@dataclass
class RedmineServer:
    """One Redmine instance on 127.0.0.1; started by us or already running."""

    port: int = field(default_factory=lambda: _port_from_env())
    host: str = "127.0.0.1"
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _api_key: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        # One pid file per port, outside the package directory, so two instances never clash
        # and a stale file from a killed run does not stop rails from starting.
        return Path(f"/tmp/tracker-bridge-redmine-{self.port}.pid")

    @property
    def started_here(self) -> bool:
        """True when this object launched the server (and so should stop it)."""
        return self._proc is not None and self._proc.poll() is None

    def is_up(self, timeout: float = 2.0) -> bool:
        try:
            r = requests.get(f"{self.url}/issue_statuses.json", timeout=timeout)
        except requests.RequestException:
            return False
        return r.status_code in (200, 401, 403)

    def start(self, timeout: float = 120) -> str:
        """Start Redmine unless it already answers; wait until it does; return its URL."""
        if self.is_up():
            return self.url
        if not is_installed():
            raise RedmineNotInstalled(f"no Redmine in {REDMINE_DIR}; run {INSTALL_SCRIPT}")
        self._remove_stale_pid_file()
        log_path = self.log_path or Path(f"/tmp/tracker-bridge-redmine-{self.port}.log")
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                ["ruby", "bin/rails", "server", "-u", "webrick", "-e", "production",
                 "-b", self.host, "-p", str(self.port), "-P", str(self.pid_file)],
                cwd=REDMINE_DIR, env=_rails_env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends exactly it
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                # Another session may have started one on this port at the same moment.
                for _ in range(100):
                    if self.is_up(timeout=1):
                        return self.url
                    time.sleep(0.3)
                raise RuntimeError(f"Redmine exited while starting; see {log_path}")
            if self.is_up(timeout=1):
                return self.url
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"Redmine did not answer on {self.url} within {timeout:.0f} s; "
                           f"see {log_path}")

    def stop(self, timeout: float = 30) -> None:
        """Stop the server on this port: the one we started, else the one in our pid file."""
        pid: int | None = None
        if self._proc is not None and self._proc.poll() is None:
            pid = self._proc.pid
        elif self.pid_file.exists():
            try:
                pid = int(self.pid_file.read_text().strip())
            except ValueError:
                pid = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid):
                if self._proc is not None and self._proc.pid == pid:
                    self._proc.poll()  # reap our child so _alive sees it gone
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        # Wait until the port is really free, so a restart right after cannot race it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.is_up(timeout=0.5):
            time.sleep(0.1)

    def restart(self) -> str:
        self.stop()
        return self.start()

    def _remove_stale_pid_file(self) -> None:
        if self.pid_file.exists():
            try:
                pid = int(self.pid_file.read_text().strip())
            except ValueError:
                pid = -1
            if pid <= 0 or not _alive(pid):
                self.pid_file.unlink(missing_ok=True)

    # -- setup through the app itself ----------------------------------------------------------

    def api_key(self) -> str:
        """The admin's API key, making sure the REST API is on (a local test instance)."""
        if self._api_key is None:
            self._api_key = _api_key_from_db() or rails_runner(_PREPARE_RB).strip().splitlines()[-1]
        return self._api_key

    def runner(self, script: str, *args: str) -> str:
        """``rails runner`` against this instance's database (~3 s a call)."""
        return rails_runner(script, *args)

    def ensure_custom_fields(self, specs: Iterable[CustomFieldSpec]) -> dict[str, int]:
        """Create every missing custom field in ONE rails-runner call; return name -> id."""
        out = rails_runner(_CUSTOM_FIELDS_RB, json.dumps([s.to_json() for s in specs]))
        for line in out.splitlines():
            if line.startswith("CF-JSON "):
                return {str(k): int(v) for k, v in json.loads(line[8:]).items()}
        raise RuntimeError(f"custom field creation printed no result: {out[-500:]!r}")

    # -- REST helpers for tests and the demo (plain requests, admin key) ---------------------

    def session(self) -> requests.Session:
        s = requests.Session()
        s.headers["X-Redmine-API-Key"] = self.api_key()
        s.headers["Content-Type"] = "application/json"
        return s

    def create_project(self, identifier: str, name: str | None = None) -> dict[str, Any]:
        """Create a project with every tracker enabled (or return the existing one)."""
        s = self.session()
        r = s.get(f"{self.url}/projects/{identifier}.json", timeout=30)
        if r.status_code == 200:
            return dict(r.json()["project"])
        trackers = s.get(f"{self.url}/trackers.json", timeout=30).json()["trackers"]
        r = s.post(f"{self.url}/projects.json", timeout=30, json={"project": {
            "name": name or identifier, "identifier": identifier, "is_public": True,
            "tracker_ids": [t["id"] for t in trackers]}})
        r.raise_for_status()
        return dict(r.json()["project"])

    def create_issue(self, project: str, subject: str, **attrs: Any) -> dict[str, Any]:
        s = self.session()
        body = {"project_id": project, "subject": subject, **attrs}
        r = s.post(f"{self.url}/issues.json", json={"issue": body}, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"creating issue {subject!r}: {r.status_code} {r.text[:300]}")
        return dict(r.json()["issue"])

    def update_issue(self, issue_id: int | str, **attrs: Any) -> None:
        r = self.session().put(f"{self.url}/issues/{issue_id}.json", json={"issue": attrs},
                               timeout=30)
        if r.status_code != 204:
            raise RuntimeError(f"updating issue {issue_id}: {r.status_code} {r.text[:300]}")

    def get_issue(self, issue_id: int | str, journals: bool = True) -> dict[str, Any]:
        params = {"include": "journals"} if journals else {}
        r = self.session().get(f"{self.url}/issues/{issue_id}.json", params=params, timeout=30)
        r.raise_for_status()
        return dict(r.json()["issue"])

    def ids(self, table: str, name_key: str = "name") -> Mapping[str, int]:
        """name -> id of statuses (``issue_statuses``), priorities, trackers."""
        path = {"issue_statuses": "issue_statuses.json",
                "issue_priorities": "enumerations/issue_priorities.json",
                "trackers": "trackers.json"}[table]
        data = self.session().get(f"{self.url}/{path}", timeout=30).json()[table]
        return {d[name_key]: int(d["id"]) for d in data}


def _api_key_from_db() -> str | None:
    """Read the admin key straight from SQLite (milliseconds instead of a 3 s runner call).

    Returns None unless the REST API is on and the admin needs no password change, so the
    runner fixes those first.
    """
    if not REDMINE_DB.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{REDMINE_DB}?mode=ro", uri=True, timeout=10)
        try:
            api = con.execute(
                "select value from settings where name = 'rest_api_enabled'").fetchone()
            row = con.execute(
                "select u.must_change_passwd, t.value from users u join tokens t "
                "on t.user_id = u.id and t.action = 'api' where u.login = 'admin'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if not api or str(api[0]).strip() not in ("1", "--- '1'", "'1'") or not row or row[0]:
        return None
    return str(row[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; /proc tells it apart.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def _port_from_env() -> int:
    raw = os.environ.get("REDMINE_PORT", str(DEFAULT_PORT))
    port = int(raw)
    return port or free_port()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in ("start", "stop", "apikey", "status"):
        print("usage: python -m tests.redmine.server start|stop|apikey|status", file=sys.stderr)
        return 2
    server = RedmineServer()
    cmd = argv[0]
    if cmd == "start":
        t0 = time.monotonic()
        was_up = server.is_up()
        url = server.start()
        if server._proc is not None:
            # Leave it running after we exit: detach from our Popen so nothing reaps it.
            server._proc = None
        how = "already running" if was_up else f"started in {time.monotonic() - t0:.1f} s"
        print(f"{url} ({how})")
    elif cmd == "stop":
        server.stop()
        print(f"stopped {server.url}")
    elif cmd == "apikey":
        print(server.api_key())
    else:
        print(f"{server.url} {'up' if server.is_up() else 'down'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
