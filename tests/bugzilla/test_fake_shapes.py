"""The fake Bugzilla answers in the shapes of Bugzilla 5.0's documented examples (the payload
files), so that tests passing against it say something about a real server."""

from __future__ import annotations

import requests

from .conftest import payload
from .fake import KEY, FakeBugzilla


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
