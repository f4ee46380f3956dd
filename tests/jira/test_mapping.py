"""Mapping a JIRA issue (Atlassian's example payloads, tests/jira/payloads) to a ticket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from tracker_bridge.backend import posted_note_keys
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.plugins.jira import JiraBackend
from tracker_bridge.plugins.jira.adf import adf_to_text, text_to_adf
from tracker_bridge.plugins.jira.mapping import (
    LABELS_CUSTOM_TYPE,
    FieldDef,
    history,
    value_text,
)

from .conftest import calls, payload, query
from .fakejira import BASE

API = f"{BASE}/rest/api/3"


@pytest.fixture
def sd7(rsps: responses.RequestsMock) -> responses.RequestsMock:
    """SD-7 as Atlassian's examples show it: issue, two changelog pages, four comments."""
    rsps.get(f"{API}/myself", json=payload("myself_new_york.json"))
    rsps.get(f"{API}/field", json=payload("field.json"))
    rsps.get(f"{API}/issue/SD-7", json=payload("issue_SD-7.json"))
    rsps.get(f"{API}/issue/SD-7/changelog", json=payload("changelog_SD-7_page0.json"),
             match=[matchers.query_param_matcher({"startAt": "0"}, strict_match=False)])
    rsps.get(f"{API}/issue/SD-7/changelog", json=payload("changelog_SD-7_page1.json"),
             match=[matchers.query_param_matcher({"startAt": "2"}, strict_match=False)])
    rsps.get(f"{API}/issue/SD-7/comment", json=payload("comments_SD-7.json"))
    return rsps


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_issue_maps_to_a_normalized_ticket(sd7: responses.RequestsMock,
                                           make_backend: Callable[..., JiraBackend]) -> None:
    b = make_backend(fields={"component": "components"})
    t = b.fetch_ticket("SD-7")
    assert t.tracker == "acme-jira" and t.key == "SD-7"
    assert t.url == f"{BASE}/browse/SD-7"
    assert t.created == datetime(2026, 1, 18, 5, 2, 11, tzinfo=UTC)
    assert t.updated == datetime(2026, 1, 18, 6, 27, 50, 429000, tzinfo=UTC)
    assert t.status == "Waiting for customer"
    assert t.reporter == "Mia Krystof"
    assert t.subject == "Completed orders still displaying in pending"
    assert t.description == "Main order flow broken"  # ADF -> text
    assert dict(t.fields) == {
        "priority": "High",
        "impact": "Software wide",          # single select: its value
        "plan": "essentials",               # Support plan empty -> the tracker's plan
        "component": "Orders, Billing",     # a list: names joined
        "response_due": "2026-01-18T08:00:00+00:00",
        "resolution_due": None,
    }
    # the issue's labels, every one of them (the bridge's and a person's)
    assert t.labels == ("customer-vip", "sla-high", "sla-at-risk-response")


def test_history_is_changelog_and_comments_in_time_order(
        sd7: responses.RequestsMock, make_backend: Callable[..., JiraBackend]) -> None:
    t = make_backend().fetch_ticket("SD-7")
    got = [(e.at.astimezone(UTC).strftime("%H:%M:%S"), e.kind, e.field, e.from_, e.to,
            e.by, e.public) + ((e.added, e.removed) if e.kind == "label" else ())
           for e in t.history]
    assert got == [
        ("05:05:00", "comment", None, None, None, "Mia Krystof", True),
        ("05:10:00", "status", None, "Open", "In Progress", "Mia Krystof", True),
        ("05:20:00", "field", "priority", "Medium", "High", "Mia Krystof", True),
        # labels "customer-vip" -> "customer-vip sla-high": what came, in JIRA's order
        ("05:20:00", "label", None, None, None, "Mia Krystof", True, ("sla-high",), ()),
        ("05:20:00", "field", "impact", None, "Software wide", "Mia Krystof", True),
        # the OpenAPI example's comment has visibility (role Administrators): not public
        ("05:40:00", "comment", None, None, None, "Mia Krystof", False),
        # a Jira Service Management internal note: not public either
        ("05:50:00", "comment", None, None, None, "Bob Agent", False),
        ("06:00:00", "comment", None, None, None, "SLA Bot", True),
        ("06:27:50", "status", None, "In Progress", "Waiting for customer", "Mia Krystof",
         True),
    ]
    # the assignee change is not a mapped field: not in the history
    bot = t.history[7]
    assert bot.text == ("Response target at risk.\nDue 08:00 UTC.\n\n"
                        "[tracker-bridge:note=at-risk:response]")
    assert posted_note_keys(t) == {"at-risk:response"}
    assert Ticket.from_dict(t.to_dict()).to_dict() == t.to_dict()


def test_reads_changelog_pages_and_asks_only_for_needed_fields(
        sd7: responses.RequestsMock, make_backend: Callable[..., JiraBackend]) -> None:
    make_backend().fetch_ticket("SD-7")
    pages = [query(r)["startAt"] for r in calls(sd7, "GET", "/rest/api/3/issue/SD-7/changelog")]
    assert pages == ["0", "2"]  # the first page said isLast false; startAt moved by 2
    (get,) = calls(sd7, "GET", "/rest/api/3/issue/SD-7")
    asked = query(get)["fields"].split(",")
    assert "*all" not in asked
    assert {"summary", "status", "created", "updated", "reporter", "labels", "priority",
            "customfield_10050", "customfield_10051", "customfield_10052",
            "customfield_10053"} <= set(asked)
    (comments,) = calls(sd7, "GET", "/rest/api/3/issue/SD-7/comment")
    assert query(comments)["expand"] == "properties"  # JSM internal notes are properties


def test_datetime_picker_deadline_reads_in_the_write_zone(
        sd7: responses.RequestsMock, make_backend: Callable[..., JiraBackend]) -> None:
    b = make_backend(write={"resolution_due": "cf:SLA due (picker)",
                            "timezone": "Europe/London"})
    t = b.fetch_ticket("SD-7")
    # 2026-01-19T04:30:00.000+1100 is 17:30 UTC on the 18th (London = UTC in January)
    assert t.fields["resolution_due"] == "2026-01-18T17:30:00+00:00"


def test_plan_field_wins_over_the_project_plan(
        sd7: responses.RequestsMock, make_backend: Callable[..., JiraBackend]) -> None:
    issue = payload("issue_SD-7.json")
    issue["fields"]["customfield_10053"] = {"value": "premium", "id": "10030"}
    sd7.replace(responses.GET, f"{API}/issue/SD-7", json=issue)
    assert make_backend().fetch_ticket("SD-7").fields["plan"] == "premium"


def test_an_unknown_mapped_field_reads_as_empty(
        sd7: responses.RequestsMock, make_backend: Callable[..., JiraBackend]) -> None:
    t = make_backend(fields={"tier": "cf:No such field"}).fetch_ticket("SD-7")
    assert t.fields["tier"] is None  # check() says why; polling goes on


def test_adf_round_trip_keeps_paragraphs_and_lines() -> None:
    text = "Resolution target missed.\nDue 17:30.\n\n[tracker-bridge:note=kb]"
    doc = text_to_adf(text)
    assert doc["type"] == "doc" and doc["version"] == 1
    assert [n["type"] for n in doc["content"]] == ["paragraph", "paragraph"]
    assert adf_to_text(doc) == text


def test_adf_lists_mentions_and_code() -> None:
    doc: dict[str, Any] = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "mention", "attrs": {"id": "x", "text": "@Bob"}},
            {"type": "text", "text": " please look"}]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "one"}]}]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "two"}]}]}]},
        {"type": "codeBlock", "content": [{"type": "text", "text": "ERR 42"}]}]}
    assert adf_to_text(doc) == "@Bob please look\n\n- one\n- two\n\nERR 42"


@pytest.mark.parametrize(("value", "text"), [
    (None, None), ("", None), ([], None), ("Sev 1", "Sev 1"), (3.0, "3"), (2.5, "2.5"),
    ({"value": "Software wide", "id": "10021"}, "Software wide"),
    ({"name": "High", "id": "2"}, "High"),
    ({"accountId": "a", "displayName": "Bob Agent"}, "Bob Agent"),
    ([{"name": "Orders"}, {"name": "Billing"}], "Orders, Billing"),
    (["a", "b"], "a, b"),
])
def test_value_text(value: Any, text: str | None) -> None:
    assert value_text(value) == text


def test_timestamps_keep_their_own_offsets() -> None:
    from tracker_bridge.plugins.jira.mapping import parse_jira_time

    a = parse_jira_time("2026-01-18T17:27:50.429+1100")
    b = parse_jira_time("2026-01-18T06:27:50.429+0000")
    assert a == b
    assert a.utcoffset() == timedelta(hours=11)
    assert b.utcoffset() == timedelta(0)


def test_changelog_paging_ends_on_total(rsps: responses.RequestsMock,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    """Prism answers every page with the example (``isLast: false``, ``total: 5``): paging
    must still end, at ``total``, instead of asking forever."""
    rsps.get(f"{API}/myself", json=payload("myself_new_york.json"))
    rsps.get(f"{API}/field", json=payload("field.json"))
    rsps.get(f"{API}/issue/SD-7", json=payload("issue_SD-7.json"))
    stuck = dict(payload("changelog_SD-7_page0.json"), total=5)
    rsps.get(f"{API}/issue/SD-7/changelog", json=stuck)
    rsps.get(f"{API}/issue/SD-7/comment", json={"comments": [], "total": 0})
    make_backend().fetch_ticket("SD-7")
    pages = [query(r)["startAt"] for r in calls(rsps, "GET", "/rest/api/3/issue/SD-7/changelog")]
    assert pages == ["0", "2", "4"]


def test_a_lone_surrogate_in_a_comment_does_not_hide_its_marker() -> None:
    from tracker_bridge.plugins.jira.mapping import comment_text, posted_keys

    wiki = {"body": "caf\ud800\n\n\\[tracker-bridge:note=kb\\]"}  # Data Center, escaped
    assert comment_text(wiki).endswith("[tracker-bridge:note=kb]")
    assert posted_keys([wiki, {"body": text_to_adf("x\ud800\n\n[tracker-bridge:note=a:b]")}]) \
        == {"kb", "a:b"}


# -- the changelog, item by item (pure: mapping.history) ----------------------------------------

_IMPACT = FieldDef(id="customfield_10052", name="Impact", custom=True, type="option",
                   items=None, custom_type="com.atlassian.jira.plugin.system.customfieldtypes:select")
_SLA_TAGS = FieldDef(id="customfield_10057", name="SLA tags", custom=True, type="array",
                     items="string", custom_type=LABELS_CUSTOM_TYPE)


def _one_entry(*items: dict[str, Any]) -> dict[str, Any]:
    return {"key": "SD-1", "_comments": [], "_histories": [
        {"id": "1", "created": "2026-03-02T10:00:00.000+0000",
         "author": {"displayName": "Nurse Ratched"}, "items": list(items)}]}


def test_a_labels_item_is_one_label_event_with_what_went_and_came() -> None:
    item = {"field": "labels", "fieldtype": "jira", "fieldId": "labels", "from": None,
            "fromString": "sla-high customer-vip", "to": None,
            "toString": "customer-vip escalation-requested zz-later"}
    (e,) = history(_one_entry(item), {})
    assert (e.kind, e.by, e.added, e.removed) == (
        "label", "Nurse Ratched", ("escalation-requested", "zz-later"), ("sla-high",))
    assert e.at == _at("2026-03-02T10:00:00+00:00")
    assert (e.from_, e.to, e.field) == (None, None, None)
    assert e.to_dict() == {"at": "2026-03-02T10:00:00+00:00", "kind": "label",
                           "by": "Nurse Ratched",
                           "added": ["escalation-requested", "zz-later"],
                           "removed": ["sla-high"]}
    # the first labels of an issue (fromString null on some versions, "" on others)
    for empty in (None, ""):
        (first,) = history(_one_entry({**item, "fromString": empty}), {})
        assert (first.added, first.removed) == (
            ("customer-vip", "escalation-requested", "zz-later"), ())


def test_a_labels_item_that_changes_nothing_is_no_event() -> None:
    item = {"field": "labels", "fieldtype": "jira", "fieldId": "labels",
            "fromString": "a b", "toString": "b a"}  # reordered only
    assert history(_one_entry(item), {}) == ()


def test_label_events_follow_the_configured_labels_field() -> None:
    system = {"field": "labels", "fieldtype": "jira", "fieldId": "labels",
              "fromString": "", "toString": "team-label"}
    custom = {"field": "SLA tags", "fieldtype": "custom", "fieldId": "customfield_10057",
              "fromString": "", "toString": "sla-high"}
    # write.labels: "cf:SLA tags": the ticket's labels, and so its label events, are that
    # field's; a change of JIRA's own Labels field is not about them
    events = history(_one_entry(system, custom), {}, _SLA_TAGS)
    assert [(e.kind, e.added) for e in events] == [("label", ("sla-high",))]
    # Data Center items without fieldId name a custom field by its display name
    no_id = {k: v for k, v in custom.items() if k != "fieldId"}
    assert [e.added for e in history(_one_entry(no_id), {}, _SLA_TAGS)] == [("sla-high",)]
    assert [e.added for e in history(_one_entry(system), {})] == [("team-label",)]


def test_data_center_items_without_field_id_match_mapped_fields_by_name() -> None:
    """Items of older Data Center versions carry no ``fieldId``: a custom field is named by
    its display name (``field: "Impact"``), a system field by its id (``field: "priority"``)."""
    impact = {"field": "Impact", "fieldtype": "custom", "from": "10020",
              "fromString": "Single user", "to": "10021", "toString": "Software wide"}
    priority = {"field": "priority", "fieldtype": "jira", "from": "3", "fromString": "Medium",
                "to": "2", "toString": "High"}
    unmapped = {"field": "Urgency", "fieldtype": "custom", "fromString": "Low",
                "toString": "High"}
    pri = FieldDef(id="priority", name="Priority", custom=False, type="priority", items=None,
                   custom_type=None)
    events = history(_one_entry(impact, priority, unmapped),
                     {"impact": _IMPACT, "priority": pri})
    assert [(e.kind, e.field, e.from_, e.to) for e in events] == [
        ("field", "impact", "Single user", "Software wide"),
        ("field", "priority", "Medium", "High")]
    # with a fieldId, the id decides and not the name (two fields may share a name)
    other = {**impact, "fieldId": "customfield_10099"}
    assert history(_one_entry(other), {"impact": _IMPACT}) == ()
