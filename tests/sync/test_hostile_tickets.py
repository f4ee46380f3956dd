"""Customer text is untrusted input to every pattern the bridge runs: a cycle over hostile
tickets finishes, classifies, posts its notes, and records a ticket it cannot read as that
ticket's error while the others go on (test_sync.py: an engine error on one ticket).

The patterns are RE2 (linear time), so none of these can hang; each cycle runs in a thread
joined with a generous ceiling, so a regression fails the test instead of hanging CI. No
timing is asserted.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tracker_bridge.plugins.memory import MemoryTracker
from tracker_bridge.policyfile import load_policy_text
from tracker_bridge.sync import run_once

from .conftest import CREATED, POLICY, at, tracker_entry

# an override whose pattern backtracks catastrophically in a backtracking engine
HOSTILE_POLICY = POLICY.replace(
    'classify: {field: priority, map: {High: high, Low: low}}',
    'classify:\n  field: priority\n  map: {High: high, Low: low}\n  overrides:\n'
    '    - class: high\n      when: {text_matches: "(a+)+$"}\n')
WRITE_KB = {"response_due": "cf:SLA response due", "resolution_due": "cf:SLA resolution due",
            "labels": "cf:SLA labels", "notes": "journal", "timezone": "UTC"}
CEILING_S = 300  # a ceiling for a condition, never a measurement


def bounded(fn: Any, *args: Any, **kw: Any) -> Any:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn(*args, **kw)
        except BaseException as e:  # handed to the test thread
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(CEILING_S)
    assert not t.is_alive(), f"{fn.__name__} did not return within {CEILING_S} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_the_policy_pattern_is_re2() -> None:
    policy = load_policy_text(HOSTILE_POLICY, "hostile.yaml")
    pattern = policy.classify.overrides[0].when.text_matches
    assert type(pattern).__module__.startswith("re2")


@pytest.mark.parametrize("subject, description, expected", [
    # the classic: exponential for a backtracking engine
    ("a" * 40 + "b", "", "low"),
    ("a" * 100_000 + "b", "", "low"),
    # RE2's $ is the end of the text (subject, a newline, description), not a line's end
    ("a" * 50_000, "", "low"),
    ("a" * 50_000, "a" * 50_000, "high"),
], ids=["40a+b", "100k-a+b", "50k-a-then-newline", "50k-a-both"])
def test_a_hostile_subject_is_classified(write_config, pm, subject: str, description: str,
                                         expected: str) -> None:
    path = write_config()
    path.with_name("policy.yaml").write_text(HOSTILE_POLICY)
    from tracker_bridge.config import load_config

    cfg = load_config(path, pm=pm)
    desk = MemoryTracker.named("desk")
    desk.clock = lambda: at(10, 5)
    desk.create(subject, key="1", created=CREATED, fields={"priority": "Low"},
                description=description)
    r = bounded(run_once, cfg, now=at(10, 30), pm=pm)
    assert r.ok, r.errors
    assert f"sla-{expected}" in desk.get("1").labels


def test_a_huge_hostile_description_still_gets_its_kb_note(make_config, pm) -> None:
    cfg = make_config([tracker_entry(write=WRITE_KB)])
    desk = MemoryTracker.named("desk")
    desk.clock = lambda: at(10, 5)
    # quadratic for the old labelled-identifier pattern: 48 KB took 19 s
    description = "Steps to reproduce: " + "MRN a " * 200_000
    desk.create("Order screen slow", key="1", created=CREATED, description=description,
                fields={"priority": "High"})
    r = bounded(run_once, cfg, now=at(10, 10), pm=pm)  # the first sync: the ticket is open
    assert r.ok, r.errors
    desk.update("1", comment="Workaround: clear the cache. Patient MRN 1234567 was on screen.",
                by="agent", at=at(10, 20))
    desk.update("1", status="Resolved", by="agent", at=at(10, 21))
    r = bounded(run_once, cfg, now=at(10, 30), pm=pm)
    assert r.ok, r.errors
    notes = [e.text or "" for e in desk.get("1").history if e.kind == "comment"]
    kb = [n for n in notes if "KB-ready resolution note" in n]
    assert len(kb) == 1
    assert "1234567" not in kb[0] and "clear the cache" in kb[0]


def test_a_lone_surrogate_from_a_tracker_is_read_not_an_error(make_config, pm) -> None:
    # JSON may carry "\ud800"; UTF-8 (and so RE2) cannot: the ticket reads it as U+FFFD
    cfg = make_config([tracker_entry(write=WRITE_KB)])
    desk = MemoryTracker.named("desk")
    desk.clock = lambda: at(10, 5)
    desk.create("Screen \ud800 frozen", key="1", created=CREATED, description="x\udcff",
                fields={"priority": "High", "component": "EMR \ud83d"})
    t = desk.get("1")
    assert t.subject == "Screen \ufffd frozen" and t.fields["component"] == "EMR \ufffd"
    r = bounded(run_once, cfg, now=at(10, 30), pm=pm)
    assert r.ok, r.errors
    assert "sla-high" in desk.get("1").labels
