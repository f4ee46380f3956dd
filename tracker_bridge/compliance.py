"""SLA compliance from the state store: what ``tracker-bridge report`` shows (docs/report.md).

Two steps. :func:`read_tickets` reads, for every ticket the store has a verdict of, its latest
verdict (by evaluation instant) and what the store knows besides (creation instant, URL,
subject, reopens, the highest escalation level and every tier it was seen in). Then the pure
:func:`aggregate` groups the tickets by month of creation (UTC), tracker, class and plan and
counts, per metric, the tickets that met, breached or still run their target, compliance
against the policy's goal, the median and 90th-percentile working time, escalations and
reopens. :func:`aggregate` reads no clock and no file: it is tested on hand-made tickets.

How a metric's state counts (per ticket, in its latest verdict):

- ``met`` -> met; ``breached`` -> breached; ``running``, ``at_risk``, ``paused`` -> running;
  ``no_target``, ``not_started`` -> not counted.
- The metrics that start again and again (``update``, ``tier_response``,
  ``escalation_response``) count per ticket from their ``occurrences``: breached when any
  occurrence breached, else running while the last is still open, else met. Each row also
  counts their occurrences one by one (``occurrences``), and their times are those of the
  occurrences that ended.
- ``compliance`` = met / (met + breached), ``None`` when both are 0.
- Times (``p50_s``, ``p90_s``) are working seconds on the target's calendar, over the
  tickets counted met or breached (a breached clock still running counts with the time it
  had at its last evaluation); percentiles interpolate linearly between the two nearest
  ranks (numpy's default, a spreadsheet's PERCENTILE.INC), rounded to whole seconds.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store_base import Reader

#: the metrics whose verdict lists ``occurrences`` (core.verdict.RECURRING)
RECURRING = ("update", "tier_response", "escalation_response")
#: the order metrics are shown in; others follow in name order
METRIC_ORDER = ("response", "resolution", "update", "tier_response", "escalation_response")
#: how each metric state counts (states not here are not counted)
STATE_COUNTS = {"met": "met", "breached": "breached", "running": "running",
                "at_risk": "running", "paused": "running"}
#: how many tickets ``slowest`` lists
SLOWEST = 10


@dataclass(frozen=True)
class TicketFacts:
    """One ticket as the report sees it: its latest verdict and what the store knows."""

    tracker: str
    key: str
    created: datetime
    class_: str
    plan: str
    #: the latest verdict's metrics, as in the verdict JSON (docs/ticket.md)
    metrics: Mapping[str, Mapping[str, Any]]
    url: str | None = None
    subject: str | None = None
    #: the highest hierarchical escalation level any evaluation reached, and its position
    level: str | None = None
    level_index: int | None = None
    #: every tier the ticket was seen in
    tiers: frozenset[str] = field(default_factory=frozenset)
    reopens: int = 0
    #: the latest verdict's instant
    evaluated_at: datetime | None = None
    #: the ticket's status at the latest verdict
    status: str | None = None
    #: the labels the latest verdict wanted (the bridge's own, under the policy's prefix)
    labels: frozenset[str] = field(default_factory=frozenset)

    @property
    def closed_unconfirmed(self) -> bool:
        """Closed by support without the customer's confirmation (``confirmed_closure``:
        the ``<prefix>closed-unconfirmed`` label)."""
        return any(label.endswith("closed-unconfirmed") for label in self.labels)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0..1) by linear interpolation between the nearest ranks;
    ``None`` for no values."""
    if not values:
        return None
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def _whole(x: float | None) -> int | None:
    return None if x is None else round(x)


def metric_outcome(name: str, m: Mapping[str, Any]) -> str | None:
    """How one metric of one ticket counts: ``met``, ``breached``, ``running`` or ``None``."""
    state = m.get("state")
    if state in ("no_target", "not_started"):
        return None
    occ = m.get("occurrences")
    if name in RECURRING and occ:
        if any(o.get("breached") for o in occ):
            return "breached"
        return "running" if occ[-1].get("ended_at") is None else "met"
    return STATE_COUNTS.get(str(state))


def _occurrence_outcome(o: Mapping[str, Any]) -> str:
    if o.get("breached"):
        return "breached"
    return "running" if o.get("ended_at") is None else "met"


def metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [n for n in METRIC_ORDER if n in names] + sorted(names - set(METRIC_ORDER))


def compliance(met: int, breached: int) -> float | None:
    """met / (met + breached), to 4 places; ``None`` when nothing ended."""
    done = met + breached
    return None if done == 0 else round(met / done, 4)


def month_of(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m")


def _in_window(t: TicketFacts, since: date | None, until: date | None) -> bool:
    day = t.created.astimezone(UTC).date()
    return (since is None or day >= since) and (until is None or day < until)


def aggregate(tickets: Iterable[TicketFacts], *, goal: float, since: date | None = None,
              until: date | None = None, trackers: Iterable[str] | None = None,
              slowest: int = SLOWEST) -> dict[str, Any]:
    """The report document (docs/report.md): the team's JSON contract plus ``metrics_order``,
    per-row ``occurrences``, ``escalations`` and ``reopens``, and ``slowest``.

    :param since: tickets created on or after this UTC day
    :param until: tickets created before this UTC day
    :param trackers: only these trackers
    """
    wanted = None if trackers is None else set(trackers)
    chosen = [t for t in tickets if (wanted is None or t.tracker in wanted)
              and _in_window(t, since, until)]
    groups: dict[tuple[str, str, str, str], list[TicketFacts]] = defaultdict(list)
    for t in chosen:
        groups[(month_of(t.created), t.tracker, t.class_, t.plan)].append(t)
    rows = [_row(k, groups[k]) for k in sorted(groups)]
    all_metrics = metric_order({m for r in rows for m in r["metrics"]})
    return {
        "goal": goal,
        "since": None if since is None else since.isoformat(),
        "until": None if until is None else until.isoformat(),
        "trackers": sorted(wanted) if wanted is not None else None,
        "metrics_order": all_metrics,
        "rows": rows,
        "slowest": _slowest(chosen, slowest),
    }


def _row(k: tuple[str, str, str, str], tickets: list[TicketFacts]) -> dict[str, Any]:
    month, tracker, class_, plan = k
    names = metric_order({n for t in tickets for n in t.metrics})
    metrics: dict[str, dict[str, Any]] = {}
    occurrences: dict[str, dict[str, int]] = {}
    p50: dict[str, int | None] = {}
    p90: dict[str, int | None] = {}
    for name in names:
        counts = Counter({"met": 0, "breached": 0, "running": 0})
        times: list[float] = []
        occ_counts = Counter({"met": 0, "breached": 0, "running": 0})
        for t in tickets:
            m = t.metrics.get(name)
            if m is None:
                continue
            outcome = metric_outcome(name, m)
            if outcome is not None:
                counts[outcome] += 1
            if name in RECURRING:
                if m.get("state") == "no_target":
                    continue
                for o in m.get("occurrences") or ():
                    occ_counts[_occurrence_outcome(o)] += 1
                    if o.get("ended_at") is not None:
                        times.append(float(o["elapsed_s"]))
            elif outcome in ("met", "breached"):
                times.append(float(m["elapsed_s"]))
        metrics[name] = {"met": counts["met"], "breached": counts["breached"],
                         "running": counts["running"],
                         "compliance": compliance(counts["met"], counts["breached"])}
        if name in RECURRING:
            occurrences[name] = {"met": occ_counts["met"], "breached": occ_counts["breached"],
                                 "running": occ_counts["running"],
                                 "compliance": compliance(occ_counts["met"],
                                                          occ_counts["breached"])}
        p50[name] = _whole(percentile(times, 0.5))
        p90[name] = _whole(percentile(times, 0.9))
    levels = Counter(t.level for t in tickets if t.level is not None)
    tiers = Counter(tier for t in tickets for tier in t.tiers)
    return {
        "month": month, "tracker": tracker, "class": class_, "plan": plan,
        "tickets": len(tickets),
        "metrics": metrics,
        "p50_s": p50,
        "p90_s": p90,
        "occurrences": occurrences,
        "escalations": {
            "tickets": sum(1 for t in tickets if t.level is not None),
            "levels": dict(sorted(levels.items())),
            "tiers": dict(sorted(tiers.items())),
        },
        "reopens": sum(t.reopens for t in tickets),
        "reopened_tickets": sum(1 for t in tickets if t.reopens),
        "closed_unconfirmed": sum(1 for t in tickets if t.closed_unconfirmed),
    }


def _slowest(tickets: list[TicketFacts], n: int) -> list[dict[str, Any]]:
    """The ``n`` tickets with the most resolution working time (ties: the earlier created)."""
    timed = [(float(t.metrics["resolution"]["elapsed_s"]), t) for t in tickets
             if "resolution" in t.metrics and t.metrics["resolution"].get("state")
             not in ("no_target", "not_started")]
    timed.sort(key=lambda x: (-x[0], x[1].created, x[1].tracker, x[1].key))
    out = []
    for _elapsed, t in timed[:n]:
        res = t.metrics["resolution"]
        resp = t.metrics.get("response", {})
        out.append({
            "tracker": t.tracker, "key": t.key, "url": t.url, "subject": t.subject,
            "created": t.created.isoformat(), "class": t.class_, "plan": t.plan,
            "status": t.status,
            "resolution": {"state": res.get("state"), "elapsed_s": res.get("elapsed_s"),
                           "target_s": res.get("target_s")},
            "response": {"state": resp.get("state"), "elapsed_s": resp.get("elapsed_s"),
                         "target_s": resp.get("target_s")},
            "level": t.level,
        })
    return out


def rollup(rows: Iterable[Mapping[str, Any]], metric: str,
           by: Sequence[str] = ("month", "class")) -> dict[tuple[str, ...], dict[str, Any]]:
    """The rows' counts of one metric summed over everything but ``by``, with compliance."""
    out: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for r in rows:
        m = r["metrics"].get(metric)
        if m is None:
            continue
        k = tuple(str(r[b]) for b in by)
        for c in ("met", "breached", "running"):
            out[k][c] += m[c]
    return {k: {"met": c["met"], "breached": c["breached"], "running": c["running"],
                "compliance": compliance(c["met"], c["breached"])}
            for k, c in sorted(out.items())}


# -- reading the store --------------------------------------------------------------------------

_LATEST = """
WITH ranked AS (
    SELECT id, tracker, key, evaluated_at, status, class, plan, verdict,
           row_number() OVER (PARTITION BY tracker, key
                              ORDER BY evaluated_at DESC, id DESC) AS rn
    FROM verdicts
), history AS (
    SELECT tracker, key, min(evaluated_at) AS first_seen,
           max(coalesce({level_index}, 0)) AS top_level,
           {tiers} AS tiers
    FROM verdicts GROUP BY tracker, key
), top AS (
    SELECT v.tracker, v.key, max(v.level) AS level
    FROM verdicts v JOIN history h ON v.tracker = h.tracker AND v.key = h.key
    WHERE {v_level_index} = h.top_level GROUP BY v.tracker, v.key
)
SELECT r.tracker, r.key, r.evaluated_at, r.status, r.class, r.plan, r.verdict,
       h.first_seen, h.top_level, h.tiers, top.level,
       {report_columns}
FROM ranked r
JOIN history h ON h.tracker = r.tracker AND h.key = r.key
LEFT JOIN top ON top.tracker = r.tracker AND top.key = r.key
LEFT JOIN tickets t ON t.tracker = r.tracker AND t.key = r.key
WHERE r.rn = 1
ORDER BY r.tracker, r.key
"""


def read_tickets(db: Reader | sqlite3.Connection) -> list[TicketFacts]:
    """Every ticket with a recorded verdict, as of its latest verdict.

    ``db``: a read-only view of either store (``tracker_bridge.store.open_reader``; one SQL
    for SQLite and PostgreSQL, its JSON bits from the reader), or an sqlite3 connection.
    A ticket recorded before the store kept creation instants (schema v4 and older, until
    the next sync records it) counts from its first evaluation instead. Nothing is written.
    """
    if isinstance(db, sqlite3.Connection):
        from .store_base import SqliteReader

        db = SqliteReader(db)
    have = db.columns("tickets")
    cols = ", ".join(f"t.{c}" if c in have else "NULL"
                     for c in ("created", "url", "subject", "reopens"))
    sql = _LATEST.format(report_columns=cols, level_index=db.json_int("verdict", "level_index"),
                         v_level_index=db.json_int("v.verdict", "level_index"),
                         tiers=db.json_text_array("tier"))
    out = []
    for row in db.rows(sql):
        (tracker, key, evaluated_at, status, class_, plan, verdict, first_seen, top_level,
         tiers, level, created, url, subject, reopens) = tuple(row)
        v = json.loads(verdict)
        tier_set = set(json.loads(tiers or "[]"))
        for o in (v.get("metrics", {}).get("tier_response", {}).get("occurrences") or ()):
            if o.get("tier"):
                tier_set.add(o["tier"])
        out.append(TicketFacts(
            tracker=tracker, key=key,
            created=datetime.fromisoformat(created or first_seen),
            class_=class_, plan=plan or v.get("plan") or "",
            metrics=v.get("metrics", {}), url=url, subject=subject,
            level=level if top_level else None, level_index=top_level or None,
            tiers=frozenset(tier_set), reopens=int(reopens or 0),
            evaluated_at=datetime.fromisoformat(evaluated_at), status=status,
            labels=frozenset(str(x) for x in v.get("labels") or ())))
    return out


# -- text and CSV -------------------------------------------------------------------------------

CSV_COLUMNS = ("month", "tracker", "class", "plan", "tickets", "metric", "met", "breached",
               "running", "compliance", "goal", "p50_s", "p90_s", "occurrences_met",
               "occurrences_breached", "occurrences_running", "escalated_tickets",
               "escalation_levels", "tiers", "reopens", "closed_unconfirmed")


def _counts(d: Mapping[str, int]) -> str:
    return "; ".join(f"{k}={v}" for k, v in d.items())


def metric_lines(doc: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """The document as one line per row and metric (the CSV's and the text table's lines),
    leaving out a metric no ticket of the row counted (the JSON keeps it)."""
    for r in doc["rows"]:
        for name in metric_order(r["metrics"]):
            m = r["metrics"][name]
            occ = r["occurrences"].get(name, {})
            if not (m["met"] or m["breached"] or m["running"]
                    or any(occ.get(k) for k in ("met", "breached", "running"))):
                continue  # no ticket counted (no target, clock not started): nothing to show
            yield {
                "month": r["month"], "tracker": r["tracker"], "class": r["class"],
                "plan": r["plan"], "tickets": r["tickets"], "metric": name,
                "met": m["met"], "breached": m["breached"], "running": m["running"],
                "compliance": m["compliance"], "goal": doc["goal"],
                "p50_s": r["p50_s"].get(name), "p90_s": r["p90_s"].get(name),
                "occurrences_met": occ.get("met"), "occurrences_breached": occ.get("breached"),
                "occurrences_running": occ.get("running"),
                "escalated_tickets": r["escalations"]["tickets"],
                "escalation_levels": _counts(r["escalations"]["levels"]),
                "tiers": _counts(r["escalations"]["tiers"]),
                "reopens": r["reopens"],
                "closed_unconfirmed": r.get("closed_unconfirmed", 0),
            }


def to_csv(doc: Mapping[str, Any]) -> str:
    """The document as CSV: a header line, then one line per row and metric (a spreadsheet
    opens it as it is; empty cells where a value is unknown)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    w.writeheader()
    for line in metric_lines(doc):
        w.writerow({k: _csv_cell(v) for k, v in line.items()})
    return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v  # never a formula in a spreadsheet
    return v


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _dur(s: float | None) -> str:
    from datetime import timedelta

    from .core.durations import format_duration

    return "-" if s is None else format_duration(timedelta(seconds=s))


def print_text(doc: Mapping[str, Any], file: Any = None) -> None:
    """The document as a rich table (one line per row and metric); compliance under the
    goal in red, at or above it in green."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file, width=max(140, Console(file=file).width),
                      highlight=False)
    goal = float(doc["goal"])
    window = (f"created {doc['since'] or 'any time'} .. {doc['until'] or 'now'}"
              if doc["since"] or doc["until"] else "all tickets")
    title = f"SLA compliance ({window}; goal {_pct(goal)})"
    if not doc["rows"]:
        console.print(f"{title}: no tickets")
        return
    table = Table("month", "tracker", "class", "plan", "tickets", "metric", "met",
                  "breached", "running", "compliance", "p50", "p90", "escalated",
                  "reopens", title=title, title_justify="left", box=None, pad_edge=False)
    last = None
    for line in metric_lines(doc):
        key = (line["month"], line["tracker"], line["class"], line["plan"])
        first = key != last
        last = key
        c = line["compliance"]
        style = "" if c is None else ("green" if c >= goal else "bold red")
        esc = line["escalated_tickets"]
        table.add_row(
            *(str(x) for x in key) if first else ("", "", "", ""),
            str(line["tickets"]) if first else "",
            line["metric"], str(line["met"]), str(line["breached"]), str(line["running"]),
            Text(_pct(c), style=style), _dur(line["p50_s"]), _dur(line["p90_s"]),
            (f"{esc} ({line['escalation_levels']})" if esc else "0") if first else "",
            str(line["reopens"]) if first else "")
    console.print(table)
    if doc.get("slowest"):
        slow = Table("ticket", "class", "plan", "resolution", "of", "state", "subject",
                     title="slowest tickets (resolution working time)", title_justify="left",
                     box=None, pad_edge=False)
        for s in doc["slowest"]:
            res = s["resolution"]
            slow.add_row(f"{s['tracker']}:{s['key']}", s["class"], s["plan"],
                         _dur(res["elapsed_s"]), _dur(res["target_s"]), str(res["state"]),
                         Text(s["subject"] or ""))
        console.print()
        console.print(slow)
