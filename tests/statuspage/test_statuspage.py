"""The status page: its contents from a real store written by real sync cycles, escaping a
hostile subject, and the page served by `tracker-bridge run` (in Chromium too)."""

from __future__ import annotations

import html.parser
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml

from tracker_bridge.config import load_config
from tracker_bridge.core.ticket import HistoryEvent, Ticket
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.observability import Health
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.statuspage import collect, page, render
from tracker_bridge.sync import run_once

POLICY = """\
name: page-test
timezone: Europe/London
statuses: {new: [New], waiting: [Feedback], resolved: [Resolved], closed: [Closed]}
classes:
  high: {response: 1h, resolution: 8h}
  low: {response: 4h, resolution: 2d}
default_class: low
plans:
  standard: {calendar: always}
default_plan: standard
classify: {field: priority, map: {High: high, Low: low}}
labels: {prefix: "sla-"}
goal: 90%
"""
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'
NOW = datetime.now(UTC).replace(microsecond=0)


def _ticket(key: str, subject: str, created: datetime, status: str = "New",
            priority: str = "High", history: tuple = ()) -> Ticket:
    return Ticket(tracker="desk", key=key, created=created, status=status, reporter="customer",
                  subject=subject, fields={"priority": priority}, history=history)


@pytest.fixture
def desk(tmp_path: Path):
    """A store written by one real sync cycle over the memory backend: a breached ticket
    (hostile subject), an at-risk one, a running one, a paused one and a resolved one."""
    MemoryTracker.forget_all()
    (tmp_path / "policy.yaml").write_text(POLICY)
    cfg_path = tmp_path / "tracker-bridge.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "policy": "policy.yaml", "state": "state.sqlite",
        "trackers": [{"name": "desk", "backend": "memory", "options": {"instance": "desk"},
                      "write": {"labels": "labels", "notes": "journal"}}]}))
    tr = MemoryTracker.named("desk")
    tr.clock = lambda: NOW
    h = timedelta(hours=1)
    tr.add(_ticket("1", HOSTILE, NOW - 2 * h))                      # response breached
    tr.add(_ticket("2", "Printer at risk", NOW - timedelta(minutes=50)))  # response at risk
    tr.add(_ticket("3", "Slow login", NOW - timedelta(minutes=5), priority="Low"))
    tr.add(_ticket("4", "Waiting on logs", NOW - 3 * h, status="Feedback", priority="Low",
                   history=(HistoryEvent(at=NOW - 2 * h, kind="status", from_="New",
                                         to="Feedback"),)))
    tr.add(_ticket("5", "Fixed already", NOW - 3 * h, status="Resolved", history=(
        HistoryEvent(at=NOW - timedelta(hours=2, minutes=30), kind="comment", by="agent",
                     public=True, text="Fixed"),
        HistoryEvent(at=NOW - 2 * h, kind="status", from_="New", to="Resolved"))))
    cfg = load_config(cfg_path, pm=get_plugin_manager(load_entrypoints=False))
    report = run_once(cfg, pm=get_plugin_manager(load_entrypoints=False), now=NOW)
    assert report.ok, report
    yield cfg
    MemoryTracker.forget_all()


class _Tables(html.parser.HTMLParser):
    """The text of each row of each table, by the table's id (a real HTML parser)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.scripts = 0
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "script" or any(k.startswith("on") for k in a):
            self.scripts += 1
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table or ""] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and not self._in_head:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table or ""].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(text: str) -> _Tables:
    p = _Tables()
    p.feed(text)
    return p


def test_the_page_shows_the_desk_from_the_store(desk) -> None:
    health = Health(max_age=60)
    health.tracker("desk").last_good = NOW
    text = page(desk.state, goal=0.9, zone=ZoneInfo("Europe/London"),
                health=health.snapshot(NOW), now=NOW)
    t = tables(text)
    risky = t.tables["at-risk"]
    # worst first: the breached response of 1, then the at-risk response of 2
    assert [(r[0], r[2], r[3]) for r in risky] == [("desk:1", "response", "breached"),
                                                   ("desk:2", "response", "at risk")]
    assert risky[0][1] == HOSTILE  # shown as text
    nxt = t.tables["next-deadlines"]
    assert [(r[0], r[2]) for r in nxt] == [("desk:2", "response"), ("desk:3", "response"),
                                           ("desk:1", "resolution"), ("desk:2", "resolution"),
                                           ("desk:3", "resolution")]
    assert nxt[0][4] == "in 10m"  # created 50 minutes ago, a 1h target on 24x7
    paused = t.tables["paused"]
    # 4: low, ran 1h then Feedback (a response): resolution 47h left (2d on always)
    assert [(r[0], r[2], r[3], r[4]) for r in paused] == [
        ("desk:4", "resolution", "Feedback", "47h left")]
    comp = {r[0]: r[1:] for r in t.tables["compliance"]}
    # this month: 4 and 5 met their response, 1 breached it; 5 met its resolution
    # (unless the month just turned: then the tickets were created last month)
    if all(x.astimezone(UTC).month == NOW.month for x in (NOW - timedelta(hours=3), NOW)):
        assert comp["response"] == ["2", "1", "66.7%", "90%"]
        assert comp["resolution"] == ["1", "0", "100.0%", "90%"]
    assert [r[:2] for r in t.tables["trackers"]] == [["desk", "ok"]]
    assert "Fixed already" not in text  # resolved: not on the page
    assert t.scripts == 0


def test_every_ticket_text_is_escaped() -> None:
    from tracker_bridge.statuspage import Model, Row

    evil_url = 'javascript:alert(1)'
    row = Row(tracker="desk<b>", key='1"><script>x</script>', subject=HOSTILE, url=evil_url,
              metric="response", state="breached", due=NOW, remaining_s=-60.0,
              calendar="always", status="<i>New</i>")
    m = Model(now=NOW, zone=ZoneInfo("UTC"), goal=0.9, at_risk=[row], paused=[row],
              health={"<svg onload=alert(1)>": {"ok": False,
                                                "last_error": {"message": HOSTILE}}})
    text = render(m)
    assert "<script>" not in text and "<img" not in text and "<svg" not in text
    assert "<i>" not in text and "<b>" not in text and "javascript:" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    t = tables(text)
    assert t.scripts == 0
    assert t.tables["at-risk"][0][1] == HOSTILE
    assert t.tables["trackers"][0][0] == "<svg onload=alert(1)>"


def test_a_store_that_cannot_be_read_is_said_so(tmp_path: Path) -> None:
    m = collect(tmp_path / "missing.sqlite", now=NOW, goal=0.9, zone=ZoneInfo("UTC"))
    assert m.problem and "cannot be read" in m.problem
    assert 'id="problem"' in render(m)


def test_links_go_to_the_tracker_when_the_store_knows_the_url() -> None:
    from tracker_bridge.statuspage import Model, Row

    row = Row(tracker="desk", key="7", subject="s", url="https://redmine.example.org/issues/7",
              metric="response", state="at_risk", due=NOW, remaining_s=60.0,
              calendar="always", status="New")
    text = render(Model(now=NOW, zone=ZoneInfo("UTC"), goal=0.9, at_risk=[row]))
    assert '<a href="https://redmine.example.org/issues/7">desk:7</a>' in text


# -- served by the daemon -----------------------------------------------------------------------


def _daemon(tmp_path: Path, start_daemon):
    from daemon.conftest import KEY_ENV, memory_tracker, save_tracker, write_config

    tr = MemoryTracker("desk")
    now = datetime.now(UTC)
    tr.clock = lambda: datetime.now(UTC)
    tr.add(_ticket("1", HOSTILE, now - timedelta(hours=2)))
    tr.add(_ticket("2", "Printer at risk", now - timedelta(minutes=50)))
    tr.add(_ticket("3", "Slow login", now - timedelta(minutes=5), priority="Low"))
    save_tracker(tr, tmp_path / "tickets.json")
    entry = memory_tracker()
    entry["write"] = {"labels": "labels", "notes": "journal"}
    del entry["credentials"]
    assert KEY_ENV
    cfg = write_config(tmp_path, [entry], policy=POLICY)
    d = start_daemon(cfg, "--metrics-port", "0", "--log-format", "human")
    port = d.port()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the first cycle is recorded
        r = requests.get(url, timeout=10)
        if "desk:1" in r.text:
            return d, url, r
        time.sleep(0.2)
    raise AssertionError(f"the page never showed the tickets:\n{d.text()[-2000:]}")


def test_the_daemon_serves_the_page(tmp_path: Path, start_daemon) -> None:
    d, url, r = _daemon(tmp_path, start_daemon)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "script-src" not in r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert re.search(r'http-equiv="refresh" content="\d+"', r.text)
    t = tables(r.text)
    assert t.scripts == 0
    assert [row[0] for row in t.tables["at-risk"]] == ["desk:1", "desk:2"]
    assert requests.get(url + "status", timeout=10).text.count("desk:1") >= 1
    assert d.stop() == 0


def test_the_page_in_chromium(tmp_path: Path, start_daemon) -> None:
    from browser import open_page

    d, url, _ = _daemon(tmp_path, start_daemon)
    shot = tmp_path / "status-page.png"
    with open_page(url, screenshot=shot) as p:
        rows = p.page.locator("table#at-risk tbody tr")
        assert rows.count() == 2
        first = rows.nth(0).locator("td")
        assert first.nth(0).inner_text() == "desk:1"
        assert first.nth(1).inner_text() == HOSTILE  # rendered as text, not run
        assert p.page.locator("table#next-deadlines tbody tr").count() == 5
        assert p.page.evaluate("document.scripts.length") == 0
        assert p.page.locator("img").count() == 0
        assert p.errors == [] and p.external == []
    assert shot.stat().st_size > 0
    assert d.stop() == 0
