"""``tracker-bridge report --format html``: one self-contained page (docs/report.md).

The charts are static SVG drawn by matplotlib (its SVG backend, text kept as text) and put
inline; the page has no script, no external stylesheet, font or image, so it opens from a
mail attachment or a file share with no network. The page is a Jinja2 template with
autoescaping: every ticket text (subjects are customer input) is escaped, and a ticket's
link is kept only when it is an http(s) URL.

Imported only by ``report --format html`` (matplotlib and Jinja2 are heavy imports).
"""

from __future__ import annotations

import io
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .compliance import metric_lines, metric_order, rollup
from .core.durations import format_duration

#: matplotlib's default colour cycle (tab10), for classes
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")  # (tab10 without its red, which reads as "below goal")
#: metric colours in the breaches chart
_METRIC_COLOURS = {"response": "#d62728", "resolution": "#ff7f0e", "update": "#9467bd",
                   "tier_response": "#8c564b", "escalation_response": "#e377c2"}


def _slug(text: str) -> str:
    """A piece of an SVG element id: letters, digits and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _svg(fig: Any) -> str:
    """A matplotlib figure as inline SVG (no XML prolog, no DOCTYPE, no date)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # the RDF metadata block says nothing a reader needs
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)


def _rc() -> dict[str, Any]:
    return {"svg.fonttype": "none",  # text stays <text> (readable, searchable, testable)
            "svg.hashsalt": "tracker-bridge",  # the same ids on every run
            "font.family": "sans-serif",
            "font.size": 10,
            "axes.spines.top": False, "axes.spines.right": False}


def compliance_chart(doc: Mapping[str, Any], metric: str) -> str | None:
    """Compliance of one metric per month, one line per class, and the goal line (SVG);
    ``None`` when no month has a ticket that met or breached it."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    per = rollup(doc["rows"], metric, by=("month", "class"))
    if not any(v["compliance"] is not None for v in per.values()):
        return None
    months = sorted({m for m, _ in per})
    classes = sorted({c for _, c in per})
    goal = float(doc["goal"])
    with rc_context(_rc()):
        fig = Figure(figsize=(6.4, 3.4), layout="constrained")
        ax = fig.add_subplot()
        x = range(len(months))
        for i, cls in enumerate(classes):
            ys = [per.get((m, cls), {}).get("compliance") for m in months]
            pts = [(xi, y) for xi, y in zip(x, ys, strict=True) if y is not None]
            if not pts:
                continue
            (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                              color=_COLOURS[i % len(_COLOURS)], label=cls, linewidth=2)
            line.set_gid(f"{_slug(metric)}-class-{_slug(cls)}")
        goal_line = ax.axhline(goal, color="#333333", linestyle="--", linewidth=1.2,
                               label=f"goal {goal:.0%}")
        goal_line.set_gid(f"{_slug(metric)}-goal")
        ax.set_xticks(list(x), months)
        ax.set_xlim(-0.5, len(months) - 0.5)
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel(f"{metric} met / (met + breached)")
        ax.set_title(f"{metric}: compliance per month, by class", loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        return _svg(fig)


def breaches_chart(doc: Mapping[str, Any]) -> str | None:
    """Breached tickets per plan, stacked by metric (SVG); ``None`` when none breached."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in doc["rows"]:
        for name, m in r["metrics"].items():
            counts[r["plan"]][name] += m["breached"]
    plans = sorted(counts)
    metrics = [n for n in metric_order({n for c in counts.values() for n in c})
               if any(counts[p][n] for p in plans)]
    if not metrics:
        return None
    with rc_context(_rc()):
        fig = Figure(figsize=(6.4, 3.4), layout="constrained")
        ax = fig.add_subplot()
        bottom = [0] * len(plans)
        for name in metrics:
            heights = [counts[p][name] for p in plans]
            bars = ax.bar(plans, heights, bottom=bottom, label=name,
                          color=_METRIC_COLOURS.get(name, "#7f7f7f"))
            for rect, plan in zip(bars, plans, strict=True):
                rect.set_gid(f"breaches-{_slug(name)}-{_slug(plan)}")
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("tickets breached")
        ax.set_title("breaches per plan, by metric", loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        return _svg(fig)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SLA compliance{% if policy %}: {{ policy }}{% endif %}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem;
       color: #222; max-width: 1400px; }
h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.1rem; margin-top: 1.6rem; }
.sub { color: #555; margin-top: 0; }
.tiles { display: flex; gap: 1rem; flex-wrap: wrap; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 1rem; min-width: 9rem; }
.tile .n { font-size: 1.6rem; font-weight: 600; }
.charts { display: flex; gap: 1rem; flex-wrap: wrap; }
.chart { border: 1px solid #eee; border-radius: 6px; padding: 0.3rem; margin: 0;
         flex: 1 1 420px; max-width: 660px; }
.chart svg { width: 100%; height: auto; max-width: 640px; display: block; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { padding: 0.2rem 0.6rem; text-align: left; border-bottom: 1px solid #eee;
         white-space: nowrap; }
td.subject { white-space: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.under { color: #b00020; font-weight: 600; }
.over { color: #1b7a1b; }
tr.first td { border-top: 1px solid #bbb; }
</style>
</head>
<body>
<h1>SLA compliance{% if policy %}: {{ policy }}{% endif %}</h1>
<p class="sub">{{ window }}; goal {{ pct(goal) }} of tickets within target; made from the
bridge's state store{% if trackers %} (trackers: {{ trackers|join(", ") }}){% endif %}.</p>
<div class="tiles">
<div class="tile" id="tile-tickets"><div class="n">{{ total_tickets }}</div>tickets</div>
{% for t in tiles %}
<div class="tile" id="tile-{{ t.metric }}"><div class="n {{ t.cls }}">{{ pct(t.compliance) }}</div>
{{ t.metric }} within target ({{ t.met }} met, {{ t.breached }} breached, {{ t.running }} running)</div>
{% endfor %}
</div>
{% if not lines %}<p id="empty">No tickets in this window.</p>{% endif %}
<div class="charts">
{% for c in charts %}<figure class="chart" id="chart-{{ c.id }}">{{ c.svg|safe }}</figure>
{% endfor %}
</div>
{% if slowest %}
<h2>Slowest tickets (resolution working time)</h2>
<table id="slowest">
<thead><tr><th>ticket</th><th>subject</th><th>class</th><th>plan</th><th>status</th>
<th>resolution</th><th>target</th><th>state</th><th>response</th><th>level</th></tr></thead>
<tbody>
{% for s in slowest %}<tr>
<td>{% if s.href %}<a href="{{ s.href }}" rel="noopener noreferrer">{{ s.tracker }}:{{ s.key }}</a>{% else %}{{ s.tracker }}:{{ s.key }}{% endif %}</td>
<td class="subject">{{ s.subject or "" }}</td><td>{{ s.class }}</td><td>{{ s.plan }}</td><td>{{ s.status or "" }}</td>
<td class="num">{{ dur(s.resolution.elapsed_s) }}</td><td class="num">{{ dur(s.resolution.target_s) }}</td>
<td>{{ s.resolution.state }}</td><td>{{ s.response.state or "-" }}</td><td>{{ s.level or "-" }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if lines %}
<h2>Per month, tracker, class and plan</h2>
<table id="rows">
<thead><tr><th>month</th><th>tracker</th><th>class</th><th>plan</th><th>tickets</th>
<th>metric</th><th>met</th><th>breached</th><th>running</th><th>compliance</th>
<th>p50</th><th>p90</th><th>escalated</th><th>reopens</th></tr></thead>
<tbody>
{% for l in lines %}<tr class="{{ 'first' if l.first else '' }}" data-metric="{{ l.metric }}">
<td>{{ l.month }}</td><td>{{ l.tracker }}</td><td>{{ l.class }}</td><td>{{ l.plan }}</td>
<td class="num">{{ l.tickets }}</td><td>{{ l.metric }}</td>
<td class="num">{{ l.met }}</td><td class="num">{{ l.breached }}</td><td class="num">{{ l.running }}</td>
<td class="num {{ l.cls }}">{{ pct(l.compliance) }}</td>
<td class="num">{{ dur(l.p50_s) }}</td><td class="num">{{ dur(l.p90_s) }}</td>
<td>{{ l.escalated_tickets }}{% if l.escalation_levels %} ({{ l.escalation_levels }}){% endif %}</td>
<td class="num">{{ l.reopens }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
</body>
</html>
"""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _dur(s: float | None) -> str:
    return "-" if s is None else format_duration(timedelta(seconds=s))


def _href(url: str | None) -> str | None:
    """A ticket's link, only when it is an http(s) URL (never ``javascript:`` and the like)."""
    if url and re.match(r"(?i)https?://", url):
        return url
    return None


def render_html(doc: Mapping[str, Any]) -> str:
    """The report document (:func:`tracker_bridge.compliance.aggregate`) as one HTML page."""
    from jinja2 import Environment

    goal = float(doc["goal"])

    def level(c: float | None) -> str:
        return "" if c is None else ("over" if c >= goal else "under")

    tiles = []
    for metric in [m for m in ("response", "resolution") if m in doc["metrics_order"]]:
        total = rollup(doc["rows"], metric, by=()).get((), None)
        if total is not None:
            tiles.append({"metric": metric, **total, "cls": level(total["compliance"])})
    charts = []
    for metric in doc["metrics_order"]:
        if metric in ("response", "resolution"):
            svg = compliance_chart(doc, metric)
            if svg is not None:
                charts.append({"id": f"compliance-{_slug(metric)}", "svg": svg})
    svg = breaches_chart(doc)
    if svg is not None:
        charts.append({"id": "breaches", "svg": svg})
    lines = []
    last = None
    for line in metric_lines(doc):
        key = (line["month"], line["tracker"], line["class"], line["plan"])
        lines.append({**line, "first": key != last, "cls": level(line["compliance"])})
        last = key
    slowest = [{**s, "href": _href(s.get("url"))} for s in doc.get("slowest", ())]
    if doc.get("since") or doc.get("until"):
        window = f"tickets created {doc.get('since') or 'any time'} to {doc.get('until') or 'now'}"
    else:
        window = "all tickets"
    env = Environment(autoescape=True, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE).render(
        policy=doc.get("policy"), window=window, goal=goal, trackers=doc.get("trackers"),
        total_tickets=sum(r["tickets"] for r in doc["rows"]), tiles=tiles, charts=charts,
        lines=lines, slowest=slowest, pct=_pct, dur=_dur)
