"""The live status page ``tracker-bridge run`` serves on its metrics port (``/`` and
``/status``, 127.0.0.1 only): how the desk is doing, read-only, from the state store.

Two steps, as for the report. :func:`collect` reads the store (a read-only connection of its
own, per request, SQLite or PostgreSQL: the daemon's transaction is never waited for or
blocked) and the daemon's
tracker health into a plain model; :func:`render` turns a model into one HTML page. Both are
tested without a daemon. The page shows:

- open tickets at risk or breached (worst first), with their state line;
- the next deadlines of open tickets, with the time left on the clock (wall time);
- paused tickets with their working time left;
- this month's compliance per metric (``tracker_bridge.compliance``: met / (met + breached) of
  the tickets created this month, UTC, against the policy's goal);
- each tracker's health (``/healthz``'s view);

each ticket linked to its page in the tracker when the store knows the URL. Every text that
comes from a tracker (subjects are customer input, keys, statuses, tracker names, error
messages) is HTML-escaped; the page has no script, refreshes itself every
:data:`REFRESH_SECONDS` (a ``<meta http-equiv="refresh">``) and is sent with a
Content-Security-Policy that allows no script and nothing from elsewhere
(``observability.PAGE_HEADERS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from . import compliance
from .errors import ConfigError, StoreError
from .plan import human_remaining, human_time

#: how often the page reloads itself
REFRESH_SECONDS = 30
#: at most this many rows in each table (the rest are counted)
MAX_ROWS = 50
_STATE_ORDER = {"breached": 0, "at_risk": 1, "paused": 2, "running": 3}
_CLOCKS = ("response", "resolution")


@dataclass(frozen=True)
class Row:
    """One open ticket's clock as the page shows it."""

    tracker: str
    key: str
    subject: str | None
    url: str | None
    metric: str
    state: str
    due: datetime | None
    remaining_s: float | None
    calendar: str
    status: str | None


@dataclass
class Model:
    """Everything the page shows, read at ``now``."""

    now: datetime
    zone: ZoneInfo
    goal: float
    at_risk: list[Row] = field(default_factory=list)
    next_due: list[Row] = field(default_factory=list)
    paused: list[Row] = field(default_factory=list)
    open_tickets: int = 0
    #: metric -> (met, breached, compliance or None), tickets created this month
    month: dict[str, tuple[int, int, float | None]] = field(default_factory=dict)
    month_name: str = ""
    #: tracker name -> /healthz's view of it
    health: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    healthy: bool = True
    #: calendar name -> business day (for "2 bd 3h")
    business_days: Mapping[str, timedelta] = field(default_factory=dict)
    problem: str | None = None


def collect(state: str | Path, *, now: datetime, goal: float, zone: ZoneInfo,
            health: tuple[bool, Mapping[str, Any]] | None = None,
            business_days: Mapping[str, timedelta] | None = None,
            password: str | None = None) -> Model:
    """The page's model from the state store ``state`` names (an SQLite file or a
    ``postgresql://`` URL with its ``password``; read only) and the daemon's health snapshot
    (``Health.snapshot()``)."""
    from .store import open_reader  # (the store modules only when the page is opened)

    model = Model(now=now, zone=zone, goal=goal, business_days=dict(business_days or {}))
    if health is not None:
        model.healthy, doc = health
        model.health = doc.get("trackers", {})
    start = date(now.astimezone(UTC).year, now.astimezone(UTC).month, 1)
    model.month_name = f"{start:%B %Y} (UTC)"
    try:
        with open_reader(state, password=password) as db:
            open_keys = {(r[0], r[1]) for r in
                         db.rows("SELECT tracker, key FROM tickets WHERE is_open=1")}
            facts = compliance.read_tickets(db)
    except (StoreError, ConfigError) as e:  # (the password masked by the store)
        model.problem = f"the state store cannot be read: {e}"
        return model
    rows: list[Row] = []
    for t in facts:
        if (t.tracker, t.key) not in open_keys:
            continue
        model.open_tickets += 1
        for name in _CLOCKS:
            m = t.metrics.get(name)
            if not m or m.get("state") not in _STATE_ORDER:
                continue
            due = m.get("due")
            remaining = m.get("remaining_s")
            rows.append(Row(tracker=t.tracker, key=t.key, subject=t.subject, url=t.url,
                            metric=name, state=m["state"],
                            due=datetime.fromisoformat(due) if due else None,
                            remaining_s=None if remaining is None else float(remaining),
                            calendar=str(m.get("calendar") or ""), status=t.status))
    far = datetime.max.replace(tzinfo=UTC)
    model.at_risk = sorted((r for r in rows if r.state in ("breached", "at_risk")),
                           key=lambda r: (_STATE_ORDER[r.state], r.due or far, r.key))
    model.next_due = sorted((r for r in rows if r.state in ("running", "at_risk")
                             and r.due is not None), key=lambda r: (r.due or far, r.key))
    model.paused = sorted((r for r in rows if r.state == "paused"),
                          key=lambda r: (r.remaining_s or 0.0, r.key))
    doc = compliance.aggregate(facts, goal=goal, since=start)
    for name in doc["metrics_order"]:  # (each is in some row: the rollup has its one key)
        c = compliance.rollup(doc["rows"], name, by=())[()]
        model.month[name] = (c["met"], c["breached"], c["compliance"])
    return model


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;min-width:40em} th,td{text-align:left;padding:.25em .7em;
border-bottom:1px solid #ddd;vertical-align:top} th{background:#f4f4f4}
.breached{color:#fff;background:#b00020} .at_risk{background:#ffd54f} .paused{background:#cfd8dc}
.ok{color:#1b5e20} .bad{color:#b00020;font-weight:bold} .muted{color:#777}
td.num{text-align:right}
"""


def _e(text: object) -> str:
    return escape("" if text is None else str(text), quote=True)


def _link(row: Row) -> str:
    key = _e(f"{row.tracker}:{row.key}")
    if row.url and urlsplit(row.url).scheme in ("http", "https"):
        return f'<a href="{_e(row.url)}">{key}</a>'
    return key


def _left(td: timedelta) -> str:
    """Wall-clock time to a due instant: ``in 2h 5m``, ``3d 4h ago``."""
    s = int(td.total_seconds())
    past, s = s < 0, abs(s)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    parts = [f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m")) if v] or ["<1m"]
    text = " ".join(parts[:2])
    return f"{text} ago" if past else f"in {text}"


def _table(table_id: str, head: tuple[str, ...], body: list[str], total: int,
           empty: str) -> str:
    if not body:
        return f'<p id="{table_id}-empty" class="muted">{_e(empty)}</p>'
    more = (f'<p class="muted">... and {total - len(body)} more</p>'
            if total > len(body) else "")
    cols = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (f'<table id="{table_id}"><thead><tr>{cols}</tr></thead><tbody>'
            + "".join(body) + f"</tbody></table>{more}")


def render(model: Model) -> str:
    """The page as HTML (every tracker-given text escaped)."""
    zone, now = model.zone, model.now
    out = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
           '<meta name="viewport" content="width=device-width">',
           "<title>tracker-bridge: SLA status</title>",
           f"<style>{_CSS}</style></head><body>",
           "<h1>SLA status</h1>",
           f'<p class="muted" id="now">{_e(human_time(now, zone))} · {model.open_tickets} '
           f"open tickets · refreshes every {REFRESH_SECONDS} s</p>"]
    if model.problem:
        out.append(f'<p class="bad" id="problem">{_e(model.problem)}</p>')

    out.append("<h2>At risk or breached</h2>")
    body = []
    for r in model.at_risk[:MAX_ROWS]:
        due = (f"{_e(human_time(r.due, zone))} ({_e(_left(r.due - now))})"
               if r.due else "")
        body.append(f'<tr class="{_e(r.state)}"><td>{_link(r)}</td><td>{_e(r.subject)}</td>'
                    f"<td>{_e(r.metric)}</td><td>{_e(r.state.replace('_', ' '))}</td>"
                    f"<td>{due}</td></tr>")
    out.append(_table("at-risk", ("ticket", "subject", "clock", "state", "due"), body,
                      len(model.at_risk), "No open ticket is at risk or breached."))

    out.append("<h2>Next deadlines</h2>")
    body = []
    for r in model.next_due[:MAX_ROWS]:
        assert r.due is not None
        body.append(f'<tr class="{_e(r.state)}"><td>{_link(r)}</td><td>{_e(r.subject)}</td>'
                    f"<td>{_e(r.metric)}</td><td>{_e(human_time(r.due, zone))}</td>"
                    f'<td class="num">{_e(_left(r.due - now))}</td></tr>')
    out.append(_table("next-deadlines", ("ticket", "subject", "clock", "due", "left"), body,
                      len(model.next_due), "No running clock has a deadline."))

    out.append("<h2>Paused</h2>")
    body = []
    for r in model.paused[:MAX_ROWS]:
        left = human_remaining(timedelta(seconds=r.remaining_s or 0.0),
                               model.business_days.get(r.calendar))
        body.append(f'<tr class="paused"><td>{_link(r)}</td><td>{_e(r.subject)}</td>'
                    f"<td>{_e(r.metric)}</td><td>{_e(r.status)}</td>"
                    f'<td class="num">{_e(left)} left</td></tr>')
    out.append(_table("paused", ("ticket", "subject", "clock", "status", "working time left"),
                      body, len(model.paused), "No ticket is paused."))

    out.append(f"<h2>Compliance this month: {_e(model.month_name)}</h2>")
    body = []
    for name, (met, breached, comp) in model.month.items():
        if comp is None:
            shown, cls = "-", "muted"
        else:
            shown, cls = f"{comp:.1%}", "ok" if comp >= model.goal else "bad"
        body.append(f"<tr><td>{_e(name)}</td><td class=\"num\">{met}</td>"
                    f'<td class="num">{breached}</td><td class="num {cls}">{_e(shown)}</td>'
                    f'<td class="num">{model.goal:.0%}</td></tr>')
    out.append(_table("compliance", ("clock", "met", "breached", "compliance", "goal"), body,
                      len(body), "No ticket created this month has met or missed a target."))

    out.append("<h2>Trackers</h2>")
    body = []
    for name, h in sorted(model.health.items()):
        ok = bool(h.get("ok"))
        err = h.get("last_error") or {}
        msg = err.get("message") if isinstance(err, Mapping) else err
        body.append(f'<tr><td>{_e(name)}</td><td class="{"ok" if ok else "bad"}">'
                    f'{"ok" if ok else "failing"}</td><td>{_e(h.get("last_good_cycle"))}</td>'
                    f"<td>{_e(h.get('consecutive_failures'))}</td><td>{_e(msg)}</td></tr>")
    out.append(_table("trackers", ("tracker", "health", "last good cycle", "failures",
                                   "last error"), body, len(body), "No tracker has run yet."))
    out.append('<p class="muted">Read-only. <a href="/metrics">/metrics</a> · '
               '<a href="/healthz">/healthz</a></p></body></html>')
    return "\n".join(out)


def page(state: str | Path, *, goal: float, zone: ZoneInfo,
         health: tuple[bool, Mapping[str, Any]] | None = None,
         business_days: Mapping[str, timedelta] | None = None,
         now: datetime | None = None, password: str | None = None) -> str:
    """:func:`collect` then :func:`render`, at ``now`` (default: the clock)."""
    return render(collect(state, now=now or datetime.now(UTC), goal=goal, zone=zone,
                          health=health, business_days=business_days, password=password))
