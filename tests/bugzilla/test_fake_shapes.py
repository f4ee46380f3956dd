"""The fake Bugzilla answers in the shapes of Bugzilla 5.0's documented examples (the payload
files), so that tests passing against it say something about a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from .conftest import payload
from .fake import KEY, FakeBugzilla, _CustomField


def _get(fake: FakeBugzilla, path: str, **params: object) -> dict:  # type: ignore[type-arg]
    r = requests.get(f"{fake.base}/rest/{path}", params={"api_key": KEY, **params}, timeout=5)
    return r.json()  # type: ignore[no-any-return]


def test_bug_history_comment_time_field_and_update_shapes(fake: FakeBugzilla) -> None:
    bid = fake.create_bug("x")
    fake.update(bid, priority="P1", keywords={"add": ["regression"]})
    fake.comment(bid, "hello")

    doc_bug = payload("bug_get.json")["bugs"][0]
    bug = _get(fake, f"bug/{bid}")
    assert set(bug) == {"bugs", "faults"}
    # every documented default field is there (the doc's example has three custom fields
    # of its own; ours has others)
    assert {k for k in doc_bug if not k.startswith("cf_") and not k.endswith("_detail")} <= \
        set(bug["bugs"][0])

    hist = _get(fake, f"bug/{bid}/history")
    doc_hist = payload("bug_history.json")["bugs"][0]
    assert set(hist["bugs"][0]) == set(doc_hist)
    assert set(hist["bugs"][0]["history"][0]) == set(doc_hist["history"][0])
    assert set(hist["bugs"][0]["history"][0]["changes"][0]) == \
        set(doc_hist["history"][0]["changes"][0])

    comments = _get(fake, f"bug/{bid}/comment")
    doc_c = payload("bug_comments.json")
    assert set(comments) == set(doc_c)
    assert set(comments["bugs"][str(bid)]["comments"][0]) == \
        set(doc_c["bugs"]["36"]["comments"][0])

    assert set(_get(fake, "time")) == set(payload("time.json"))
    doc_f = payload("fields.json")["fields"][0]
    f = _get(fake, "field/bug")["fields"]
    assert all(set(x) == set(doc_f) for x in f)

    r = requests.put(f"{fake.base}/rest/bug/{bid}", params={"api_key": KEY},
                     json={"ids": [bid], "status": "IN_PROGRESS",
                           "keywords": {"add": ["customer-vip"]}}, timeout=5).json()
    doc_u = payload("bug_update.json")["bugs"][0]
    assert set(r["bugs"][0]) == set(doc_u)
    assert r["bugs"][0]["changes"] == {
        "keywords": {"added": "customer-vip", "removed": ""},
        "status": {"added": "IN_PROGRESS", "removed": "CONFIRMED"}}


def test_error_shape(fake: FakeBugzilla) -> None:
    r = requests.get(f"{fake.base}/rest/bug/99999", params={"api_key": KEY}, timeout=5)
    doc = payload("errors.json")["bug_not_found"]
    assert r.status_code == doc["status"]
    assert set(r.json()) == set(doc["body"]) and r.json()["code"] == 101


# -- the fake against what a real Bugzilla 5.2 answered (payloads/real_5.2.json, errors.json) --


@pytest.fixture
def real_like() -> Iterator[FakeBugzilla]:
    """The fake with the real test server's custom fields: response due a Date/Time field,
    resolution due a Free Text one (the default fake has them the other way round)."""
    bz = FakeBugzilla()
    bz.custom["cf_sla_response_due"] = _CustomField("cf_sla_response_due", 5, (),
                                                    "SLA response due")
    bz.custom["cf_sla_resolution_due"] = _CustomField("cf_sla_resolution_due", 1, (),
                                                      "SLA resolution due")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        bz.install(rsps)
        yield bz


def _put(fake: FakeBugzilla, bid: int, body: dict[str, Any]) -> dict[str, Any]:
    r = requests.put(f"{fake.base}/rest/bug/{bid}", params={"api_key": KEY},
                     json={"ids": [bid], **body}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _changes(answer: dict[str, Any]) -> dict[str, Any]:
    return answer["bugs"][0]["changes"]  # type: ignore[no-any-return]


def test_writes_read_back_and_history_as_the_real_server_answered(
        real_like: FakeBugzilla) -> None:
    real = payload("real_5.2.json")
    fields = ("cf_sla_response_due", "cf_sla_resolution_due", "keywords")
    bid = real_like.create_bug("recorded")

    set_answer = _put(real_like, bid, real["set"]["request"])
    assert _changes(set_answer) == _changes(real["set"]["answer"])
    bug = _get(real_like, f"bug/{bid}")["bugs"][0]
    assert {f: bug[f] for f in fields} == {f: real["after_set"]["bugs"][0][f] for f in fields}

    clear_answer = _put(real_like, bid, real["clear"]["request"])
    assert _changes(clear_answer) == _changes(real["clear"]["answer"])
    bug = _get(real_like, f"bug/{bid}")["bugs"][0]
    # a cleared Date/Time field is null, a cleared Free Text field ""
    assert {f: bug[f] for f in fields} == {f: real["after_clear"]["bugs"][0][f] for f in fields}
    assert bug["cf_sla_response_due"] is None and bug["cf_sla_resolution_due"] == ""

    before = _get(real_like, f"bug/{bid}", include_fields="last_change_time")
    blank = _put(real_like, bid, real["blank_comment"]["request"])
    assert _changes(blank) == _changes(real["blank_comment"]["answer"]) == {}
    bug_time = _get(real_like, f"bug/{bid}", include_fields="last_change_time")
    assert bug_time == before  # nothing changed, no comment added
    assert len(real_like.comments[bid]) == 1

    def changes(history: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
        return [sorted(e["changes"], key=lambda c: c["field_name"]) for e in history]

    assert changes(_get(real_like, f"bug/{bid}/history")["bugs"][0]["history"]) == \
        changes(real["history"]["bugs"][0]["history"])


#: (errors.json entry, method, path, query, body): the requests that provoked them on the real
#: server (test_real_shapes.py asks it again; bug 1 stands for a fresh bug there)
ERROR_CASES = [
    ("bug_not_found", "GET", "bug/987654321", {}, None),
    ("api_key_not_valid", "GET", "bug/1", {"api_key": "wrong"}, None),
    ("login_required", "PUT", "bug/1", {"api_key": None}, {"ids": [1]}),
    ("unknown_keyword", "PUT", "bug/1", {}, {"keywords": {"add": ["nope-kw"]}}),
    ("unknown_priority", "PUT", "bug/1", {}, {"priority": "Nope"}),
    ("unknown_status", "PUT", "bug/1", {}, {"status": "NOPE"}),
    ("unknown_select_value", "PUT", "bug/1", {}, {"cf_impact": "Nope"}),
    ("text_too_long", "PUT", "bug/1", {}, {"cf_sla_resolution_due": "x" * 300}),
    ("illegal_date", "PUT", "bug/1", {},
     {"cf_sla_response_due": "2026-03-02T17:30:00+00:00"}),
    ("offset_without_limit", "GET", "bug", {"offset": 5}, None),
    ("no_such_resource", "GET", "nonexist", {}, None),
]


@pytest.mark.parametrize(("name", "method", "path", "params", "body"), ERROR_CASES)
def test_errors_as_the_real_server_answered(real_like: FakeBugzilla, name: str, method: str,
                                            path: str, params: dict[str, Any],
                                            body: Any) -> None:
    real_like.create_bug("one")
    query = {k: v for k, v in {"api_key": KEY, **params}.items() if v is not None}
    r = requests.request(method, f"{real_like.base}/rest/{path}", params=query, json=body,
                         timeout=5)
    want = payload("errors.json")[name]
    assert (r.status_code, r.json()) == (want["status"], want["body"])
