"""The sync daemon behind ``tracker-bridge run`` (docs/daemon.md).

Each tracker has its own schedule. A tracker's cycle is :func:`tracker_bridge.sync.run_once`
for that tracker alone, one store transaction, and runs when the first of these comes:

- its poll: ``poll_interval`` after its last cycle;
- the earliest stored ``next_change`` of its tickets (a ticket turning at risk or breached,
  an escalation level or a tier's time running out), so that a time-driven change reaches
  the tracker within milliseconds of the instant instead of at the next poll;
- after a failure, a backoff: ``min(poll_interval, 5 s * 2^(failures-1))`` with jitter, never
  sooner than a ``Retry-After`` the tracker sent; a tracker whose credentials are refused is
  left alone for ``auth_retry`` (default 1 h) or until SIGHUP, and shows as failing in
  ``/healthz`` and ``tracker_bridge_tracker_suspended``.

Trackers run in parallel: each has a thread of its own (and a store connection of its own),
which sleeps in one ``threading.Event.wait`` until its next instant: no polling loop, no
wake-ups while idle. A tracker hanging on a request delays only itself: a cycle records its
work in one short store transaction at its end (sync.py), so no store lock is held while a
tracker is slow, and the other trackers' cycles run and commit meanwhile.

Signals: SIGTERM or SIGINT stops it. A cycle in progress finishes the ticket it is writing and
ends before the next one (its writes are recorded, its cursor stays, the next start redoes the
rest). If the cycles have not ended within ``stop_timeout`` seconds (a tracker hanging on a
request), or on a second signal, those still running are abandoned where they are: their
records are never committed, which is as safe as a crash (see store.py). SIGHUP re-reads the config (new credentials from their
file) and runs every tracker at once, including suspended ones.

With a SQLite store, one daemon per store: ``run`` holds an ``fcntl`` lock on ``STATE.lock``
beside the store for its whole life; a second one exits at once with status 1 naming the
holder's pid.

With a PostgreSQL store (``state: postgresql://...``) several daemons share the trackers
through leases (store_pg.py; docs/daemon.md, "Several daemons"). Each daemon has an owner id
(``host:pid:random``) and a lease thread that, every quarter of the lease TTL:

- renews the daemon's heartbeat (a lease named ``@daemon:OWNER``: the live daemons are the
  unexpired heartbeats) and every tracker lease it holds; a renewal that fails (another owner
  took it) stops that tracker's thread at once (between two tickets), and a lease whose time
  runs out without a renewal (the database unreachable) stops it too, before the lease's
  expiry by the database's clock, when another daemon may take it;
- takes free or expired tracker leases up to its fair share, ``ceil(trackers / live
  daemons)``, and gives back (after the cycle in progress) the leases above it, so two or
  three daemons end up with an even split and a dead daemon's trackers are taken within a
  TTL and a quarter;
- keeps the cluster's view (every lease, its owner, age, handovers) for ``/healthz``, the
  metrics and ``tracker-bridge status``.

A tracker's thread runs only while its lease is held, and each cycle's records are committed
with the lease as the fence: if the token moved on, the store records nothing (LeaseLost) and
the thread stops. SIGTERM ends the cycles, then releases every lease at once, so another
daemon takes them at its next lease round.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .errors import EXIT_OK, StoreError, TrackerBridgeError
from .observability import Endpoint, Health, Metrics, SecretFilter, serve
from .report import SyncReport, TrackerReport
from .retry import RetryPolicy, sleep_wait
from .store import BaseStore, Lease, LeaseLost, open_store, owner_id
from .sync import run_once

if TYPE_CHECKING:
    import pluggy

    from .backend import Backend
    from .config import BridgeConfig

log = logging.getLogger("tracker_bridge.daemon")

#: the first backoff after a failed cycle; it doubles per failure, up to the poll interval
FAILURE_BACKOFF = 5.0
#: never sleep longer than this in one go (a wall-clock jump is noticed within it)
MAX_SLEEP = 300.0
#: wake this long after a next_change instant, so the cycle's clock is surely past it
WAKE_MARGIN = timedelta(milliseconds=2)


class DaemonLocked(TrackerBridgeError):
    """Another ``tracker-bridge run`` holds this state store (exit status 1)."""


class Abandon(BaseException):
    """Raised in the main thread to abandon a cycle that did not stop in time."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class StateLock:
    """An exclusive ``fcntl.flock`` on ``STATE.lock``, held while the daemon lives.

    The kernel drops the lock when the process dies, however it dies, so a killed daemon never
    leaves a stale lock behind. The file is never deleted (deleting a lock file races with a
    process that has just opened it); it holds the holder's pid for the message.
    """

    def __init__(self, state: Path) -> None:
        self.path = Path(f"{state}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            msg = (f"another tracker-bridge run (pid {holder}) is using the state store: "
                   f"{self.path} is locked; one daemon per state store")
            raise DaemonLocked(msg) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class _Schedule:
    """When one tracker runs next, and why."""

    next_run: datetime
    #: the time-driven instant the next run is for (None: a poll or a backoff)
    for_change: datetime | None = None
    failures: int = 0
    suspended: bool = False


class Daemon:
    """The loop of ``tracker-bridge run``; :meth:`run` returns the exit status."""

    def __init__(self, config: BridgeConfig, *, pm: pluggy.PluginManager,
                 only: Iterable[str] = (), metrics_port: int | None = None,
                 auth_retry: float = 3600.0, health_max_age: float | None = None,
                 stop_timeout: float = 10.0, retry: RetryPolicy | None = None,
                 reload: Callable[[], BridgeConfig] | None = None,
                 secret_filter: SecretFilter | None = None,
                 failure_backoff: float = FAILURE_BACKOFF,
                 rng: random.Random | None = None,
                 lease_ttl: float | None = None) -> None:
        self.config = config
        self.pm = pm
        self.only = tuple(only)
        self.metrics_port = metrics_port
        self.auth_retry = auth_retry
        poll = config.poll_interval.total_seconds()
        self.health = Health(max_age=health_max_age or max(3 * poll, 60.0))
        self.metrics = Metrics(self.health)
        self.stop_timeout = stop_timeout
        self.reload_config = reload
        self.secret_filter = secret_filter
        self.failure_backoff = failure_backoff
        self.rng = rng or random.Random()
        #: this daemon in the cluster (a shared store); a lease lasts lease_ttl seconds
        self.owner = owner_id()
        self.lease_ttl = lease_ttl or default_lease_ttl(poll)
        self.leases: dict[str, Lease] = {}
        #: per tracker: set to stop that tracker's thread (a stop, a lease lost or given back)
        self._halt: dict[str, threading.Event] = {}
        self._shared = False
        self.cluster: dict[str, Any] | None = None
        #: set when a stop is requested; every wait in a cycle watches it
        self.stop = threading.Event()
        self._wakeup = threading.Event()
        self._reload = False
        self._signals = 0
        self._main_thread = threading.main_thread().ident
        self.retry = retry or RetryPolicy()
        # retry waits end at once when a stop is requested
        self.retry = RetryPolicy(
            attempts=self.retry.attempts, initial=self.retry.initial,
            max_wait=self.retry.max_wait, jitter=self.retry.jitter,
            max_retry_after=self.retry.max_retry_after, wait=self._interruptible(self.retry.wait),
            on_retry=self._on_retry, rng=self.retry.rng)
        self._user_on_retry = (retry.on_retry if retry is not None else None)
        self.backends: dict[str, Backend] = {}
        self.schedule: dict[str, _Schedule] = {}
        self.endpoint: Endpoint | None = None
        #: the main thread's store connection (each tracker thread opens its own)
        self.store: BaseStore | None = None
        #: which tracker the calling thread is cycling (for the retry callback)
        self._local = threading.local()
        #: the tracker threads, and the event that wakes each early (SIGHUP, stop)
        self._workers: dict[str, threading.Thread] = {}
        self._wake: dict[str, threading.Event] = {}
        #: bumped by a reload: a tracker thread then drops its old backend before its cycle
        self._generation = 0
        self._backend_gen: dict[str, int] = {}
        #: set when run() has ended
        self._done = threading.Event()
        #: set when run() gave up waiting for the cycles in progress: they never commit
        self._abandon = threading.Event()
        self._setup_trackers()

    # -- setup ----------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        names = [t.name for t in self.config.trackers]
        return [n for n in names if not self.only or n in self.only]

    def _setup_trackers(self) -> None:
        now = utcnow()
        names = self._names()
        for name in names:
            if name not in self.schedule:
                self.schedule[name] = _Schedule(next_run=now)
            self.health.tracker(name)
            self.metrics.tracker_seen(name)
        for name in list(self.schedule):
            if name not in names:
                del self.schedule[name]
                with self.health.lock:
                    self.health.trackers.pop(name, None)

    @property
    def _current(self) -> str | None:
        """The tracker whose cycle the calling thread runs (None: none)."""
        return getattr(self._local, "name", None)

    def _running(self) -> list[str]:
        return [n for n, t in self._workers.items() if t.is_alive()]

    def _interruptible(self, wait: Callable[[float], bool]) -> Callable[[float], bool]:
        if wait is not sleep_wait:
            return wait  # an injected wait (tests) is used as it is

        def w(seconds: float) -> bool:
            return self.stop.wait(seconds)
        return w

    def _on_retry(self, exc: BaseException, attempt: int, seconds: float) -> None:
        # health shows the trouble while the cycle is still retrying, not only after it
        name = self._current
        if name is not None:
            th = self.health.tracker(name)
            th.last_error = {"kind": "unavailable", "key": None, "message": str(exc),
                             "at": utcnow().isoformat(timespec="seconds"),
                             "retrying": True, "attempt": attempt}
        if self._user_on_retry is not None:
            self._user_on_retry(exc, attempt, seconds)

    # -- signals ----------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            # Event.set takes a lock the interrupted main thread might hold: set it from a
            # thread of its own, never from inside the handler
            threading.Thread(target=self.request_stop, args=(signal.Signals(signum).name,),
                             daemon=True).start()
            return
        if self._running():
            raise Abandon(f"{signal.Signals(signum).name} again")

    def _on_hup(self, signum: int, frame: Any) -> None:
        self._reload = True
        threading.Thread(target=self._wakeup.set, daemon=True).start()

    def _wake_all(self) -> None:
        self._wakeup.set()
        for ev in list(self._wake.values()):
            ev.set()

    def request_stop(self, why: str = "stop requested") -> None:
        """Stop: each tracker's cycle ends after the ticket being written; :meth:`run` waits
        ``stop_timeout`` seconds for them, then abandons those still running."""
        if self.stop.is_set():
            return
        log.info("%s: stopping", why, extra={"event": "stopping"})
        self.stop.set()
        for ev in list(self._halt.values()):
            ev.set()
        self._wake_all()

    # -- leases (a shared store) -----------------------------------------------------------

    def _lost(self, name: str) -> None:
        """Stop working on ``name`` at once: its lease is gone."""
        self.leases.pop(name, None)
        self.metrics.lease_lost.labels(name).inc()
        self.metrics.lease_held.labels(name).set(0)
        ev = self._halt.get(name)
        if ev is not None:
            ev.set()
        w = self._wake.get(name)
        if w is not None:
            w.set()

    def _lease_loop(self) -> None:
        """The lease thread: every quarter TTL, heartbeat, renew, take, give back."""
        assert self.store is not None
        lst = self.store.reopen()  # a connection of its own
        try:
            while not self.stop.is_set():
                try:
                    self._lease_round(lst)
                except Exception as e:  # the database unreachable: the leases run out
                    log.warning("lease round failed: %s", self.config.mask(str(e)),
                                extra={"event": "lease_round_failed"})
                    self._expire_overdue()
                self.stop.wait(self.lease_ttl / 4)
        finally:
            lst.close()

    def _expire_overdue(self) -> None:
        """Leases not renewed in time: stop their trackers before anyone may take them."""
        for name, lease in list(self.leases.items()):
            if lease.remaining() <= self.lease_ttl / 4:
                log.warning("%s: the lease could not be renewed in time; stopping the "
                            "tracker", name, extra={"tracker": name, "event": "lease_lost"})
                self._lost(name)

    def _lease_round(self, st: BaseStore) -> None:
        ttl = timedelta(seconds=self.lease_ttl)
        hb = st.acquire(f"{HEARTBEAT}{self.owner}", self.owner, ttl)
        if hb is None:  # (cannot happen: the name is ours alone)
            return
        for name, lease in list(self.leases.items()):
            try:
                self.leases[name] = st.renew(lease, ttl)
            except LeaseLost as e:
                log.warning("%s: lease lost (%s): stopping the tracker", name, e,
                            extra={"tracker": name, "event": "lease_lost"})
                self._lost(name)
        infos = st.leases()
        names = [n for n in self.schedule]
        live = {i.owner for i in infos if i.tracker.startswith(HEARTBEAT) and not i.expired}
        live.add(self.owner)
        share = math.ceil(len(names) / len(live)) if names else 0
        held = sorted(self.leases)
        # give back those above the fair share (after their cycle; released when it ended)
        for name in held[share:]:
            ev = self._halt.get(name)
            if ev is not None and not ev.is_set():
                log.info("%s: giving the tracker back (fair share %d of %d trackers, %d "
                         "daemons)", name, share, len(names), len(live),
                         extra={"tracker": name, "event": "lease_give_back"})
                ev.set()
                self._wake[name].set()
        for name in list(self.leases):
            t = self._workers.get(name)
            if self._halt.get(name, threading.Event()).is_set() and (t is None
                                                                     or not t.is_alive()):
                lease = self.leases.pop(name)
                st.release(lease)
                self.metrics.lease_held.labels(name).set(0)
        # take free or expired ones up to the share, in an order of this daemon's own
        free = {i.tracker for i in infos if i.expired} | (set(names) - {i.tracker for i in infos})
        order = sorted(names, key=lambda n: hash((self.owner, n)))
        for name in order:
            if len(self.leases) >= share or self.stop.is_set():
                break
            if name in self.leases or name not in free:
                continue
            lease = st.acquire(name, self.owner, ttl)
            if lease is not None:
                log.info("%s: took the lease (token %d)", name, lease.token,
                         extra={"tracker": name, "event": "lease_taken", "token": lease.token})
                self.leases[name] = lease
                self._halt.pop(name, None)  # (a give-back of an earlier lease is over)
                self.metrics.lease_held.labels(name).set(1)
                sched = self.schedule.get(name)
                if sched is not None:
                    sched.next_run = utcnow()  # at once: the last owner may be long gone
        self.cluster = cluster_view(st.leases(), self.owner)
        self.metrics.set_cluster(self.cluster)
        self.health.cluster = self.cluster
        self._wakeup.set()  # the main thread starts the threads of new leases

    def _release_all(self) -> None:
        """SIGTERM: every cycle has ended; give every lease back at once."""
        if not self._shared or self.store is None:
            return
        for name, lease in list(self.leases.items()):
            with contextlib.suppress(Exception):
                self.store.release(lease)
            self.leases.pop(name, None)
        with contextlib.suppress(Exception):
            hb = self.store.acquire(f"{HEARTBEAT}{self.owner}", self.owner,
                                    timedelta(seconds=self.lease_ttl))
            if hb is not None:
                self.store.release(hb)
        log.info("released the leases", extra={"event": "leases_released"})

    def status_page(self) -> str:
        """The status page's HTML now (tracker_bridge/statuspage.py), from the store read
        on a connection of its own and this daemon's health; run in the HTTP thread."""
        from . import statuspage  # only when someone opens the page

        cfg = self.config  # (a SIGHUP may swap it: one read)
        policy = cfg.policy_obj
        return statuspage.page(
            cfg.state, goal=float(policy.goal), zone=ZoneInfo(policy.timezone),
            health=self.health.snapshot(), password=cfg.state_password,
            business_days={n: c.business_day for n, c in policy.calendars.items()})

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Lock the store, serve metrics, cycle until stopped; the exit status."""
        shared = self.config.state_is_shared
        lock = None if shared else StateLock(Path(self.config.state))
        if lock is not None:
            lock.acquire()
        try:
            # (creates or migrates it, once)
            self.store = open_store(self.config.state, password=self.config.state_password)
            self._shared = self.store.shared
            if self.metrics_port is not None:
                self.endpoint = serve(self.metrics_port, self.metrics, self.health,
                                      page=self.status_page)
                log.info("metrics and health on http://127.0.0.1:%d/metrics and /healthz, "
                         "the status page on /", self.endpoint.port,
                         extra={"event": "listening", "port": self.endpoint.port})
            log.info("started: %d trackers (%s), poll interval %s, state %s, pid %d",
                     len(self.schedule), ", ".join(self.schedule),
                     _fmt_td(self.config.poll_interval), self.store.describe(), os.getpid(),
                     extra={"event": "started"})
            if self._shared:
                log.info("sharing the trackers as %s (lease TTL %.0f s)", self.owner,
                         self.lease_ttl, extra={"event": "cluster", "owner": self.owner})
                self._lease_thread = threading.Thread(target=self._lease_loop, daemon=True,
                                                      name="tracker-bridge-leases")
                self._lease_thread.start()
            try:
                self._loop()
                self._join_workers()
                self._release_all()
            except Abandon as e:
                log.warning("abandoned the cycles in progress (%s: %s); their records were "
                            "not committed and they are redone at the next start", e,
                            ", ".join(self._running()), extra={"event": "abandoned"})
            log.info("stopped", extra={"event": "stopped"})
            return EXIT_OK
        finally:
            self._abandon.set()
            self._done.set()
            running = set(self._running())
            for name, b in list(self.backends.items()):
                if name not in running:  # (an abandoned cycle may still be using its own)
                    with contextlib.suppress(Exception):
                        b.close()
            self.backends.clear()
            if self.store is not None:
                self.store.close()
            if self.endpoint is not None:
                self.endpoint.close()
            if lock is not None:
                lock.release()

    def _loop(self) -> None:
        """The main thread: starts a thread per tracker, reloads on SIGHUP, until stopped."""
        while not self.stop.is_set():
            self._wakeup.clear()
            if self._reload:
                self._reload = False
                self._do_reload()
            self._start_workers()
            if self.stop.is_set():
                return
            self._wakeup.wait(MAX_SLEEP)

    def _start_workers(self) -> None:
        for name in list(self.schedule):
            if self._shared and (name not in self.leases or (
                    name in self._halt and self._halt[name].is_set())):
                # another daemon's, nobody's yet (the lease thread takes it), or being given
                # back (released once its thread has ended)
                continue
            t = self._workers.get(name)
            if t is None or not t.is_alive():
                self._wake[name] = threading.Event()
                self._halt[name] = threading.Event()
                if self.stop.is_set():
                    return
                t = threading.Thread(target=self._worker, args=(name,), daemon=True,
                                     name=f"tracker-{name}")
                self._workers[name] = t
                t.start()

    def _join_workers(self) -> None:
        """Wait up to ``stop_timeout`` s for the tracker threads to end their cycles."""
        deadline = time.monotonic() + self.stop_timeout
        for name, t in list(self._workers.items()):
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("the %s cycle did not stop within %.0f s: abandoning it (it is "
                            "redone at the next start)", name, self.stop_timeout,
                            extra={"tracker": name, "event": "abandoned"})

    def _worker(self, name: str) -> None:
        """One tracker's thread: sleep until its next instant, cycle, again, until stopped
        (or the tracker leaves the config)."""
        store: BaseStore | None = None
        wake, halt = self._wake[name], self._halt[name]
        try:
            assert self.store is not None
            store = self.store.reopen()
            while not halt.is_set():
                sched = self.schedule.get(name)
                if sched is None:
                    return  # dropped by a reload
                wake.clear()
                delay = (sched.next_run - utcnow()).total_seconds()
                if delay > 0:
                    self._set_next_wake()
                    wake.wait(min(delay, MAX_SLEEP))
                    continue
                self._cycle(name, store=store)
        except Exception:
            log.exception("%s: the tracker's thread failed; it is started again",
                          name, extra={"tracker": name, "event": "thread_failed"})
            self._wakeup.set()  # the main thread starts it again
        finally:
            if store is not None:
                store.close()

    def _set_next_wake(self) -> None:
        nxt = min((s.next_run for s in list(self.schedule.values())), default=None)
        if nxt is not None:
            self.metrics.next_wake.set(nxt.timestamp())

    def _cycle(self, name: str, store: BaseStore | None = None) -> None:
        """One cycle of one tracker, on ``store`` (default: the main thread's)."""
        store = store or self.store
        assert store is not None
        sched = self.schedule[name]
        th = self.health.tracker(name)
        now = utcnow()
        if sched.for_change is not None:
            lag = (now - sched.for_change).total_seconds()
            self.metrics.wake_lag.observe(max(0.0, lag))
            log.debug("%s: woke for the time-driven change at %s (%.3f s later)", name,
                      sched.for_change.isoformat(), lag,
                      extra={"tracker": name, "event": "wake", "lag_s": lag})
        t0 = time.monotonic()
        if self._backend_gen.get(name, 0) != self._generation:
            # reloaded since this tracker's backend was built: new credentials, a new backend
            self._backend_gen[name] = self._generation
            old = self.backends.pop(name, None)
            if old is not None:
                with contextlib.suppress(Exception):
                    old.close()
        self._local.name = name
        try:
            report: SyncReport | None = run_once(
                self.config, now=now, pm=self.pm, store=store, trackers=[name],
                backends=self.backends, retry=self.retry,
                stop=self._halt.get(name, self.stop), abandon=self._abandon,
                fence=self.leases.get(name) if self._shared else None)
        except LeaseLost as e:
            log.warning("%s: the lease moved on (%s); nothing of this cycle was recorded and "
                        "this daemon stops working on the tracker", name, e,
                        extra={"tracker": name, "event": "lease_lost"})
            self._lost(name)
            return
        except (StoreError, TrackerBridgeError) as e:
            log.error("%s: the cycle could not run: %s", name, e,
                      extra={"tracker": name, "event": "cycle_failed"})
            report = None
        except Exception:
            log.exception("%s: unexpected error in the cycle", name,
                          extra={"tracker": name, "event": "cycle_failed"})
            report = None
        finally:
            self._local.name = None
        elapsed = time.monotonic() - t0
        th.last_attempt = now
        if report is None:
            tr = TrackerReport(name, aborted=True)
            self.metrics.errors.labels(name, "internal").inc()
            self._failed(name, sched, th, tr, now)
            return
        tr = report.trackers[0]
        self.metrics.record(tr, elapsed)
        self._log_cycle(tr, elapsed)
        if tr.stopped:
            return
        self.metrics.set_breached_open(name, store.breached_open(name))
        for h in report.hook_errors:
            log.warning("%s: plugin error: %s", name, h, extra={"tracker": name})
        if not tr.aborted:
            sched.failures = 0
            th.consecutive_failures = 0
            th.last_good = now
            th.suspended_until = th.suspended_reason = None
            self.metrics.suspended.labels(name).set(0)
            sched.suspended = False
            if tr.errors:
                e = tr.errors[-1]
                th.last_error = {"kind": e.kind, "key": e.key, "message": e.message,
                                 "at": now.isoformat(timespec="seconds")}
            self._schedule_ok(name, sched, now, report.next_change)
        else:
            self._failed(name, sched, th, tr, now)
        th.next_cycle = sched.next_run

    def _schedule_ok(self, name: str, sched: _Schedule, now: datetime,
                     next_change: datetime | None) -> None:
        poll = now + self.config.poll_interval
        sched.next_run, sched.for_change = poll, None
        if next_change is not None and next_change + WAKE_MARGIN < poll:
            sched.next_run, sched.for_change = next_change + WAKE_MARGIN, next_change

    def _failed(self, name: str, sched: _Schedule, th: Any, tr: TrackerReport,
                now: datetime) -> None:
        sched.failures += 1
        th.consecutive_failures = sched.failures
        sched.for_change = None
        kinds = {e.kind for e in tr.errors}
        if tr.errors:
            e = tr.errors[-1]
            th.last_error = {"kind": e.kind, "key": e.key, "message": e.message,
                             "at": now.isoformat(timespec="seconds")}
        poll = self.config.poll_interval.total_seconds()
        if "auth" in kinds:
            # credentials refused: asking again and again cannot help, and may lock the
            # account; leave the tracker alone until an admin acts (SIGHUP) or auth_retry
            sched.suspended = True
            delay = self.auth_retry
            th.suspended_reason = "auth"
            th.suspended_until = now + timedelta(seconds=delay)
            self.metrics.suspended.labels(name).set(1)
            old = self.backends.pop(name, None)
            if old is not None:
                with contextlib.suppress(Exception):
                    old.close()
            log.error("%s: credentials refused; not polling this tracker until %s. Fix the "
                      "credentials, then reload (SIGHUP: systemctl reload tracker-bridge) or "
                      "restart", name, th.suspended_until.isoformat(timespec="seconds"),
                      extra={"tracker": name, "event": "suspended", "reason": "auth"})
        elif "safety" in kinds:
            delay = poll  # not transient: an admin must look; check again at the next poll
        else:
            delay = min(poll, self.failure_backoff * 2 ** (sched.failures - 1))
            delay *= self.rng.uniform(0.8, 1.2)
            if tr.retry_after is not None:
                delay = max(delay, tr.retry_after)
        sched.next_run = now + timedelta(seconds=delay)
        th.next_cycle = sched.next_run
        log.info("%s: next try at %s (failure %d in a row)", name,
                 sched.next_run.isoformat(timespec="seconds"), sched.failures,
                 extra={"tracker": name, "event": "backoff", "delay_s": round(delay, 3)})

    def _log_cycle(self, tr: TrackerReport, elapsed: float) -> None:
        name = tr.tracker
        w = tr.writes
        extra = {"tracker": name, "event": "cycle", "fetched": tr.fetched,
                 "refetched": tr.refetched, "evaluated": tr.evaluated,
                 "writes": {k: w.get(k, 0) for k in ("tickets", "fields", "labels_added",
                                                      "labels_removed", "notes")},
                 "seconds": round(elapsed, 3), "aborted": tr.aborted}
        if tr.stopped:
            log.info("%s: cycle stopped before its end (%d tickets written); the rest is "
                     "redone at the next start", name, w["tickets"],
                     extra={**extra, "event": "cycle_stopped"})
            return
        level = logging.INFO if (w["tickets"] or tr.errors) else logging.DEBUG
        log.log(level, "%s: fetched %d, re-fetched %d, evaluated %d; wrote %d tickets (%d "
                "fields, %d labels added, %d removed, %d notes) in %.2f s", name, tr.fetched,
                tr.refetched, tr.evaluated, w["tickets"], w["fields"], w["labels_added"],
                w["labels_removed"], w["notes"], elapsed, extra=extra)
        for d in tr.diffs:
            log.debug("%s:%s: wrote %s", name, d.key, d.to_dict(),
                      extra={"tracker": name, "key": d.key, "event": "write"})
        for e in tr.errors:
            lvl = logging.ERROR if e.kind in ("auth", "safety", "internal") else logging.WARNING
            log.log(lvl, "%s", e, extra={"tracker": name, "key": e.key, "event": "error",
                                         "kind": e.kind})

    def _do_reload(self) -> None:
        if self.reload_config is None:
            return
        try:
            new = self.reload_config()
        except Exception as e:
            log.error("reload failed, keeping the running config: %s", e,
                      extra={"event": "reload_failed"})
            return
        if str(new.state) != str(self.config.state):
            log.error("reload: the state store cannot change while running (restart "
                      "instead); keeping the running config", extra={"event": "reload_failed"})
            return
        self._generation += 1  # each tracker's thread replaces its backend before its cycle
        self.config = new
        if self.secret_filter is not None:
            self.secret_filter.add(config_secrets(new))
        now = utcnow()
        for s in self.schedule.values():
            s.next_run, s.for_change, s.suspended = now, None, False
        self._setup_trackers()
        for name in self.schedule:
            th = self.health.tracker(name)
            th.suspended_until = th.suspended_reason = None
            self.metrics.suspended.labels(name).set(0)
        log.info("reloaded the config: %d trackers, every tracker runs now", len(self.schedule),
                 extra={"event": "reloaded"})
        self._wake_all()


#: the lease name of a daemon's heartbeat (the live daemons are the unexpired ones)
HEARTBEAT = "@daemon:"


def default_lease_ttl(poll: float) -> float:
    """Half the poll interval, at least 5 s (a loaded host's pauses) and at most 60 s: a dead
    daemon's trackers are taken within the TTL and a quarter."""
    return min(max(poll / 2, 5.0), 60.0)


def cluster_view(infos: Iterable[Any], me: str) -> dict[str, Any]:
    """The cluster as ``/healthz`` and ``status`` show it: live daemons and every lease."""
    daemons = sorted(i.owner for i in infos if i.tracker.startswith(HEARTBEAT)
                     and not i.expired)
    leases = {}
    for i in infos:
        if i.tracker.startswith(HEARTBEAT):
            continue
        leases[i.tracker] = {
            "owner": None if i.expired else i.owner, "last_owner": i.owner,
            "token": i.token, "age_seconds": round(i.age.total_seconds(), 3),
            "expires_at": i.expires_at.isoformat(timespec="seconds"),
            "expired": i.expired, "handovers": i.handovers, "mine": i.owner == me
            and not i.expired}
    return {"me": me, "daemons": daemons, "leases": leases}


def config_secrets(config: BridgeConfig) -> list[str]:
    """Every resolved secret of the config (for the log filter)."""
    out = []
    for t in config.trackers:
        if t.secret is not None:
            out.append(t.secret.get_secret_value())
    return out


def _fmt_td(td: timedelta) -> str:
    s = td.total_seconds()
    return f"{s:g}s" if s < 120 else f"{s / 60:g}m"
