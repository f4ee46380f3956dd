#!/usr/bin/env python3
"""Sync against a real Redmine: requests and seconds per cycle, and the memory of a big store.

    python benchmarks/sync_bench.py                # full: 1, 100 and 2,000 changed tickets
    python benchmarks/sync_bench.py --quick        # 1 and 100 tickets, under about 2 minutes
    python benchmarks/sync_bench.py --port 3005 --json figures.json

What it does, on the machine it runs on:

1. Starts Debian's Redmine (``tests/redmine/server.py``) on its own port (default 3002), or
   reuses the one already answering there, with a database file of its own
   (``$DATABASE_URL``, created once with ``rake db:migrate`` and Redmine's default data), so
   that thousands of benchmark writes never contend with other test sessions for the shared
   SQLite file (Debian's ``database.yml`` sets no busy timeout: a second writer fails at once).
2. In ONE ``rails runner`` call: the custom fields the bridge writes, one project per size and
   that many issues (through ``Issue.create!``, the model's own validations and callbacks;
   every tenth issue is backdated 30 days so the first sync finds it breached and escalated,
   and posts notes). Prints how long that took.
3. For each size: ``run_once`` cycles as the daemon runs them (one backend and one open store
   kept across cycles): the first sync (every issue changed, writes included), the echo cycle
   (reads the bridge's own writes back, writes nothing), two steady-state cycles with nothing
   changed, and a steady cycle with a new backend (what ``sync --once`` from cron pays).
   Requests are counted by method and endpoint by wrapping ``requests.Session.send`` here in
   the benchmark only (GET: ``/issues.json``, which includes the backend's batched re-reads of
   the issues it is about to write, counted apart too; ``/issues/N.json``; anything else);
   the time spent inside those calls is summed too.
4. Memory: two child processes whose state store holds 10,000 open tickets, populated through
   the ``memory`` backend (10,000 Redmine issues would take ~25 minutes to sync first), run a
   few daemon-like cycles; one reports ``ru_maxrss``, the other ``tracemalloc``'s peak (which
   itself costs memory, so the two are measured apart).

Nothing here asserts a timing. ``--json FILE`` writes every figure for scripts and the smoke
test (``tests/benchmarks/test_sync_bench_smoke.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this script sits in, installed or not (and reach tests/redmine).
sys.path.insert(0, str(ROOT))

import benchmachine  # noqa: E402 (this folder: the script's own)
import requests  # noqa: E402

from tracker_bridge.config import BridgeConfig, parse_config  # noqa: E402
from tracker_bridge.core.ticket import HistoryEvent  # noqa: E402
from tracker_bridge.manager import get_plugin_manager  # noqa: E402
from tracker_bridge.plugins.memory import MemoryTracker  # noqa: E402
from tracker_bridge.policyfile import load_policy  # noqa: E402
from tracker_bridge.store import Store  # noqa: E402
from tracker_bridge.sync import SyncReport, run_once  # noqa: E402

POLICY = ROOT / "examples" / "policies" / "care-pathway.yaml"
DEFAULT_PORT = 3002
DEFAULT_DB = Path("/var/tmp/tracker-bridge-bench/redmine.sqlite3")
KEY_ENV = "TB_BENCH_REDMINE_KEY"
TRACKER = "bench-redmine"
MEMORY_TRACKER = "bench-memory"
FULL_SIZES = (1, 100, 2000)
QUICK_SIZES = (1, 100)
MEMORY_TICKETS = 10_000
#: a daemon waits its poll interval (60 s by default) between cycles; waiting longer than the
#: Redmine backend's 2-second settling rule is enough for the same requests (the overlap
#: window is measured from the newest change seen, not from the clock)
PAUSE = 2.5
OLD_EVERY = 10
#: seconds between the issues' updated_on: a backlog changed over time, not a burst
SPREAD = 2
WRITE = {"response_due": "cf:SLA response due", "resolution_due": "cf:SLA resolution due",
         "labels": "cf:SLA labels", "notes": "journal", "timezone": "UTC"}

# -- machine ----------------------------------------------------------------------------------


def machine_lines() -> list[str]:
    return benchmachine.describe_machine()


# -- counting requests ------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    kind: str  # list, reread, issue, other
    seconds: float
    path: str


def endpoint_kind(url: str) -> str:
    split = urlsplit(url)
    path = split.path
    if path.endswith("/issues.json"):
        # issue_id=1,2,... is the backend re-reading issues before writing them; the scan's
        # walk through a crowded second sends issue_id=>=N
        ids = parse_qs(split.query).get("issue_id", [""])[0]
        return "reread" if ids and not ids.startswith(">=") else "list"
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "issues" and parts[1].removesuffix(".json").isdigit():
        return "issue"
    return "other"


@contextlib.contextmanager
def counting_requests() -> Iterator[list[Call]]:
    """Record every request any ``requests.Session`` sends in this block (method, endpoint,
    seconds until the response is read). Patched here, in the benchmark only."""
    original = requests.Session.send
    calls: list[Call] = []

    def send(session: requests.Session, request: requests.PreparedRequest,
             **kwargs: Any) -> requests.Response:
        t0 = time.perf_counter()
        try:
            return original(session, request, **kwargs)
        finally:
            url = str(request.url)
            calls.append(Call(str(request.method), endpoint_kind(url),
                              time.perf_counter() - t0, urlsplit(url).path))

    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        requests.Session.send = original  # type: ignore[method-assign]


# -- the Redmine instance ---------------------------------------------------------------------


def _field_specs() -> list[Any]:
    from tests.redmine.server import CustomFieldSpec

    labels = tuple(load_policy(POLICY).all_labels())
    return [CustomFieldSpec("SLA response due", "string"),
            CustomFieldSpec("SLA resolution due", "string"),
            CustomFieldSpec("SLA labels", "list", labels, multiple=True)]


# Runs after server.py's custom-field script in the same rails-runner call (ARGV[1]: sizes).
# Mail notifications are switched off in this database only: building a mail per created
# issue is 80% of Issue.create! here (33 ms -> 7 ms an issue).
_SETUP_RB = """
setup = JSON.parse(ARGV[1])
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
Setting.rest_api_enabled = "1" unless Setting.rest_api_enabled?
Setting.notified_events = [] unless Setting.notified_events.empty?
admin = User.find_by_login("admin")
if admin.must_change_passwd
  admin.must_change_passwd = false
  admin.save!
end
User.current = admin
tracker = Tracker.find_by(name: "Support") || Tracker.first
prios = IssuePriority.active.index_by(&:name)
mix = %w[Normal Low High Normal Urgent Normal Low High Normal Normal]
out = {"api_key" => admin.api_key, "redmine" => Redmine::VERSION.to_s,
       "rails" => Rails.version, "ruby" => RUBY_VERSION,
       "adapter" => ActiveRecord::Base.connection.adapter_name, "projects" => {}}
setup["sizes"].each do |n|
  t0 = clock.call
  ident = "#{setup["run"]}-n#{n}"
  p = Project.create!(name: ident, identifier: ident, is_public: true,
                      tracker_ids: Tracker.pluck(:id))
  ids = []
  (0...n).each_slice(500) do |chunk|
    Issue.transaction do
      chunk.each do |i|
        ids << Issue.create!(project: p, tracker: tracker, author: admin,
                             subject: format("Benchmark ticket %04d", i),
                             priority: prios[mix[i % mix.size]] || IssuePriority.default).id
      end
    end
  end
  every, spread = setup["old_every"], setup["spread"]
  now = Time.now.utc.change(usec: 0)
  Issue.transaction do
    ids.each_with_index do |id, i|
      stamp = spread > 0 ? now - (ids.size - i) * spread : nil
      created = i % every == every - 1 ? now - 30 * 86400 : stamp
      attrs = {}
      attrs[:updated_on] = stamp if stamp
      attrs[:created_on] = created if created
      Issue.where(id: id).update_all(attrs) unless attrs.empty?
    end
  end
  old = ids.each_with_index.count { |_, i| i % every == every - 1 }
  out["projects"][n.to_s] = {"identifier" => ident, "issues" => ids.size, "old" => old,
                             "seconds" => clock.call - t0}
end
puts "BENCH-JSON " + JSON.generate(out)
"""


@dataclass
class Setup:
    url: str
    key: str
    versions: dict[str, str]
    server_header: str
    db: Path
    db_created_s: float | None
    started_here: bool
    start_s: float
    runner_s: float
    burst: bool
    projects: dict[int, dict[str, Any]]


def ensure_database(db: Path) -> float | None:
    """Create the benchmark's own Redmine database once (schema + default data); return the
    seconds it took, or None when it existed. A file lock keeps two runs from racing."""
    from tests.redmine.server import REDMINE_DIR, RedmineNotInstalled, is_installed

    if not is_installed():
        raise RedmineNotInstalled(f"no Redmine in {REDMINE_DIR}; run "
                                  f"{ROOT / '.ci' / 'install-redmine.sh'}")
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if db.exists():
            return None
        t0 = time.monotonic()
        tmp = db.with_suffix(".creating")
        tmp.unlink(missing_ok=True)
        env = {**os.environ, "RAILS_ENV": "production", "DATABASE_URL": f"sqlite3:{tmp}",
               "REDMINE_LANG": "en"}
        for task in ("db:migrate", "redmine:load_default_data"):
            proc = subprocess.run(["ruby", "bin/rake", task], cwd=REDMINE_DIR, env=env,
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
                raise RuntimeError(f"rake {task} for {tmp} failed (exit {proc.returncode}):\n"
                                   f"{tail}")
        os.replace(tmp, db)  # only a complete database ever has the final name
        return time.monotonic() - t0


def prepare_redmine(port: int, db: Path, sizes: Sequence[int], run_id: str,
                    burst: bool = False) -> tuple[Any, Setup]:
    from tests.redmine.server import _CUSTOM_FIELDS_RB, RedmineServer, rails_runner

    db_created = ensure_database(db)
    # server.py passes our environment to `rails server` and `rails runner`: both use this
    # file, and wait for each other's writes (Debian's database.yml sets no busy timeout)
    os.environ["DATABASE_URL"] = f"sqlite3:{db}?timeout=10000"
    server = RedmineServer(port=port)
    t0 = time.monotonic()
    was_up = server.is_up()
    server.start()
    start_s = time.monotonic() - t0

    t0 = time.monotonic()
    out = rails_runner(_CUSTOM_FIELDS_RB + _SETUP_RB,
                       json.dumps([s.to_json() for s in _field_specs()]),
                       json.dumps({"run": run_id, "sizes": list(sizes), "old_every": OLD_EVERY,
                                   "spread": 0 if burst else SPREAD}),
                       timeout=900)
    runner_s = time.monotonic() - t0
    data: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("BENCH-JSON "):
            data = json.loads(line[len("BENCH-JSON "):])
    if not data:
        raise RuntimeError(f"the setup script printed no result: {out[-500:]!r}")

    r = requests.get(f"{server.url}/users/current.json", timeout=30,
                     headers={"X-Redmine-API-Key": data["api_key"]})
    if r.status_code != 200:
        # something else answers on this port: another Redmine, on another database
        raise SystemExit(f"error: the Redmine on {server.url} does not know the benchmark "
                         f"database's admin key (HTTP {r.status_code}); it was started on "
                         "another database. Stop it or pick another --port.")
    projects = {int(n): p for n, p in data["projects"].items()}
    return server, Setup(
        url=server.url, key=data["api_key"],
        versions={k: data[k] for k in ("redmine", "rails", "ruby", "adapter")},
        server_header=r.headers.get("Server", "?"), db=db, db_created_s=db_created,
        started_here=not was_up and server.started_here, start_s=start_s, runner_s=runner_s,
        burst=burst, projects=projects)


def redmine_config(url: str, project: str, state: Path, pm: Any) -> BridgeConfig:
    doc = {"policy": str(POLICY), "state": str(state), "trackers": [{
        "name": TRACKER, "backend": "redmine", "url": url, "credentials": {"env": KEY_ENV},
        "projects": [project], "plan": "essentials", "fields": {"priority": "priority"},
        "statuses": {"waiting": ["Feedback"]}, "write": dict(WRITE)}]}
    return parse_config(doc, source="<sync_bench>", base=state.parent, pm=pm)


# -- cycles -----------------------------------------------------------------------------------


@dataclass
class CycleFigures:
    size: int
    cycle: str
    seconds: float
    http_seconds: float
    requests: dict[str, int]
    fetched: int
    refetched: int
    evaluated: int
    written: int
    notes: int
    errors: list[str] = field(default_factory=list)
    #: the "GET other" endpoints (ids as N): what a backend looks up besides issues
    other_paths: dict[str, int] = field(default_factory=dict)
    #: of "GET list": the backend's batched re-reads of the issues it writes
    rereads: int = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def request_columns(calls: Sequence[Call]) -> dict[str, int]:
    c = Counter((x.method, x.kind) for x in calls)
    cols = {"GET list": c[("GET", "list")] + c[("GET", "reread")],
            "GET issue": c[("GET", "issue")], "GET other": c[("GET", "other")],
            "PUT": sum(n for (m, _), n in c.items() if m == "PUT")}
    cols["other"] = sum(c.values()) - sum(cols.values())
    return cols


def run_cycle(size: int, name: str, config: BridgeConfig, store: Store,
              backends: dict[str, Any], pm: Any) -> CycleFigures:
    with counting_requests() as calls:
        t0 = time.perf_counter()
        report: SyncReport = run_once(config, store=store, backends=backends, pm=pm)
        seconds = time.perf_counter() - t0
    [tr] = report.trackers
    return CycleFigures(size=size, cycle=name, seconds=seconds,
                        http_seconds=sum(c.seconds for c in calls),
                        requests=request_columns(calls), fetched=tr.fetched,
                        refetched=tr.refetched, evaluated=tr.evaluated,
                        written=tr.writes["tickets"], notes=tr.writes["notes"],
                        errors=[str(e) for e in tr.errors],
                        rereads=sum(1 for c in calls if c.kind == "reread"),
                        other_paths=dict(Counter(
                            re.sub(r"/\d+", "/N", c.path) for c in calls
                            if c.kind == "other")))


def close_all(backends: dict[str, Any]) -> None:
    for b in backends.values():
        with contextlib.suppress(Exception):
            b.close()
    backends.clear()


def bench_size(setup: Setup, size: int, workdir: Path, pm: Any,
               progress: Any) -> list[CycleFigures]:
    ident = setup.projects[size]["identifier"]
    config = redmine_config(setup.url, ident, workdir / f"state-{size}.sqlite", pm)
    rows: list[CycleFigures] = []
    store = Store(config.state)
    backends: dict[str, Any] = {}
    try:
        for i, name in enumerate(("first sync", "echo", "steady", "steady")):
            if i:
                time.sleep(PAUSE)
            rows.append(run_cycle(size, name, config, store, backends, pm))
            progress(rows[-1])
        close_all(backends)  # a fresh process: sync --once from cron, or a daemon restart
        time.sleep(PAUSE)
        rows.append(run_cycle(size, "steady, new backend", config, store, backends, pm))
        progress(rows[-1])
    finally:
        close_all(backends)
        store.close()
    return rows


# -- memory -----------------------------------------------------------------------------------


def memory_config(state: Path, pm: Any, poll_interval: str = "60s") -> BridgeConfig:
    doc = {"policy": str(POLICY), "state": str(state), "poll_interval": poll_interval,
           "trackers": [{
        "name": MEMORY_TRACKER, "backend": "memory", "options": {"instance": MEMORY_TRACKER},
        "plan": "essentials", "fields": {"priority": "priority"},
        "statuses": {"waiting": ["Feedback"]}, "write": dict(WRITE)}]}
    return parse_config(doc, source="<sync_bench memory>", base=state.parent, pm=pm)


def make_memory_tickets(tracker: MemoryTracker, n: int, now: datetime, seed: int = 2026) -> None:
    """``n`` open tickets created over the last three days: New, In Progress (with the first
    response), Feedback (waiting), mixed priorities; some end up breached and get notes."""
    rnd = random.Random(seed)
    prios = ("Normal", "Low", "High", "Normal", "Urgent", "Normal", "Low", "High")
    for i in range(n):
        created = now - timedelta(seconds=rnd.randint(600, 3 * 86400))
        status = rnd.choice(("New", "In Progress", "In Progress", "Feedback"))
        history: list[HistoryEvent] = []
        if status != "New":
            t = created + timedelta(minutes=rnd.randint(5, 300))
            t = min(t, now - timedelta(seconds=60))
            history.append(HistoryEvent(at=t, kind="status", by="agent", from_="New",
                                        to="In Progress"))
            history.append(HistoryEvent(at=t, kind="comment", by="agent", public=True,
                                        text="Looking into it."))
            if status == "Feedback":
                history.append(HistoryEvent(at=t + timedelta(seconds=30), kind="status",
                                            by="agent", from_="In Progress", to="Feedback"))
        tracker.create(f"Benchmark ticket {i:05d}", key=str(i + 1), created=created,
                       status=status, fields={"priority": prios[i % len(prios)]},
                       labels=("customer-label",) if i % 7 == 0 else (), history=history)


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def hwm_mib() -> float | None:
    """The kernel's peak RSS of this process image (VmHWM), a cross-check of ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def memory_child(args: argparse.Namespace) -> int:
    """One child process of the memory figures; prints one JSON line."""
    source = Path(args.memory_dir)
    pm = get_plugin_manager()
    out: dict[str, Any] = {"rss_after_imports_mib": maxrss_mib()}
    workdir = source
    if args.memory_child == "measure":
        # every measurement starts from the populated store, not from the last one's
        workdir = Path(tempfile.mkdtemp(prefix="measure-", dir=source))
        for f in source.glob("state.sqlite*"):
            shutil.copy2(f, workdir / f.name)
    state = workdir / "state.sqlite"
    config = memory_config(state, pm)
    if args.memory_child == "populate":
        tracker = MemoryTracker.named(MEMORY_TRACKER)
        make_memory_tickets(tracker, args.memory_tickets, datetime.now(UTC))
        t0 = time.perf_counter()
        first = run_once(config, pm=pm)
        out["first_sync_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_once(config, pm=pm)  # the echo of its own writes
        out["echo_s"] = time.perf_counter() - t0
        [tr] = first.trackers
        out["written"], out["notes"] = tr.writes["tickets"], tr.writes["notes"]
        (workdir / "tickets.json").write_text(json.dumps(tracker.to_json()))
        with Store(state) as st:
            out["open_in_store"] = len(st.open_keys(MEMORY_TRACKER))
        out["store_mib"] = sum(p.stat().st_size for p in workdir.glob("state.sqlite*")) / 2**20
        out["rss_peak_mib"] = maxrss_mib()  # with the double's tickets in this process too
    else:
        # The memory backend keeps its tickets in this process: load them before measuring
        # (and before tracemalloc starts), so the figures are the bridge's, not its double's.
        data = json.loads((source / "tickets.json").read_text())
        tracker = MemoryTracker.from_json(MEMORY_TRACKER, data, "tickets.json")
        del data
        MemoryTracker._instances[MEMORY_TRACKER] = tracker  # what named() would hand out
        gc.collect()
        out["rss_after_double_mib"] = maxrss_mib()
        if args.tracemalloc:
            tracemalloc.start()
        if args.daemon:
            out.update(daemon_cycles(workdir, tracker, pm))
        else:
            out.update(run_once_cycles(config, tracker, pm))
        if args.tracemalloc:
            current, peak = tracemalloc.get_traced_memory()
            out["traced_current_mib"], out["traced_peak_mib"] = current / 2**20, peak / 2**20
        out["rss_peak_mib"] = maxrss_mib()
    out["vmhwm_mib"] = hwm_mib()
    print("MEMORY-JSON " + json.dumps(out))
    return 0

#: the cycles of a memory measurement: nothing changed, except 100 tickets before the 4th
MEMORY_PLAN = ("steady", "steady", "steady", "100 changed", "steady")


def _change_100(tracker: MemoryTracker) -> None:
    rnd = random.Random(7)
    for key in rnd.sample(tracker.keys(), min(100, len(tracker.keys()))):
        tracker.update(key, comment="Any news?", by="customer")


def run_once_cycles(config: BridgeConfig, tracker: MemoryTracker, pm: Any) -> dict[str, Any]:
    """The daemon's way of calling run_once: one open store, one backend kept."""
    store = Store(config.state)
    backends: dict[str, Any] = {}
    seconds = []
    try:
        for step in MEMORY_PLAN:
            if step == "100 changed":
                _change_100(tracker)
            t0 = time.perf_counter()
            report = run_once(config, pm=pm, store=store, backends=backends)
            seconds.append(time.perf_counter() - t0)
            if not report.ok:
                raise RuntimeError(f"memory cycle errors: {report.errors}")
        return {"cycles": list(MEMORY_PLAN), "cycle_s": seconds,
                "open_in_store": len(store.open_keys(MEMORY_TRACKER))}
    finally:
        close_all(backends)
        store.close()


def daemon_cycles(workdir: Path, tracker: MemoryTracker, pm: Any) -> dict[str, Any]:
    """The same cycles run by ``tracker_bridge.daemon.Daemon`` (polling every second); a
    ``tracker_bridge_cycle_done`` hook changes the tickets and stops it."""
    from tracker_bridge.daemon import Daemon
    from tracker_bridge.hookspecs import hookimpl

    config = memory_config(workdir / "state.sqlite", pm, poll_interval="1s")
    daemon = Daemon(config, pm=pm)
    done: list[SyncReport] = []

    class Driver:
        @hookimpl
        def tracker_bridge_cycle_done(self, report: SyncReport) -> None:
            done.append(report)
            if len(done) == MEMORY_PLAN.index("100 changed"):
                _change_100(tracker)
            if len(done) >= len(MEMORY_PLAN):
                daemon.request_stop("benchmark done")

    driver = Driver()
    pm.register(driver)
    t0 = time.perf_counter()
    try:
        status = daemon.run()
    finally:
        pm.unregister(driver)
    if status != 0 or not all(r.ok for r in done):
        raise RuntimeError(f"daemon exit {status}; errors {[r.errors for r in done]}")
    with Store(config.state) as st:
        open_now = len(st.open_keys(MEMORY_TRACKER))
    return {"cycles": ["daemon"] * len(done), "wall_s": time.perf_counter() - t0,
            "evaluated": [r.trackers[0].evaluated for r in done], "open_in_store": open_now}


def run_child(*extra: str) -> dict[str, Any]:
    # Through a shell that forks the child rather than exec'ing it: Linux carries ru_maxrss
    # over fork+exec, so a child started straight from this process (by now holding the
    # Redmine figures) would report this process's peak instead of its own.
    proc = subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable,
                           str(Path(__file__).resolve()), *extra],
                          capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("MEMORY-JSON "):
            return dict(json.loads(line[len("MEMORY-JSON "):]))
    raise RuntimeError(f"memory child {extra} failed (exit {proc.returncode}):\n"
                       f"{proc.stderr[-2000:]}")


def bench_memory(n: int, workdir: Path) -> dict[str, Any]:
    mdir = workdir / "memory"
    mdir.mkdir()
    common = ["--memory-dir", str(mdir), "--memory-tickets", str(n)]
    t0 = time.monotonic()
    populate = run_child("--memory-child", "populate", *common)
    populate["wall_s"] = time.monotonic() - t0
    rss = run_child("--memory-child", "measure", *common)
    traced = run_child("--memory-child", "measure", "--tracemalloc", *common)
    out = {"tickets": n, "populate": populate, "rss": rss, "tracemalloc": traced}
    if (ROOT / "tracker_bridge" / "daemon.py").exists():
        out["daemon_rss"] = run_child("--memory-child", "measure", "--daemon", *common)
        out["daemon_tracemalloc"] = run_child("--memory-child", "measure", "--daemon",
                                              "--tracemalloc", *common)
    return out


# -- output -----------------------------------------------------------------------------------

HEADER = (f"  {'tickets':>7}  {'cycle':<21} {'seconds':>8} {'in HTTP':>8} {'requests':>8} "
          f"{'GET list':>8} {'GET issue':>9} {'GET other':>9} {'PUT':>5} {'other':>5} "
          f"{'fetched':>7} {'written':>7} {'notes':>5}")


def figure_line(f: CycleFigures) -> str:
    r = f.requests
    fetched = f"{f.fetched}" + (f"+{f.refetched}" if f.refetched else "")
    return (f"  {f.size:>7,}  {f.cycle:<21} {f.seconds:>8.2f} {f.http_seconds:>8.2f} "
            f"{f.total:>8,} {r['GET list']:>8,} {r['GET issue']:>9,} {r['GET other']:>9,} "
            f"{r['PUT']:>5,} {r['other']:>5,} {fetched:>7} {f.written:>7,} {f.notes:>5,}")


def setup_lines(s: Setup, sizes: Sequence[int]) -> list[str]:
    v = s.versions
    how = f"started here in {s.start_s:.1f} s" if s.started_here else "already running"
    lines = [f"redmine: {v['redmine']} (Rails {v['rails']}, Ruby {v['ruby']}) on "
             f"{s.server_header}, {v['adapter']}; {s.url} ({how}); database {s.db}"
             + (f" (created in {s.db_created_s:.1f} s)" if s.db_created_s is not None else "")]
    issues = sum(s.projects[n]["issues"] for n in sizes)
    ruby = sum(s.projects[n]["seconds"] for n in sizes)
    per = f", {1000 * ruby / issues:.1f} ms an issue" if issues else ""
    stamps = ("their own creation stamps (a burst)" if s.burst else
              f"updated_on spread {SPREAD} s apart")
    lines.append(f"setup: custom fields, {len(sizes)} project(s) and {issues:,} issues "
                 f"(Issue.create!, {stamps}, 1 in {OLD_EVERY} created 30 days ago) in one "
                 f"rails runner call: {s.runner_s:.1f} s ({ruby:.1f} s creating projects and "
                 f"issues{per}; the rest is booting Rails)")
    return lines


def memory_lines(m: dict[str, Any]) -> list[str]:
    p, rss, tm = m["populate"], m["rss"], m["tracemalloc"]
    steady = [s for c, s in zip(rss["cycles"], rss["cycle_s"], strict=True) if c == "steady"]
    changed = [s for c, s in zip(rss["cycles"], rss["cycle_s"], strict=True) if c != "steady"]
    lines = [
        f"memory: a sync process whose state store holds {rss['open_in_store']:,} open tickets "
        f"(populated through the memory backend: a first sync of {m['tickets']:,} tickets "
        f"wrote {p['written']:,} of them and {p['notes']:,} notes in {p['first_sync_s']:.1f} s; "
        f"store {p['store_mib']:.1f} MiB on disk)",
        f"  cycles measured: {len(rss['cycles'])} daemon-like cycles (one store and backend "
        f"kept): steady {min(steady):.2f}-{max(steady):.2f} s, 100 changed tickets "
        f"{max(changed):.2f} s",
        f"  ru_maxrss: {rss['rss_after_imports_mib']:.1f} MiB after imports, "
        f"{rss['rss_after_double_mib']:.1f} MiB with the memory backend's {m['tickets']:,} "
        f"tickets loaded (the test double), {rss['rss_peak_mib']:.1f} MiB peak after the "
        f"cycles (+{rss['rss_peak_mib'] - rss['rss_after_double_mib']:.1f} MiB)",
        f"  tracemalloc (started after the double was loaded): peak "
        f"{tm['traced_peak_mib']:.1f} MiB during the cycles, {tm['traced_current_mib']:.1f} MiB "
        "still held after them",
        f"  the populate process (first sync of {m['tickets']:,} tickets, the double's tickets "
        f"included): ru_maxrss {p['rss_peak_mib']:.1f} MiB",
    ]
    d, dt = m.get("daemon_rss"), m.get("daemon_tracemalloc")
    if d and dt:
        lines += [
            f"  the daemon (tracker_bridge.daemon.Daemon, polling every second, same store): "
            f"{len(d['cycles'])} cycles in {d['wall_s']:.1f} s, evaluated "
            f"{'/'.join(str(x) for x in d['evaluated'])} tickets",
            f"    ru_maxrss {d['rss_after_double_mib']:.1f} MiB with the double loaded, "
            f"{d['rss_peak_mib']:.1f} MiB peak after the cycles "
            f"(+{d['rss_peak_mib'] - d['rss_after_double_mib']:.1f} MiB); tracemalloc peak "
            f"{dt['traced_peak_mib']:.1f} MiB, {dt['traced_current_mib']:.1f} MiB still held",
        ]
    return lines


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 and 100 tickets only (~2 min)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT,
                    help=f"the benchmark Redmine's port (default {DEFAULT_PORT}; 0: a free one)")
    ap.add_argument("--sizes", help="comma-separated ticket counts, instead of the defaults")
    ap.add_argument("--memory-tickets", type=int, default=MEMORY_TICKETS,
                    help=f"open tickets in the store for the memory figures "
                         f"(default {MEMORY_TICKETS:,}; 0 skips them)")
    ap.add_argument("--db", type=Path, default=DEFAULT_DB,
                    help=f"the benchmark Redmine's own database file (default {DEFAULT_DB})")
    ap.add_argument("--keep-redmine", action="store_true",
                    help="leave a Redmine started here running (the next run reuses it)")
    ap.add_argument("--burst", action="store_true",
                    help="keep the issues' own creation stamps (about 100 a second) instead of "
                         f"spreading them {SPREAD} s apart: see benchmarks/README.md")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    # internal: the memory figures' child processes
    ap.add_argument("--memory-child", choices=("populate", "measure"), help=argparse.SUPPRESS)
    ap.add_argument("--memory-dir", help=argparse.SUPPRESS)
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--daemon", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    started = time.monotonic()
    if args.sizes:
        sizes = tuple(int(x) for x in args.sizes.split(",") if x.strip())
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if not sizes or min(sizes) < 1:
        print("error: --sizes needs positive ticket counts", file=sys.stderr)
        return 2
    port = args.port
    if port == 0:
        from tests.redmine.server import free_port

        port = free_port()

    for line in machine_lines():
        print(line, flush=True)
    run_id = f"bench{int(time.time()) % 10**7:07d}"
    server, setup = prepare_redmine(port, args.db, sizes, run_id, args.burst)
    os.environ[KEY_ENV] = setup.key
    results: dict[str, Any] = {"machine": machine_lines(), "setup": asdict(setup) | {
        "db": str(setup.db), "key": None}, "cycles": [], "memory": None}
    try:
        for line in setup_lines(setup, sizes):
            print(line, flush=True)
        mode = "quick" if args.quick else "full"
        print(f"run: {mode}; sizes {', '.join(f'{n:,}' for n in sizes)}; policy {POLICY.name}; "
              f"overlap_seconds 60 (default); {PAUSE} s between cycles", flush=True)
        print("\nper cycle: run_once against Redmine, one backend and one open store kept "
              "across cycles as the daemon does ('in HTTP': seconds inside requests' send)")
        print(HEADER, flush=True)
        pm = get_plugin_manager()
        rows: list[CycleFigures] = []
        with tempfile.TemporaryDirectory(prefix="tb-sync-bench-") as tmp:
            for n in sizes:
                rows += bench_size(setup, n, Path(tmp), pm,
                                   lambda f: print(figure_line(f), flush=True))
            results["cycles"] = [asdict(r) | {"total": r.total} for r in rows]
            rereads = [f"{r.size:,} tickets, {r.cycle}: {r.rereads:,}" for r in rows if r.rereads]
            if rereads:
                print("\n'GET list' includes the backend's batched re-reads of the issues it is "
                      "about to write (/issues.json?issue_id=...): " + "; ".join(rereads))
            errors = [f"{r.size:,} tickets, {r.cycle}: {e}" for r in rows for e in r.errors]
            if errors:
                print("\nerrors during the cycles (figures above are not valid):")
                for e in errors:
                    print(f"  {e}")
                return 1
            if args.memory_tickets:
                print(f"\nmemory: populating a store with {args.memory_tickets:,} open "
                      "tickets ...", flush=True)
                results["memory"] = bench_memory(args.memory_tickets, Path(tmp))
                for line in memory_lines(results["memory"]):
                    print(line)
        print(f"\ntotal run time: {time.monotonic() - started:.1f} s")
    finally:
        if setup.started_here and not args.keep_redmine:
            server.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
