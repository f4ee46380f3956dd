"""``tracker-bridge report`` and the live status page on a PostgreSQL store (tests/pg's
private server): the same desk synced over the memory backend into SQLite and into
PostgreSQL gives the same report and the same page, read through the same SQL; the store is
only read; the password never shows in an error. Skipped with the reason when PostgreSQL
cannot be started outside CI; a failure in CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pg.conftest import pg_server, pg_url  # noqa: F401

from tracker_bridge.cli import main
from tracker_bridge.compliance import read_tickets
from tracker_bridge.config import load_config
from tracker_bridge.errors import StoreError
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.statuspage import collect, render
from tracker_bridge.store import open_reader, open_store

from .scenario import SECOND_SYNC, run_scenario

PASS_ENV = "TB_REPORT_PG_PASSWORD"


@pytest.fixture(autouse=True)
def _fresh_memory():
    MemoryTracker.forget_all()
    yield
    MemoryTracker.forget_all()


@pytest.fixture
def both(tmp_path: Path, pg_server: Any, pg_url: str,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str, str]:
    """The scenario synced into SQLite and, from scratch, into PostgreSQL."""
    monkeypatch.setenv(PASS_ENV, pg_server.bridge_password)
    (tmp_path / "lite").mkdir()
    (tmp_path / "pg").mkdir()
    lite = run_scenario(tmp_path / "lite")
    pg = run_scenario(tmp_path / "pg", state=pg_url, state_credentials={"env": PASS_ENV})
    return lite, pg, pg_url, pg_server.bridge_password


def report_json(config: Path, *args: str) -> dict:
    r = CliRunner().invoke(main, ["report", "--config", str(config), "--format", "json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_the_report_on_postgresql_is_the_report_on_sqlite(both: tuple) -> None:
    lite, pg, url, password = both
    on_lite, on_pg = report_json(lite), report_json(pg)
    assert on_pg["rows"], on_pg  # (the scenario's tickets are there: not two empty reports)
    assert on_pg == on_lite
    # the same tickets, read through the same SQL (escalation levels and tiers included)
    with open_reader(url, password=password) as db:
        facts_pg = read_tickets(db)
    with open_reader(lite.parent / "state.sqlite") as db:
        facts_lite = read_tickets(db)
    assert len(facts_pg) == 5
    assert facts_pg == facts_lite
    assert any(t.level for t in facts_pg)  # (an escalated ticket: the JSON bits compared too)
    # and every format agrees
    for fmt in ("csv", "text", "html"):
        a = CliRunner().invoke(main, ["report", "--config", str(lite), "--format", fmt])
        b = CliRunner().invoke(main, ["report", "--config", str(pg), "--format", fmt])
        assert a.exit_code == b.exit_code == 0, (a.output, b.output)
        assert a.output == b.output, fmt


def test_the_report_only_reads_the_postgresql_store(both: tuple) -> None:
    _, pg, url, password = both
    st = open_store(url, password=password)
    try:
        before = {t: st.count(t) for t in ("tickets", "verdicts", "cycles", "notes", "writes")}
        report_json(pg)
        assert {t: st.count(t) for t in before} == before
    finally:
        st.close()
    # a reader refuses to write
    with open_reader(url, password=password) as db, pytest.raises(StoreError, match="read-only"):
        db.rows("DELETE FROM tickets")


def test_the_status_page_on_postgresql_shows_the_sqlite_numbers(both: tuple) -> None:
    lite, _, url, password = both
    kw: dict[str, Any] = {"now": SECOND_SYNC, "goal": 0.8, "zone": ZoneInfo("UTC")}
    m_lite = collect(lite.parent / "state.sqlite", **kw)
    m_pg = collect(url, password=password, **kw)
    assert m_pg.problem is None and m_lite.problem is None
    assert m_pg.open_tickets == m_lite.open_tickets == 3
    assert m_pg.month == m_lite.month and m_pg.month  # this month's compliance per clock
    assert m_pg.at_risk == m_lite.at_risk and m_pg.at_risk
    assert m_pg.next_due == m_lite.next_due
    assert m_pg.paused == m_lite.paused
    assert render(m_pg) == render(m_lite)


def test_the_daemon_serves_the_page_from_postgresql(both: tuple) -> None:
    """daemon.status_page reads the config's state with its password (no SQLite path)."""
    from tracker_bridge.daemon import Daemon

    _, pg, _, _ = both
    cfg = load_config(pg, pm=get_plugin_manager(load_entrypoints=False))
    d = Daemon(cfg, pm=get_plugin_manager(load_entrypoints=False))
    text = d.status_page()
    assert 'id="problem"' not in text
    assert "open tickets" in text and "Calendar slow" in text


def test_a_wrong_password_is_a_clear_error_without_the_password(
        both: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, pg, url, password = both
    wrong = "Wr0ng-" + password[::-1]
    monkeypatch.setenv(PASS_ENV, wrong)
    r = CliRunner().invoke(main, ["report", "--config", str(pg)])
    assert r.exit_code != 0
    assert "cannot read the state store" in r.output and "state:" in r.output
    assert wrong not in r.output and password not in r.output
    m = collect(url, password=wrong, now=SECOND_SYNC, goal=0.8, zone=ZoneInfo("UTC"))
    assert m.problem is not None and "cannot read the state store" in m.problem
    assert wrong not in m.problem
