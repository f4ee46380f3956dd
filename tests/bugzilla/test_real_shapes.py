"""The recorded answers of a real Bugzilla 5.2 (payloads/real_5.2.json, payloads/errors.json),
which the fake is held to in test_fake_shapes.py, asked again of the live test server: the
recording stays what the server answers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tracker_bridge.plugins._http import parse_utc, survive_dropped_connections

from .conftest import payload
from .test_fake_shapes import ERROR_CASES


def _changes(answer: dict[str, Any]) -> dict[str, Any]:
    return answer["bugs"][0]["changes"]  # type: ignore[no-any-return]


def test_writes_read_back_and_history(real_bugzilla: Any, real_product: str) -> None:
    bz, real = real_bugzilla, payload("real_5.2.json")
    fields = ("cf_sla_response_due", "cf_sla_resolution_due", "keywords")
    bid = bz.create_bug(real_product, "recorded")
    answer = bz.update(bid, who="bot", **real["set"]["request"])
    assert _changes(answer) == _changes(real["set"]["answer"])
    # the recording's two changes are a second apart; within one second Bugzilla would join
    # them into one history entry: wait for the database clock to move on (a condition)
    stamped = parse_utc(answer["bugs"][0]["last_change_time"])
    for _ in range(600):
        if parse_utc(bz.call("GET", "time")["db_time"]) > stamped:
            break
        time.sleep(0.05)
    bug = bz.bug(bid)
    assert {f: bug[f] for f in fields} == {f: real["after_set"]["bugs"][0][f] for f in fields}
    assert _changes(bz.update(bid, who="bot", **real["clear"]["request"])) == \
        _changes(real["clear"]["answer"])
    bug = bz.bug(bid)
    assert {f: bug[f] for f in fields} == {f: real["after_clear"]["bugs"][0][f] for f in fields}
    assert _changes(bz.update(bid, who="bot", **real["blank_comment"]["request"])) == {}
    assert bz.bug(bid)["last_change_time"] == bug["last_change_time"]
    assert len(bz.comments(bid)) == 1
    history = bz.call("GET", f"bug/{bid}/history")["bugs"][0]["history"]

    def changes(h: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
        return [sorted(e["changes"], key=lambda c: c["field_name"]) for e in h]

    assert changes(history) == changes(real["history"]["bugs"][0]["history"])


@pytest.mark.parametrize(("name", "method", "path", "params", "body"), ERROR_CASES)
def test_errors(real_bugzilla: Any, real_product: str, name: str, method: str, path: str,
                params: dict[str, Any], body: Any) -> None:
    bid = real_bugzilla.create_bug(real_product, "error probe")
    path = path.replace("bug/1", f"bug/{bid}") if path != "bug/987654321" else path
    if body and "ids" in body:
        body = {**body, "ids": [bid]}
    query = {k: v for k, v in {"api_key": real_bugzilla.bot_key, **params}.items()
             if v is not None}
    with survive_dropped_connections(requests.Session()) as s:
        r = s.request(method, f"{real_bugzilla.url}/rest/{path}", params=query, json=body,
                      timeout=60)
    want = payload("errors.json")[name]
    assert (r.status_code, r.json()) == (want["status"], want["body"])
