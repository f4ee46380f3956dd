"""Mapping Bugzilla's documented answers onto the normalized ticket.

Every payload is an example from Bugzilla 5.0's REST documentation (the file says which, in its
``_source``), extended in the same shape where the example lacks what the mapping reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import responses

from tracker_bridge.backend import posted_note_keys
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.plugins.bugzilla import BugzillaBackend
from tracker_bridge.plugins.bugzilla.mapping import (
    FieldInfo,
    MappingSpec,
    edit_whiteboard,
    map_bug,
    split_merged,
)

from .conftest import payload
from .fake import BASE, KEY

FIELDS = {"priority": "priority", "severity": "severity", "impact": "cf_impact",
          "plan": "cf_support_plan", "component": "component", "version": "version"}


def _info() -> dict[str, FieldInfo]:
    """/rest/field/bug (field.rst 'Fields') by API name, as the backend builds it."""
    api = {"bug_status": "status", "bug_severity": "severity"}
    return {api.get(f["name"], f["name"]): FieldInfo(api.get(f["name"], f["name"]), f["type"],
                                                     tuple(v["name"] for v in f["values"]),
                                                     f["is_custom"])
            for f in payload("fields.json")["fields"]}


def _spec(**kw: object) -> MappingSpec:
    base = dict(tracker="clinic-bz", base_url=BASE, fields=FIELDS,
                deadlines={"response_due": "cf_sla_response_due",
                           "resolution_due": "cf_sla_resolution_due"},
                labels="keywords", write_zone=ZoneInfo("Europe/London"), field_info=_info(),
                project_plans={"Lab": "premium"}, plan="essentials")
    base.update(kw)
    return MappingSpec(**base)  # type: ignore[arg-type]


def _bug36() -> Ticket:
    bug = payload("bug_get.json")["bugs"][1]
    history = payload("bug_history.json")["bugs"][1]["history"]
    comments = payload("bug_comments.json")["bugs"]["36"]["comments"]
    return map_bug(bug, history, comments, _spec())


def test_doc_example_bug_35_maps_with_its_history() -> None:
    """bug.rst 'Get Bug' and 'Bug History' examples, verbatim: bug 35."""
    bug = payload("bug_get.json")["bugs"][0]
    history = payload("bug_history.json")["bugs"][0]["history"]
    t = map_bug(bug, history, [], _spec(labels=None))
    assert (t.key, t.status, t.reporter, t.subject) == ("35", "RESOLVED", "user@bugzilla.org",
                                                        "test bug")
    assert t.created == datetime(2000, 7, 25, 13, 50, 4, tzinfo=UTC)
    assert t.updated == datetime(2014, 9, 23, 19, 12, 17, tzinfo=UTC)
    assert t.url == f"{BASE}/show_bug.cgi?id=35"
    assert t.fields["priority"] == "P1" and t.fields["severity"] == "critical"
    assert t.fields["component"] == "SaltSprinkler"
    # a product with no plan of its own gets the tracker's plan
    assert t.fields["plan"] == "essentials"
    assert [(e.kind, e.field, e.from_, e.to) for e in t.history] == [
        ("field", "priority", "P2", "P1"), ("field", "severity", "blocker", "critical")]
    assert Ticket.from_dict(t.to_dict()).to_dict() == t.to_dict()


def test_fields_labels_description_and_deadlines() -> None:
    """bug.rst 'Get Bug' shape (bug 36) with comment.rst 'Get Comments' shape."""
    t = _bug36()
    assert t.fields["impact"] == "Software wide"
    assert t.fields["priority"] == "P2"
    # "---" is Bugzilla's empty drop-down: the plan falls back to the product's... none
    # configured for Clinic, so the tracker's plan
    assert t.fields["plan"] == "essentials"
    assert t.labels == ("regression", "sla-high")
    assert t.description == "Nobody can open the calendar since 09:55."
    # free text is read as it is; a date/time field (type 5) comes back in UTC and is shown
    # in write.timezone, the form the bridge writes, so that an unchanged one diffs equal
    assert t.fields["response_due"] == "2026-03-02T11:00:00+00:00"
    assert t.fields["resolution_due"] == "2026-03-03T09:30:00+00:00"
    london = _spec(write_zone=ZoneInfo("Europe/London"))
    summer = dict(payload("bug_get.json")["bugs"][1], cf_sla_resolution_due="2026-07-01T09:30:00Z")
    assert map_bug(summer, [], [], london).fields["resolution_due"] == "2026-07-01T10:30:00+01:00"


def test_whiteboard_words_are_the_labels_when_configured() -> None:
    t = map_bug(payload("bug_get.json")["bugs"][1], [], [], _spec(labels="whiteboard"))
    assert t.labels == ("[vip]", "sla-at-risk-resolution")


def test_comments_private_public_and_the_bridges_notes() -> None:
    """comment.rst: count 0 is the description; is_private -> public false."""
    comments = [e for e in _bug36().history if e.kind == "comment"]
    assert [(c.by, c.public) for c in comments] == [
        ("agent@example.org", True), ("agent@example.org", False),
        ("sla-bot@example.org", True)]
    assert posted_note_keys(_bug36()) == {"risk:response"}


def test_history_splits_changes_merged_within_one_second() -> None:
    """bug.rst 'Bug History' shape; Bugzilla joins two changes of one field by one user in
    one second with a space (seen on 5.2: added "CONFIRMED IN_PROGRESS")."""
    t = _bug36()
    status = [(e.at.strftime("%H:%M:%S"), e.from_, e.to) for e in t.history if e.kind == "status"]
    assert status == [("10:20:00", "UNCONFIRMED", "CONFIRMED"),
                      ("10:40:00", "CONFIRMED", "IN_PROGRESS"),
                      ("10:40:00", "IN_PROGRESS", "CONFIRMED"),
                      ("11:30:02", "CONFIRMED", "IN_PROGRESS")]
    # the initial status is the first change's `removed`
    assert status[0][1] == "UNCONFIRMED"
    fields = [(e.field, e.from_, e.to) for e in t.history if e.kind == "field"]
    assert fields == [("impact", "Single user", "Multiple users"),
                      ("priority", "P3", "P1"), ("priority", "P1", "P2"),
                      # values with spaces are split by the field's legal values
                      ("impact", "Multiple users", "Single user"),
                      ("impact", "Single user", "Software wide")]
    # keywords changes are not history (only the current labels are)
    assert all(e.field != "labels" for e in t.history)
    assert [e.at for e in t.history] == sorted(e.at for e in t.history)


@pytest.mark.parametrize(("removed", "added", "legal", "steps"), [
    ("NEW", "CONFIRMED", ("NEW", "CONFIRMED"), [("NEW", "CONFIRMED")]),
    ("NEW CONFIRMED", "CONFIRMED IN_PROGRESS", ("NEW", "CONFIRMED", "IN_PROGRESS"),
     [("NEW", "CONFIRMED"), ("CONFIRMED", "IN_PROGRESS")]),
    ("Single user Multiple users", "Multiple users Software wide",
     ("Single user", "Multiple users", "Software wide"),
     [("Single user", "Multiple users"), ("Multiple users", "Software wide")]),
    # free text (no legal values) cannot be split
    ("call back at 5", "call back at 6", None, [("call back at 5", "call back at 6")]),
    # a value that is no longer legal stays one step, as it is
    ("OLD_STATUS", "CONFIRMED", ("CONFIRMED",), [("OLD_STATUS", "CONFIRMED")]),
    # not a chain: the first value and the last
    ("A B", "C D", ("A", "B", "C", "D"), [("A", "D")]),
    ("", "x", ("x",), [(None, "x")]),
])
def test_split_merged(removed: str, added: str, legal: tuple[str, ...] | None,
                      steps: list[tuple[str | None, str | None]]) -> None:
    assert split_merged(removed, added, legal) == steps


@pytest.mark.parametrize(("text", "add", "remove", "out"), [
    ("", {"sla-high"}, set(), "sla-high"),
    ("[vip]  needs-info", {"sla-high"}, set(), "[vip]  needs-info sla-high"),
    ("[vip] sla-high note", set(), {"sla-high"}, "[vip] note"),
    ("sla-high [vip]", {"sla-low"}, {"sla-high"}, "[vip] sla-low"),
    ("sla-high", set(), {"sla-high"}, ""),
    # only whole words: a person's "x-sla-high" is not the bridge's label
    ("x-sla-high sla-high", set(), {"sla-high"}, "x-sla-high"),
    ("[vip] sla-high", {"sla-high"}, set(), "[vip] sla-high"),
])
def test_edit_whiteboard_changes_only_the_bridges_words(text: str, add: set[str],
                                                         remove: set[str], out: str) -> None:
    assert edit_whiteboard(text, add, remove) == out


def test_fetch_ticket_over_http_reads_the_three_documented_answers(
        make_backend: Callable[..., BugzillaBackend]) -> None:
    """bug.rst 'Get Bug' + 'Bug History', comment.rst 'Get Comments', field.rst 'Fields', as
    static responses: the backend asks the documented URLs with api_key as a parameter."""
    get = payload("bug_get.json")
    get["bugs"] = [get["bugs"][1]]
    hist = payload("bug_history.json")
    hist["bugs"] = [hist["bugs"][1]]
    with responses.RequestsMock() as rsps:
        for path, body in [("bug/36", get), ("bug/36/history", hist),
                           ("bug/36/comment", payload("bug_comments.json")),
                           ("field/bug", payload("fields.json"))]:
            rsps.get(f"{BASE}/rest/{path}", json=body,
                     match=[responses.matchers.query_param_matcher({"api_key": KEY},
                                                                   strict_match=False)])
        t = make_backend(projects=["Clinic"]).fetch_ticket("36")
        include = rsps.calls[0].request.params["include_fields"].split(",")
    assert t.key == "36" and t.status == "IN_PROGRESS"
    assert t.fields["impact"] == "Software wide"
    assert {"keywords", "cf_sla_response_due", "cf_sla_resolution_due", "cf_impact",
            "last_change_time", "creator"} <= set(include)
    # over HTTP, with the spec the backend builds from /rest/field/bug and its config, the
    # ticket is the one the pure mapping gives (that config writes deadlines in UTC)
    bug = payload("bug_get.json")["bugs"][1]
    history = payload("bug_history.json")["bugs"][1]["history"]
    comments = payload("bug_comments.json")["bugs"]["36"]["comments"]
    assert t == map_bug(bug, history, comments, _spec(write_zone=ZoneInfo("UTC")))
