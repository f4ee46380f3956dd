"""What the daemon shows: logs (human or JSON lines, secrets masked), Prometheus metrics and
a health endpoint, both served on one loopback port.

- :class:`SecretFilter` masks every configured secret value, and anything that looks like a
  credential in a URL or a header (``key=...``, ``X-Redmine-API-Key: ...``,
  ``Authorization: Bearer ...``, ``user:password@``, a 32-64 character hex token), in the
  message, its arguments and the traceback of every record. It sits on the handler, so records
  of every library (requests, urllib3) pass through it.
- :class:`Metrics` holds the ``tracker_bridge_*`` metrics in a registry of its own
  (docs/daemon.md lists them).
- :class:`Health` says per tracker whether it had a good cycle recently; ``/healthz`` answers
  200 when every tracker did, 503 otherwise, with the details as JSON.
- :func:`serve` starts ``/metrics``, ``/healthz`` and the status page (``/``,
  tracker_bridge/statuspage.py) on ``127.0.0.1:PORT`` in a thread.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .masking import mask_secrets

if TYPE_CHECKING:
    from .report import TrackerReport

log = logging.getLogger(__name__)


# -- secrets out of logs ------------------------------------------------------------------------

class SecretFilter(logging.Filter):
    """Masks secrets in every record that passes (attach it to handlers)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too (empty or very short values are ignored: they would mask
        ordinary words)."""
        self._secrets |= {s for s in secrets if s}  # (mask_secrets orders them, longest first)

    def redact(self, text: str) -> str:
        return mask_secrets(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, any ``extra=``
    fields (``tracker``, ``key``, ``event``...), and ``exc`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                doc[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup_logging(fmt: str = "human", level: str | int = "INFO",
                  secrets: Iterable[str] = (), stream: Any = None) -> SecretFilter:
    """Route every logger to one stderr handler with the secret filter; return the filter
    (so secrets found later, e.g. on a config reload, can be added to it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    filt = SecretFilter(secrets)
    handler.addFilter(filt)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tracker_bridge", False):
            root.removeHandler(h)
    handler._tracker_bridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    # urllib3 logs every request URL at DEBUG; it passes the filter, but keep it quiet at INFO
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    return filt


# -- health -------------------------------------------------------------------------------------


@dataclass
class TrackerHealth:
    """One tracker as the daemon sees it."""

    name: str
    last_good: datetime | None = None
    last_attempt: datetime | None = None
    consecutive_failures: int = 0
    last_error: dict[str, Any] | None = None
    #: not polled until then (credentials refused, or a long Retry-After)
    suspended_until: datetime | None = None
    suspended_reason: str | None = None
    next_cycle: datetime | None = None

    def to_dict(self, now: datetime, max_age: float) -> dict[str, Any]:
        age = None if self.last_good is None else (now - self.last_good).total_seconds()
        return {
            "ok": self.ok(now, max_age),
            "last_good_cycle": _iso(self.last_good),
            "seconds_since_good_cycle": None if age is None else round(age, 3),
            "last_attempt": _iso(self.last_attempt),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "suspended_until": _iso(self.suspended_until),
            "suspended_reason": self.suspended_reason,
            "next_cycle": _iso(self.next_cycle),
        }

    def ok(self, now: datetime, max_age: float) -> bool:
        if self.suspended_reason == "auth":
            return False
        return self.last_good is not None and (now - self.last_good).total_seconds() <= max_age


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="seconds")


@dataclass
class Health:
    """Every tracker's health; healthy when each had a good cycle within ``max_age`` s."""

    max_age: float
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    trackers: dict[str, TrackerHealth] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: a shared store's cluster (daemon.cluster_view): this daemon's health counts only the
    #: trackers it holds; the others show their owner
    cluster: dict[str, Any] | None = None

    def tracker(self, name: str) -> TrackerHealth:
        with self.lock:
            return self.trackers.setdefault(name, TrackerHealth(name))

    def snapshot(self, now: datetime | None = None) -> tuple[bool, dict[str, Any]]:
        now = now or datetime.now(UTC)
        cluster = self.cluster
        with self.lock:
            per = {n: t.to_dict(now, self.max_age) for n, t in self.trackers.items()}
        if cluster is not None:
            leases = cluster.get("leases", {})
            for n, t in per.items():
                lease = leases.get(n)
                t["owner"] = None if lease is None else lease["owner"]
                t["lease_age_seconds"] = None if lease is None else lease["age_seconds"]
                t["handovers"] = 0 if lease is None else lease["handovers"]
                t["mine"] = bool(lease and lease["mine"])
                if not t["mine"]:
                    t["ok"] = True  # another daemon's (its own /healthz tells)
            ok = all(t["ok"] for t in per.values())
        else:
            ok = bool(per) and all(t["ok"] for t in per.values())
        doc = {"status": "ok" if ok else "failing", "now": _iso(now),
               "started": _iso(self.started), "max_age_seconds": self.max_age,
               "trackers": per}
        if cluster is not None:
            doc["cluster"] = cluster
        return ok, doc


# -- metrics ------------------------------------------------------------------------------------


class _AgeCollector(Collector):
    """``tracker_bridge_seconds_since_last_good_cycle``, computed at scrape time."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        g = GaugeMetricFamily(
            "tracker_bridge_seconds_since_last_good_cycle",
            "Seconds since the tracker's last good cycle (since the daemon started, if none)",
            labels=["tracker"])
        with self.health.lock:
            items = list(self.health.trackers.values())
        for t in items:
            since = t.last_good or self.health.started
            g.add_metric([t.name], (now - since).total_seconds())
        yield g


class _ClusterCollector(Collector):
    """The cluster as the last lease round saw it (a shared store only): the owner of each
    tracker, its lease's age and handovers, the live daemons."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cluster = self.health.cluster
        if cluster is None:
            return
        owner = GaugeMetricFamily("tracker_bridge_lease_owner", "1 for the daemon that owns "
                                  "the tracker's lease", labels=["tracker", "owner"])
        age = GaugeMetricFamily("tracker_bridge_lease_age_seconds", "Seconds since the "
                                "tracker's lease changed hands", labels=["tracker"])
        hand = GaugeMetricFamily("tracker_bridge_lease_handovers", "Times the tracker's "
                                 "lease changed owner", labels=["tracker"])
        for name, lease in sorted(cluster.get("leases", {}).items()):
            if lease["owner"] is not None:
                owner.add_metric([name, lease["owner"]], 1)
            age.add_metric([name], lease["age_seconds"])
            hand.add_metric([name], lease["handovers"])
        daemons = GaugeMetricFamily("tracker_bridge_cluster_daemons",
                                    "Live daemons sharing the store")
        daemons.add_metric([], len(cluster.get("daemons", [])))
        yield from (owner, age, hand, daemons)


class Metrics:
    """The daemon's Prometheus metrics, in a registry of their own."""

    def __init__(self, health: Health, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cycles = Counter("tracker_bridge_cycles", "Tracker cycles run, by outcome "
                              "(ok, failed, stopped)", ["tracker", "outcome"], registry=r)
        self.evaluated = Counter("tracker_bridge_tickets_evaluated",
                                 "Tickets evaluated by the engine", ["tracker"], registry=r)
        self.writes = Counter("tracker_bridge_writes", "Writes to trackers by kind (tickets, "
                              "fields, labels_added, labels_removed, notes)",
                              ["tracker", "kind"], registry=r)
        self.errors = Counter("tracker_bridge_errors", "Errors by tracker and kind "
                              "(unavailable, auth, rejected, safety, evaluate, backend, "
                              "internal)", ["tracker", "kind"], registry=r)
        self.retries = Counter("tracker_bridge_retries", "Tracker calls retried inside a "
                               "cycle, by kind (read, write)", ["tracker", "kind"], registry=r)
        self.breaches = Counter("tracker_bridge_breaches", "Metrics that turned breached, by "
                                "class and metric", ["tracker", "class", "metric"], registry=r)
        self.breached_open = Gauge("tracker_bridge_open_breached_tickets",
                                   "Open tickets currently breached, by class and metric",
                                   ["tracker", "class", "metric"], registry=r)
        self.up = Gauge("tracker_bridge_tracker_up",
                        "1 when the tracker's last cycle was good", ["tracker"], registry=r)
        self.suspended = Gauge("tracker_bridge_tracker_suspended", "1 while the tracker is "
                               "not polled (credentials refused)", ["tracker"], registry=r)
        self.duration = Histogram("tracker_bridge_cycle_duration_seconds",
                                  "Wall time of one tracker cycle", ["tracker"], registry=r,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.wake_lag = Histogram("tracker_bridge_deadline_wake_lag_seconds",
                                  "How long after a ticket's next time-driven change its cycle "
                                  "started", registry=r,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                           10, 60))
        self.next_wake = Gauge("tracker_bridge_next_wake_timestamp_seconds",
                               "When the daemon wakes next (Unix time)", registry=r)
        self.lease_held = Gauge("tracker_bridge_lease_held", "1 while this daemon holds the "
                                "tracker's lease (a shared store)", ["tracker"], registry=r)
        self.lease_lost = Counter("tracker_bridge_leases_lost", "Leases this daemon lost "
                                  "(taken over, or not renewed in time)", ["tracker"],
                                  registry=r)
        r.register(_AgeCollector(health))
        r.register(_ClusterCollector(health))
        self._known_breached: dict[str, set[tuple[str, str]]] = {}

    def tracker_seen(self, name: str) -> None:
        """Create the per-tracker series at 0, so dashboards see them before any event."""
        self.up.labels(name).set(0)
        self.suspended.labels(name).set(0)
        for outcome in ("ok", "failed", "stopped"):
            self.cycles.labels(name, outcome)
        self.evaluated.labels(name)
        for kind in ("tickets", "fields", "labels_added", "labels_removed", "notes"):
            self.writes.labels(name, kind)

    def record(self, tr: TrackerReport, seconds: float) -> None:
        name = tr.tracker
        outcome = "stopped" if tr.stopped else ("failed" if tr.aborted else "ok")
        self.cycles.labels(name, outcome).inc()
        self.duration.labels(name).observe(seconds)
        self.evaluated.labels(name).inc(tr.evaluated)
        for kind, n in tr.writes.items():
            if n:
                self.writes.labels(name, kind).inc(n)
        for e in tr.errors:
            self.errors.labels(name, e.kind).inc()
        for kind, n in tr.retries.items():
            if n:
                self.retries.labels(name, kind).inc(n)
        for (cls, metric), n in tr.breaches.items():
            self.breaches.labels(name, cls, metric).inc(n)
        if not tr.stopped:
            self.up.labels(name).set(0 if tr.aborted else 1)

    def set_cluster(self, cluster: dict[str, Any]) -> None:
        """The last lease round's view of the cluster (read at scrape time)."""
        for name, lease in cluster.get("leases", {}).items():
            self.lease_held.labels(name).set(1 if lease["mine"] else 0)

    def set_breached_open(self, tracker: str, counts: dict[tuple[str, str], int]) -> None:
        old = self._known_breached.get(tracker, set())
        for cls, metric in old - set(counts):
            self.breached_open.labels(tracker, cls, metric).set(0)
        for (cls, metric), n in counts.items():
            self.breached_open.labels(tracker, cls, metric).set(n)
        self._known_breached[tracker] = old | set(counts)


# -- the HTTP endpoint --------------------------------------------------------------------------

#: the headers the status page is sent with: no script at all, nothing fetched from elsewhere
#: (its ticket texts are escaped; this is the second line), never cached
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = generate_latest(self.server.metrics.registry)
            self._send(200, CONTENT_TYPE_LATEST, body)
        elif path in ("/healthz", "/health"):
            ok, doc = self.server.health.snapshot()
            self._send(200 if ok else 503, "application/json",
                       json.dumps(doc, indent=1).encode())
        elif path in ("/", "/status") and self.server.page is not None:
            try:
                body = self.server.page().encode()
            except Exception:  # never the daemon's end: a page that fails says so
                log.exception("the status page failed")
                self._send(500, "text/plain; charset=utf-8",
                           b"the status page failed; see the daemon's log\n")
                return
            self._send(200, "text/html; charset=utf-8", body, PAGE_HEADERS)
        else:
            self._send(404, "text/plain; charset=utf-8",
                       b"not found: try /, /metrics or /healthz\n")

    def _send(self, status: int, ctype: str, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, metrics: Metrics, health: Health,
                 page: Callable[[], str] | None = None) -> None:
        self.metrics = metrics
        self.health = health
        self.page = page
        super().__init__(("127.0.0.1", port), _Handler)


class Endpoint:
    """``/metrics``, ``/healthz`` and the status page (``/``, ``/status``: ``page()``, the
    HTML of tracker_bridge.statuspage) on 127.0.0.1 (never another interface)."""

    def __init__(self, port: int, metrics: Metrics, health: Health,
                 page: Callable[[], str] | None = None) -> None:
        self.server = _Server(port, metrics, health, page)
        self.port: int = int(self.server.server_address[1])
        # a long poll interval: the thread sleeps in select() until a request comes, instead
        # of waking twice a second for nothing (close() does not wait for it)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 3600},
                                       name="tracker-bridge-http", daemon=True)

    def start(self) -> Endpoint:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.server_close()


def serve(port: int, metrics: Metrics, health: Health,
          page: Callable[[], str] | None = None) -> Endpoint:
    """Start the endpoint (``port=0``: any free port, see ``.port``); ``page`` makes the
    status page's HTML (none: ``/`` is not found)."""
    return Endpoint(port, metrics, health, page).start()
