"""Tracker faults against the Redmine backend's real requests (HTTP faked with `responses`):
retries and their waits, Retry-After, credentials refused, a refused write, a lost answer.

Waits go through an injected fake (`waits`), so no test sleeps for real.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from tracker_bridge.config import load_config
from tracker_bridge.core.verdict import NOTE_MARKER_RE
from tracker_bridge.daemon import Daemon
from tracker_bridge.hookspecs import hookimpl
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.observability import setup_logging
from tracker_bridge.retry import RetryPolicy
from tracker_bridge.store import Store
from tracker_bridge.sync import run_once

from .conftest import KEY, KEY_ENV, WRITE, write_config
from .fake_redmine import URL, FakeRedmine, Fault

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BREACHED = T0 + timedelta(hours=1, minutes=30)  # a High ticket's 1h response is breached


class Waits(list[float]):
    """A fake sleep for tenacity: records each wait, never sleeps."""

    def __call__(self, seconds: float) -> bool:
        self.append(seconds)
        return False


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def retry(waits: Waits) -> RetryPolicy:
    return RetryPolicy(attempts=4, initial=1.0, max_wait=30.0, jitter=1.0,
                       max_retry_after=120.0, wait=waits, rng=random.Random(7))


@pytest.fixture
def fake() -> FakeRedmine:
    f = FakeRedmine(KEY)
    f.add_issue(1, "High", created=T0)
    return f


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(KEY_ENV, KEY)
    path = write_config(tmp_path, [{
        "name": "fake", "backend": "redmine", "url": URL, "credentials": {"env": KEY_ENV},
        "projects": [], "fields": {"priority": "priority"}, "write": dict(WRITE)}])
    return load_config(path, pm=get_plugin_manager(load_entrypoints=False))


def sync(cfg: Any, fake: FakeRedmine, retry: RetryPolicy, now: datetime = BREACHED) -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        report = run_once(cfg, now=now, pm=get_plugin_manager(load_entrypoints=False),
                          retry=retry)
    [tr] = report.trackers
    return tr


def markers(fake: FakeRedmine, iid: int) -> list[str]:
    return [k for n in fake.notes(iid) for k in NOTE_MARKER_RE.findall(n)]


READ_FAULTS = {
    "connection refused": Fault("fail", exc=requests.ConnectionError("Connection refused")),
    "timeout": Fault("fail", exc=requests.ReadTimeout("read timed out")),
    "500": Fault("fail", 500),
    "502": Fault("fail", 502),
    "503": Fault("fail", 503),
}


@pytest.mark.parametrize("fault", list(READ_FAULTS))
def test_a_read_fault_is_retried_with_exponential_backoff_and_jitter(
        cfg: Any, fake: FakeRedmine, retry: RetryPolicy, waits: Waits, fault: str) -> None:
    fake.fail("GET", "/issues.json", READ_FAULTS[fault], READ_FAULTS[fault])
    tr = sync(cfg, fake, retry)
    assert tr.ok, tr.errors
    assert fake.calls[("GET", "/issues.json")] == 3  # two failures, then the answer
    assert tr.retries["read"] == 2
    # 1 s then 2 s, each plus up to 1 s of jitter
    assert len(waits) == 2
    assert 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 3.0
    assert waits[0] != 1.0 or waits[1] != 2.0  # the jitter is there
    assert markers(fake, 1) == ["breach:response"]
    assert "sla-breached-response" in fake.cf(1, "SLA labels")


def test_429_waits_exactly_retry_after(cfg: Any, fake: FakeRedmine, retry: RetryPolicy,
                                       waits: Waits) -> None:
    fake.fail("GET", "/issues/1.json", Fault("fail", 429, headers={"Retry-After": "7"}))
    tr = sync(cfg, fake, retry)
    assert tr.ok, tr.errors
    assert waits == [7.0]
    assert markers(fake, 1) == ["breach:response"]


def test_reads_give_up_after_the_last_attempt_and_the_cursor_stays(
        cfg: Any, fake: FakeRedmine, retry: RetryPolicy, waits: Waits) -> None:
    fake.fail("GET", "/issues.json", *[Fault("fail", 503)] * 4)
    tr = sync(cfg, fake, retry)
    assert tr.aborted and [e.kind for e in tr.errors] == ["unavailable"]
    assert fake.calls[("GET", "/issues.json")] == 4 and len(waits) == 3
    assert waits[2] >= 4.0  # 1, 2, 4 (+ jitter)
    assert fake.note_puts == []
    with Store(cfg.state) as st:
        assert st.get_cursor("fake") is None
    # and the next cycle does the work
    tr = sync(cfg, fake, retry)
    assert tr.ok and markers(fake, 1) == ["breach:response"]


def test_a_lost_answer_to_a_note_write_is_not_repeated(cfg: Any, fake: FakeRedmine,
                                                       retry: RetryPolicy,
                                                       waits: Waits) -> None:
    # the PUT with the fields, the labels and the (first) note is applied by Redmine but its
    # answer is lost (a timeout): a blind retry would post the note twice
    fake.fail("PUT", "/issues/1.json",
              Fault("apply-then-fail", exc=requests.ReadTimeout("read timed out")))
    tr = sync(cfg, fake, retry)
    assert tr.ok, tr.errors
    assert tr.retries["write"] == 1 and len(waits) == 1
    assert markers(fake, 1) == ["breach:response"]
    assert len(fake.note_puts) == 1
    assert fake.calls[("PUT", "/issues/1.json")] == 1  # nothing left to write after re-reading


def test_a_failed_note_write_is_redone_once(cfg: Any, fake: FakeRedmine, retry: RetryPolicy,
                                            waits: Waits) -> None:
    fake.fail("PUT", "/issues/1.json", Fault("fail", 502))
    tr = sync(cfg, fake, retry)
    assert tr.ok, tr.errors
    assert tr.retries["write"] == 1
    assert markers(fake, 1) == ["breach:response"]
    # the failed PUT (fields and the first note in one), then the same again after re-reading
    assert fake.calls[("PUT", "/issues/1.json")] == 2


def test_a_refused_write_is_recorded_and_the_other_tickets_go_on(
        cfg: Any, fake: FakeRedmine, retry: RetryPolicy, waits: Waits) -> None:
    fake.add_issue(2, "Low", created=T0)
    fake.fail("PUT", "/issues/1.json", Fault("fail", 422, body=json.dumps(
        {"errors": ["SLA labels is not included in the list"]})))
    tr = sync(cfg, fake, retry)
    assert not tr.aborted and waits == []  # a refusal is not retried
    assert [(e.kind, e.key) for e in tr.errors] == [("rejected", "1")]
    assert "not included in the list" in tr.errors[0].message
    assert "sla-low" in fake.cf(2, "SLA labels")
    assert fake.cf(1, "SLA labels") == []
    with Store(cfg.state) as st:
        assert st.get_cursor("fake") is not None  # the tracker's cycle completed
        assert st.ticket("fake", "1").retry and not st.ticket("fake", "2").retry
        assert st.count("errors", kind="rejected", key="1") == 1
    # next cycle: the refused ticket is fetched and written again
    tr = sync(cfg, fake, retry)
    assert tr.ok and "sla-breached-response" in fake.cf(1, "SLA labels")


def daemon_for(cfg: Any, retry: RetryPolicy, **kw: Any) -> Daemon:
    d = Daemon(cfg, pm=get_plugin_manager(load_entrypoints=False), retry=retry,
               rng=random.Random(1), **kw)
    d.store = Store(cfg.state)
    return d


def cycle(d: Daemon, fake: FakeRedmine, name: str = "fake") -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        d._cycle(name)


def test_a_long_retry_after_ends_the_cycle_and_reschedules_the_tracker(
        cfg: Any, fake: FakeRedmine, retry: RetryPolicy, waits: Waits) -> None:
    fake.fail("GET", "/issues.json", Fault("fail", 429, headers={"Retry-After": "600"}))
    d = daemon_for(cfg, retry)
    before = datetime.now(UTC)
    cycle(d, fake)
    assert waits == []  # not waited inside the cycle: other trackers would wait too
    assert fake.calls[("GET", "/issues.json")] == 1
    assert d.schedule["fake"].next_run >= before + timedelta(seconds=600)
    ok, doc = d.health.snapshot()
    assert not ok and doc["trackers"]["fake"]["last_error"]["kind"] == "unavailable"


def test_backoff_between_failed_cycles_grows_but_never_past_the_poll_interval(
        cfg: Any, fake: FakeRedmine, waits: Waits) -> None:
    one_try = RetryPolicy(attempts=1, wait=waits)
    d = daemon_for(cfg.model_copy(update={"poll_interval": timedelta(seconds=60)}), one_try)
    d.config._policy = cfg._policy  # model_copy keeps private attrs; be explicit
    delays = []
    for _ in range(6):
        fake.fail("GET", "/issues.json", Fault("fail", 503))
        t = datetime.now(UTC)
        cycle(d, fake)
        delays.append((d.schedule["fake"].next_run - t).total_seconds())
    # 5, 10, 20, 40, 60, 60 s, each within +-20 % jitter, capped by the 60 s poll interval
    for got, base in zip(delays, (5, 10, 20, 40, 60, 60), strict=True):
        assert base * 0.8 - 0.1 <= got <= min(base * 1.2, 72) + 0.1, delays
    cycle(d, fake)  # the tracker is back
    assert d.schedule["fake"].failures == 0 and d.health.snapshot()[0]


def test_credentials_refused_stop_polling_that_tracker(cfg: Any, fake: FakeRedmine,
                                                       retry: RetryPolicy, waits: Waits,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake.key = "another key entirely"  # the server no longer accepts ours: 401
    reloads = []

    def reload() -> Any:
        reloads.append(1)
        return load_config(cfg.source, pm=get_plugin_manager(load_entrypoints=False))

    d = daemon_for(cfg, retry, auth_retry=3600, reload=reload)
    before = datetime.now(UTC)
    cycle(d, fake)
    assert waits == [] and sum(fake.calls.values()) == 1  # one request, not retried
    sched = d.schedule["fake"]
    assert sched.suspended and sched.next_run >= before + timedelta(seconds=3600)
    ok, doc = d.health.snapshot()
    assert not ok
    assert doc["trackers"]["fake"]["suspended_reason"] == "auth"
    assert doc["trackers"]["fake"]["last_error"]["kind"] == "auth"
    from prometheus_client import generate_latest
    text = generate_latest(d.metrics.registry).decode()
    assert 'tracker_bridge_tracker_suspended{tracker="fake"} 1.0' in text
    assert 'tracker_bridge_errors_total{kind="auth",tracker="fake"} 1.0' in text
    # an admin fixes the key and reloads (SIGHUP): the tracker runs at once, and recovers
    fake.key = KEY
    d._reload = True
    d._do_reload()
    assert reloads and not d.schedule["fake"].suspended
    assert d.schedule["fake"].next_run <= datetime.now(UTC)
    cycle(d, fake)
    # (the daemon runs at the real clock: months after T0 both targets are breached)
    assert d.health.snapshot()[0]
    assert sorted(markers(fake, 1)) == ["breach:resolution", "breach:response"]


def test_a_key_never_reaches_the_log_even_when_a_request_fails(
        cfg: Any, fake: FakeRedmine, retry: RetryPolicy, waits: Waits) -> None:
    class Leaky:
        """A plugin whose error message carries the key, a URL with it, and a header."""

        @hookimpl
        def tracker_bridge_ticket_fetched(self, tracker: Any, ticket: Any) -> Any:
            raise RuntimeError(f"GET {URL}/issues.json?key={KEY}&limit=1 failed; headers "
                               f"{{'X-Redmine-API-Key': '{KEY}'}}; raw {KEY}")

    out = io.StringIO()
    setup_logging("json", "DEBUG", [KEY], stream=out)
    fake.fail("GET", "/issues.json", Fault("fail", exc=requests.ConnectionError(
        f"HTTPConnectionPool: Max retries exceeded with url: /issues.json?key={KEY}")))
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Leaky())
    d = Daemon(cfg, pm=pm, retry=retry)
    d.store = Store(cfg.state)
    cycle(d, fake)
    text = out.getvalue()
    assert "unexpected error" in text and "RuntimeError" in text  # the failure is logged...
    assert KEY not in text and KEY[:20] not in text  # ...without the key
    assert "***" in text
    lines = [json.loads(x) for x in text.splitlines()]
    assert all({"ts", "level", "logger", "msg"} <= set(x) for x in lines)
    with Store(cfg.state) as st:  # nor in the store's error records
        rows = st.db.execute("SELECT message FROM errors").fetchall()
    assert rows and all(KEY not in r[0] for r in rows)
