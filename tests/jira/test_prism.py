"""Every request the JIRA backend sends conforms to Atlassian's OpenAPI file, judged by Prism.

Prism 5 (``bash .ci/install-prism.sh``) serves ``contract/jira-cloud-platform-v3.openapi.json.gz``
(unpacked into a temporary folder) in two ways:

- **mock**: it answers from Atlassian's own examples. The backend reads (search, an issue,
  its changelog pages, its comments), writes (deadline fields set and cleared, labels, the
  three comment forms; clearing needs state, see proxy) and runs ``check``; the examples are not a realistic issue (the
  search example's ``updated`` is ``1``, the issue example has no ``created``), so here only
  the requests are judged;
- **proxy**: it stands between the backend and the stateful fake JIRA (tests/jira/fakejira.py
  served over HTTP) and judges both sides: the full cycle (search paged by
  ``nextPageToken``, changelog and comments past one page, labels added and removed, fields
  written and cleared, a public, a role-restricted and a Service Management internal note,
  the incremental fetch that follows, ``check``) with the fake's answers held to Atlassian's
  schemas too.

Prism lists every broken rule of an exchange in its ``sl-violations`` header; a test fails
on any rule a request broke. Answers may break only the rules in :data:`KNOWN`, Atlassian's
own deviations that real JIRA shares (each one is also required to be seen, so that a
change of Prism or of the file that hides it is noticed). Outside CI the tests skip when
Prism is not installed; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tracker_bridge.backend import Diff
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import BackendError
from tracker_bridge.plugins.jira import JiraBackend
from tracker_bridge.plugins.jira.mapping import JSM_COMMENT_PROPERTY, FieldDef

from .conftest import payload
from .fakejira import FakeJira
from .prism import Exchange, Exchanges, Prism, prism_binary, serve_fake, unpack_spec

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Known:
    """A rule an *answer* is allowed to break: Atlassian's file and real JIRA disagree."""

    method: str
    path: str       # regex on the URL path
    location: str   # regex on the dotted location
    why: str

    def covers(self, x: Exchange, v: dict[str, Any]) -> bool:
        where = ".".join(map(str, v.get("location") or ()))
        return (x.method == self.method and re.fullmatch(self.path, x.path) is not None
                and re.fullmatch(self.location, where) is not None)


KNOWN = (
    Known("GET", r"/rest/api/3/issue/[^/]+/changelog",
          r"response\.body\.values\.\d+\.items\.\d+\.(from|to)",
          "ChangeDetails says from/to are strings; Atlassian's own changelog example (and "
          "real JIRA) send null for fields without ids, such as labels"),
    Known("PUT", r"/rest/api/3/issue/[^/]+", r"response",
          "editIssue's 204 is declared with an application/json body; JIRA answers 204 No "
          "Content, with no body and no content type (the proxy mode's fake does the same)"),
)


def _unexplained(exchanges: Exchanges) -> list[str]:
    return [f"{x}: {v.get('message')} (at {'.'.join(map(str, v.get('location') or ()))})"
            for x in exchanges for v in x.side("response")
            if not any(k.covers(x, v) for k in KNOWN)]


def _seen(exchanges: Exchanges, known: Known) -> bool:
    return any(known.covers(x, v) for x in exchanges for v in x.side("response"))


def _assert_conforms(exchanges: Exchanges) -> None:
    assert exchanges, "no request went through Prism"
    broken = exchanges.request_violations()
    assert not broken, "requests that break Atlassian's contract:\n" + "\n".join(broken)
    odd = _unexplained(exchanges)
    assert not odd, "answers that break it beyond the known deviations:\n" + "\n".join(odd)


def _template(path: str) -> str:
    return re.sub(r"/issue/[^/]+", "/issue/{key}", re.sub(r"/project/[^/]+",
                                                          "/project/{key}", path))


# -- Prism ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prism_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    binary = prism_binary()
    if binary is None:
        msg = "Prism is not installed (bash .ci/install-prism.sh installs it from npm)"
        if IN_CI:
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    tmp = tmp_path_factory.mktemp("prism")
    return binary, unpack_spec(tmp), tmp


@pytest.fixture(scope="module")
def mock(prism_setup: tuple[Path, Path, Path]) -> Iterator[Prism]:
    binary, spec, tmp = prism_setup
    p = Prism(binary, spec, tmp / "mock.log").start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def fake_jira() -> FakeJira:
    return FakeJira()


@pytest.fixture(scope="module")
def proxy(prism_setup: tuple[Path, Path, Path], fake_jira: FakeJira) -> Iterator[Prism]:
    binary, spec, tmp = prism_setup
    with serve_fake(fake_jira) as upstream:
        p = Prism(binary, spec, tmp / "proxy.log", mode="proxy", upstream=upstream).start()
        yield p
        p.stop()


def _watched(make_backend: Callable[..., JiraBackend], url: str, exchanges: Exchanges,
             **over: Any) -> JiraBackend:
    b = make_backend(url=url, **over)
    exchanges.watch(b.session)
    return b


# -- mock: Atlassian's examples answer -----------------------------------------------------------

def test_mock_reads_and_check_conform(mock: Prism,
                                      make_backend: Callable[..., JiraBackend]) -> None:
    ex = Exchanges()
    b = _watched(make_backend, mock.url, ex, projects=["EX"])
    cursor = '{"v": 1, "since": "2026-01-18T06:27:50.429+00:00", "seen": {}}'
    # the search example's `updated: 1` is refused after the search was accepted
    with pytest.raises(BackendError, match="not a timestamp"):
        b.fetch_changed(cursor)
    # the issue example has no `created`: refused after issue, changelog and comments
    with pytest.raises(BackendError, match="unexpected shape"):
        b.fetch_ticket("ED-1")
    b.check(["sla-high"])
    _assert_conforms(ex)
    assert all(x.status < 400 for x in ex), [str(x) for x in ex if x.status >= 400]
    sent = {(x.method, _template(x.path)) for x in ex}
    assert {("GET", "/rest/api/3/search/jql"), ("GET", "/rest/api/3/issue/{key}"),
            ("GET", "/rest/api/3/issue/{key}/changelog"),
            ("GET", "/rest/api/3/issue/{key}/comment"), ("GET", "/rest/api/3/myself"),
            ("GET", "/rest/api/3/field"), ("GET", "/rest/api/3/project/{key}"),
            ("GET", "/rest/api/3/status")} <= sent
    # the example's changelog says isLast: false on every page; paging stopped at total
    pages = [x.query for x in ex if x.path.endswith("/changelog")]
    assert 1 < len(pages) <= 5, pages
    # Atlassian's changelog example breaks its own schema (null from/to): seen, and allowed
    assert _seen(ex, KNOWN[0]), "the changelog example no longer has null from/to"


def test_mock_writes_conform(mock: Prism, make_backend: Callable[..., JiraBackend]) -> None:
    ex = Exchanges()
    fields = [FieldDef.from_json(d) for d in payload("field.json")]  # Prism's has no custom
    plain = _watched(make_backend, mock.url, ex, options={"notify_users": False},
                     write={"resolution_due": "cf:SLA due (picker)"})
    restricted = _watched(make_backend, mock.url, ex, options={
        "note_visibility": {"type": "role", "value": "Service Desk Team"},
        "internal_notes": True})
    for b in (plain, restricted):
        b._fields = list(fields)
    # text and Date Time Picker deadlines written, labels added (clearing needs a field that
    # holds a value, which the stateless example has not: the proxy test clears)
    plain.apply(Diff("ED-1", set_fields={"response_due": "2026-03-02T17:30:00+00:00",
                                         "resolution_due": "2026-03-04T17:30:00+00:00"},
                     add_labels=frozenset({"sla-high"})))
    plain.apply(Diff("ED-1", notes=(Note("kb", "For the KB.\n\nSecond paragraph."),)))
    restricted.apply(Diff("ED-1", notes=(Note("breach:response", "Response breached."),)))
    _assert_conforms(ex)
    puts = [x for x in ex if x.method == "PUT"]
    assert len(puts) == 1 and puts[0].status in (200, 204), [str(x) for x in ex]
    assert all("notifyUsers=false" in x.query for x in puts)
    posts = [x for x in ex if x.method == "POST"]
    assert [x.status for x in posts] == [201, 201], [str(x) for x in ex]


def test_mock_refuses_a_broken_request(mock: Prism) -> None:
    """Prism does judge: the checks above can fail."""
    ex = Exchanges()
    s = requests.Session()
    s.headers["Authorization"] = "Bearer x"
    ex.watch(s)
    s.put(f"{mock.url}/rest/api/3/issue/ED-1", json={"update": {"labels": "sla-high"}},
          timeout=60)
    s.get(f"{mock.url}/rest/api/3/issue/ED-1/comment", params={"maxResults": "many"},
          timeout=60)
    s.close()
    assert [x.status for x in ex] == [422, 400]
    broken = ex.request_violations()
    assert any("update.labels must be array" in b for b in broken), broken
    assert any("maxresults must be integer" in b.lower() for b in broken), broken


# -- proxy: the stateful fake answers, Prism judges both sides ------------------------------------

def test_proxy_full_cycle_conforms(proxy: Prism, fake_jira: FakeJira,
                                   make_backend: Callable[..., JiraBackend]) -> None:
    fake = fake_jira
    fake.admin = True  # notifyUsers=false needs project admin
    keys = [fake.create(f"proxy cycle {i}", priority="High",
                        fields={"customfield_10052": {"value": "Software wide", "id": "1"}})
            for i in range(5)]
    busy = keys[0]
    fake.set_labels(busy, ["customer-vip", "sla-low"], author="Nurse Ratched")
    for i in range(101):  # past one changelog page (100)
        fake.set_field(busy, "customfield_10052",
                       {"value": "Single user" if i % 2 else "Software wide", "id": str(i)})
    for i in range(101):  # past one comment page (100)
        fake.comment(busy, f"comment {i}")
    fake.comment(busy, "agents only", visibility={"type": "role", "value": "Administrators"})
    fake.comment(busy, "internal note", internal=True)

    ex = Exchanges()
    b = _watched(make_backend, proxy.url, ex, options={"notify_users": False, "page_size": 2},
                 write={"resolution_due": "cf:SLA due (picker)"})
    got = b.fetch_changed(None)
    assert sorted(t.key for t in got.tickets) == sorted(keys)
    t = next(t for t in got.tickets if t.key == busy)
    labels = [e for e in t.history if e.kind == "label"]
    assert [(e.added, e.removed, e.by) for e in labels] == [
        (("customer-vip", "sla-low"), (), "Nurse Ratched")]
    assert sum(e.kind == "field" and e.field == "impact" for e in t.history) == 101
    comments = [e for e in t.history if e.kind == "comment"]
    assert len(comments) == 103 and [c.public for c in comments[-2:]] == [False, False]

    # write: deadlines (a text field and a Date Time Picker), labels added and removed
    b.apply(Diff(busy, set_fields={"response_due": "2026-03-02T17:30:00+00:00",
                                   "resolution_due": "2026-03-04T17:30:00+00:00"},
                 add_labels=frozenset({"sla-high"}), remove_labels=frozenset({"sla-low"})))
    f = fake.issues[busy]["fields"]
    assert f["labels"] == ["customer-vip", "sla-high"]
    assert f["customfield_10050"] == "2026-03-02T17:30:00+00:00"
    assert f["customfield_10054"] is not None
    # cleared
    b.apply(Diff(busy, set_fields={"response_due": None, "resolution_due": None}))
    assert (f["customfield_10050"], f["customfield_10054"]) == (None, None)
    # the comment forms: public, role-restricted, Service Management internal
    b.apply(Diff(busy, notes=(Note("kb", "For the KB.\n\nSecond paragraph."),)))
    restricted = _watched(make_backend, proxy.url, ex, options={
        "note_visibility": {"type": "role", "value": "Service Desk Team"},
        "internal_notes": True})
    restricted.apply(Diff(busy, notes=(Note("breach:response", "Response breached."),)))
    mine = [c for c in fake.issues[busy]["comments"] if c["author"]["displayName"]
            == fake.bridge_name]
    assert len(mine) == 2
    assert mine[1]["visibility"] == {"type": "role", "value": "Service Desk Team"}
    assert mine[1]["properties"] == [{"key": JSM_COMMENT_PROPERTY,
                                      "value": {"internal": True}}]
    # the incremental fetch after the writes, and the notes read back by their markers
    again = b.fetch_changed(got.cursor)
    assert [t.key for t in again.tickets] == [busy]
    assert [e.added for e in again.tickets[0].history if e.kind == "label"][-1] == \
        ("sla-high",)
    assert b.check(["sla-high"]) == []

    _assert_conforms(ex)
    assert all(x.status < 400 for x in ex), [str(x) for x in ex if x.status >= 400]
    sent = {(x.method, _template(x.path)) for x in ex}
    assert {("GET", "/rest/api/3/search/jql"), ("GET", "/rest/api/3/issue/{key}"),
            ("GET", "/rest/api/3/issue/{key}/changelog"),
            ("GET", "/rest/api/3/issue/{key}/comment"), ("PUT", "/rest/api/3/issue/{key}"),
            ("POST", "/rest/api/3/issue/{key}/comment"), ("GET", "/rest/api/3/field"),
            ("GET", "/rest/api/3/project/{key}"), ("GET", "/rest/api/3/status")} <= sent
    assert sum("nextPageToken=" in x.query for x in ex) >= 2  # 5 issues, 2 a page
    assert any("startAt=100" in x.query for x in ex if x.path.endswith("/changelog"))
    assert any("startAt=100" in x.query for x in ex if x.path.endswith("/comment"))
    assert _seen(ex, KNOWN[0]) and _seen(ex, KNOWN[1])


def test_proxy_reports_a_broken_request(proxy: Prism, fake_jira: FakeJira) -> None:
    """In proxy mode Prism forwards a broken request but names the rule: still caught."""
    key = fake_jira.create("proxy sanity")
    ex = Exchanges()
    s = requests.Session()
    s.auth = ("sync-bot@example.com", "fake-api-token-0123456789")
    ex.watch(s)
    s.get(f"{proxy.url}/rest/api/3/issue/{key}/comment", params={"maxResults": "many"},
          timeout=60)
    s.close()
    broken = ex.request_violations()
    assert any("maxresults must be integer" in b.lower() for b in broken), broken
