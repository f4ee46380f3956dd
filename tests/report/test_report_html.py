"""``report --format html``: one self-contained page, every ticket text escaped; and the same
page in a real browser (Debian's Chromium): the charts' elements, the tables' rows, no
script error, nothing fetched, a screenshot kept under the test's tmp dir."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main
from tracker_bridge.plugins.memory import MemoryTracker

from .scenario import HOSTILE, run_scenario


@pytest.fixture(autouse=True)
def _fresh_memory():
    MemoryTracker.forget_all()
    yield
    MemoryTracker.forget_all()


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, dict]:
    """The scenario's report as HTML (tmp_path/report.html) and as JSON."""
    config = run_scenario(tmp_path)
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", "--config", str(config), "--format", "html",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", "--config", str(config), "--json"])
    return out, json.loads(r.output)


class _Refs(HTMLParser):
    """Every tag, and every attribute that makes a browser fetch something or run code."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "xlink:href", "action", "srcset") or k.startswith("on"):
                self.refs.append((tag, k, v or ""))


def test_the_page_is_self_contained(made: tuple[Path, dict]) -> None:
    html = made[0].read_text()
    p = _Refs()
    p.feed(html)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert "@import" not in html and "url(" not in html.replace("url(#", "")
    # the only references: in-page (#...) ones in the SVG, and the ticket links
    outside = [r for r in p.refs if not r[2].startswith("#")]
    assert outside == [("a", "href", "https://tracker.example/issues/5?a=1&b=2")]


def test_a_hostile_subject_is_text(made: tuple[Path, dict]) -> None:
    html = made[0].read_text()
    assert HOSTILE not in html and "<script>" not in html and "<img" not in html
    assert ("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x "
            "onerror=alert(1)&gt; &amp; &#34;quotes&#34;") in html
    # the link's & is escaped in the attribute; memory:// tickets get no link
    assert 'href="https://tracker.example/issues/5?a=1&amp;b=2"' in html
    assert "memory://" not in html


def test_a_ticket_link_must_be_http() -> None:
    from tracker_bridge.report_html import _href

    assert _href("javascript:alert(1)") is None
    assert _href(" https://x") is None
    assert _href("HTTPS://tracker/1") == "HTTPS://tracker/1"


def test_the_charts_are_svg_of_the_numbers(made: tuple[Path, dict]) -> None:
    html, doc = made[0].read_text(), made[1]
    for gid in ("response-goal", "response-class-high", "response-class-low",
                "resolution-goal", "resolution-class-high", "breaches-response-standard",
                "breaches-resolution-standard"):
        assert f'id="{gid}"' in html, gid
    # the months on the x axis and the goal in the legend, as text
    assert ">2026-02<" in html and ">2026-03<" in html and ">goal 80%<" in html
    # resolution has no compliance in March (nothing ended): one point, February's
    assert doc["rows"][2]["metrics"]["resolution"]["compliance"] is None


def test_an_empty_window_says_so(tmp_path: Path) -> None:
    config = run_scenario(tmp_path)
    r = CliRunner().invoke(main, ["report", "--config", str(config), "--format", "html",
                                  "--since", "2030-01-01"])
    assert r.exit_code == 0
    assert 'id="empty"' in r.output and "<svg" not in r.output


# -- in a real browser --------------------------------------------------------------------------


def test_chromium_renders_the_report(made: tuple[Path, dict], tmp_path: Path) -> None:
    from browser import open_page

    path, doc = made
    shot = tmp_path / "report.png"
    with open_page(path, screenshot=shot, size=(1400, 1000)) as p:
        page = p.page
        # the charts: three inline SVGs, each line and bar drawn with a path
        assert page.locator("figure.chart svg").count() == 3
        for gid in ("response-goal", "response-class-high", "resolution-class-high",
                    "breaches-response-standard"):
            assert page.locator(f"[id='{gid}'] path").count() >= 1, gid
        box = page.locator("#chart-compliance-response svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
        # the table: one line per row and metric, the numbers of the JSON
        cells = page.locator("#rows tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))")
        expect = [[r["month"], r["class"], name, str(m["met"]), str(m["breached"]),
                   str(m["running"]), "-" if m["compliance"] is None
                   else f"{m['compliance'] * 100:.1f}%"]
                  for r in doc["rows"] for name, m in r["metrics"].items()
                  if m["met"] + m["breached"] + m["running"]]
        assert [[c[0], c[2], c[5], c[6], c[7], c[8], c[9]] for c in cells] == expect
        # the slowest tickets, the hostile subject shown as text, its link to the tracker
        slow = page.locator("#slowest tbody tr")
        assert slow.count() == len(doc["slowest"]) == 4
        row = slow.filter(has_text="desk:5")
        assert row.locator("td").nth(1).inner_text() == HOSTILE
        assert row.locator("a").get_attribute("href") == \
            "https://tracker.example/issues/5?a=1&b=2"
        assert page.locator("#tile-response .n").inner_text() == "60.0%"  # 3 of 5
        # the rendered DOM (what --dump-dom prints): no element came out of the subject
        dom = p.dom
        assert dom.count("<svg") == 3 and "<script" not in dom and "<img" not in dom
        assert p.errors == [] and p.dialogs == [] and p.external == []
        assert [u for u in p.requests if not u.startswith("file:")] == []
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
