"""Writing: the exact request bodies, label add/remove (never a replacement), no duplicate notes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from tracker_bridge.backend import Diff, posted_note_keys
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import BackendUnavailable
from tracker_bridge.plugins.jira import JiraBackend

from .conftest import calls, query
from .fakejira import FakeJira

DUE = "2026-03-02T17:30:00+00:00"


def _bodies(rsps: responses.RequestsMock, method: str, path: str) -> list[Any]:
    return [json.loads(r.body) for r in calls(rsps, method, path)]


def test_labels_are_added_and_removed_never_replaced(
        fake: FakeJira, rsps: responses.RequestsMock,
        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("labels", labels=["customer-vip", "sla-high"])
    make_backend().apply(Diff(key, add_labels=frozenset({"sla-at-risk-response"}),
                              remove_labels=frozenset({"sla-high", "sla-paused"})))
    # sla-paused is not on the issue: no remove op for it; labels only under `update`
    assert _bodies(rsps, "PUT", f"/rest/api/3/issue/{key}") == [
        {"update": {"labels": [{"add": "sla-at-risk-response"}, {"remove": "sla-high"}]}}]
    assert fake.issues[key]["fields"]["labels"] == ["customer-vip", "sla-at-risk-response"]


def test_a_label_a_person_adds_meanwhile_survives(
        fake: FakeJira, make_backend: Callable[..., JiraBackend]) -> None:
    """The add/remove ops touch only the named labels: a person's label added between the
    bridge's read and its PUT stays (a replacement of the set would drop it)."""
    key = fake.create("race", labels=["sla-high"])
    b = make_backend()
    real_edit = fake._edit

    def person_first(issue: dict[str, Any], body: Any, q: Any) -> Any:
        fake.set_labels(key, [*issue["fields"]["labels"], "escalation-requested"])
        return real_edit(issue, body, q)

    fake._edit = person_first  # type: ignore[method-assign]
    b.apply(Diff(key, add_labels=frozenset({"sla-paused"}),
                 remove_labels=frozenset({"sla-high"})))
    assert sorted(fake.issues[key]["fields"]["labels"]) == ["escalation-requested",
                                                            "sla-paused"]


def test_fields_and_labels_go_in_one_put(fake: FakeJira, rsps: responses.RequestsMock,
                                         make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("one put")
    make_backend().apply(Diff(key, set_fields={"response_due": DUE, "resolution_due": None},
                              add_labels=frozenset({"sla-high"})))
    # resolution_due is already empty: not sent
    assert _bodies(rsps, "PUT", f"/rest/api/3/issue/{key}") == [
        {"fields": {"customfield_10050": DUE}, "update": {"labels": [{"add": "sla-high"}]}}]
    (get,) = calls(rsps, "GET", f"/rest/api/3/issue/{key}")
    assert query(get)["fields"] == "customfield_10050,customfield_10051,labels"


def test_clearing_a_deadline_sends_null(fake: FakeJira, rsps: responses.RequestsMock,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("clear", fields={"customfield_10051": DUE})
    make_backend().apply(Diff(key, set_fields={"resolution_due": None}))
    assert _bodies(rsps, "PUT", f"/rest/api/3/issue/{key}") == [
        {"fields": {"customfield_10051": None}}]


def test_nothing_differs_nothing_is_put(fake: FakeJira, rsps: responses.RequestsMock,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("same", labels=["sla-high"], fields={"customfield_10050": DUE})
    before = fake.issues[key]["fields"]["updated"]
    make_backend().apply(Diff(key, set_fields={"response_due": DUE},
                              add_labels=frozenset({"sla-high"}),
                              remove_labels=frozenset({"sla-paused"})))
    assert not calls(rsps, "PUT")
    assert fake.issues[key]["fields"]["updated"] == before


def test_date_time_picker_deadline(fake: FakeJira, rsps: responses.RequestsMock,
                                   make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("picker")
    b = make_backend(write={"response_due": "cf:SLA due (picker)"})
    b.apply(Diff(key, set_fields={"response_due": DUE}))
    assert _bodies(rsps, "PUT", f"/rest/api/3/issue/{key}") == [
        {"fields": {"customfield_10054": "2026-03-02T17:30:00.000+0000"}}]
    # JIRA answers in its own zone (+1100 here); the ticket shows the write zone again
    assert b.fetch_ticket(key).fields["response_due"] == DUE
    b.apply(Diff(key, set_fields={"response_due": DUE}))  # the same instant: nothing to do
    assert len(calls(rsps, "PUT")) == 1


def test_a_note_is_an_adf_comment_ending_with_its_marker(
        fake: FakeJira, rsps: responses.RequestsMock,
        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("note")
    make_backend().apply(Diff(key, notes=(Note("breach:resolution",
                                               "Resolution target missed.\nDue 17:30."),)))
    assert _bodies(rsps, "POST", f"/rest/api/3/issue/{key}/comment") == [{"body": {
        "type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Resolution target missed."}, {"type": "hardBreak"},
                {"type": "text", "text": "Due 17:30."}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "[tracker-bridge:note=breach:resolution]"}]}]}}]
    # the comments were read before posting
    kinds = [(c.request.method, c.request.url.split("?")[0].rsplit("/", 1)[-1])
             for c in rsps.calls]
    assert kinds.index(("GET", "comment")) < kinds.index(("POST", "comment"))
    assert not calls(rsps, "PUT")  # a note alone edits no field


def test_an_internal_note_is_a_service_management_internal_comment(
        fake: FakeJira, rsps: responses.RequestsMock,
        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("phi")
    make_backend().apply(Diff(key, notes=(
        Note("phi:subject", "Patient data in the subject.", internal=True),
        Note("breach:response", "Late."))))
    bodies = _bodies(rsps, "POST", f"/rest/api/3/issue/{key}/comment")
    assert [b.get("properties") for b in bodies] == [
        [{"key": "sd.public.comment", "value": {"internal": True}}], None]


def test_no_duplicate_comment_when_the_marker_is_there(
        fake: FakeJira, rsps: responses.RequestsMock,
        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("dup")
    # posted earlier (the state store lost since, or the answer to the POST was lost)
    fake.comment(key, "Resolution target missed.\n\n[tracker-bridge:note=breach:resolution]",
                 author="SLA Bot")
    make_backend().apply(Diff(key, notes=(Note("breach:resolution", "Resolution target "
                                               "missed."), Note("kb", "For the KB."))))
    bodies = _bodies(rsps, "POST", f"/rest/api/3/issue/{key}/comment")
    assert len(bodies) == 1
    assert "[tracker-bridge:note=kb]" in json.dumps(bodies[0])
    assert len(fake.issues[key]["comments"]) == 2


def test_a_lost_answer_does_not_post_twice(fake: FakeJira, rsps: responses.RequestsMock,
                                           make_backend: Callable[..., JiraBackend]) -> None:
    """JIRA stores the comment, the connection drops before the answer: the POST is not
    retried by the backend, and the next apply finds the marker and posts nothing."""
    key = fake.create("lost answer")
    real = fake._add_comment

    def store_then_drop(issue: Any, body: Any) -> Any:
        real(issue, body)
        raise requests.ConnectionError("connection reset by peer")

    fake._add_comment = store_then_drop  # type: ignore[method-assign]
    b = make_backend()
    diff = Diff(key, notes=(Note("breach:response", "Response target missed."),))
    with pytest.raises(BackendUnavailable):
        b.apply(diff)
    assert len(calls(rsps, "POST")) == 1, "the POST was retried inside the backend"
    fake._add_comment = real  # type: ignore[method-assign]
    b.apply(diff)  # what the sync layer does after re-fetching
    assert len(calls(rsps, "POST")) == 1
    assert len(fake.issues[key]["comments"]) == 1
    assert posted_note_keys(b.fetch_ticket(key)) == {"breach:response"}


def test_data_center_note_is_wiki_text(rsps: responses.RequestsMock,
                                       make_backend: Callable[..., JiraBackend]) -> None:
    dc = FakeJira(cloud=False).install(rsps)
    key = dc.create("dc note")
    b = make_backend(options={"email": None, "deployment": "datacenter"})
    b.apply(Diff(key, notes=(Note("kb", "For the KB."),)))
    assert _bodies(rsps, "POST", f"/rest/api/2/issue/{key}/comment") == [
        {"body": "For the KB.\n\n\\[tracker-bridge:note=kb\\]"}]
    assert posted_note_keys(b.fetch_ticket(key)) == {"kb"}


def test_restricted_and_internal_notes(fake: FakeJira, rsps: responses.RequestsMock,
                                       make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("internal")
    b = make_backend(options={"note_visibility": {"type": "role", "value": "Service Desk Team"},
                              "internal_notes": True})
    b.apply(Diff(key, notes=(Note("kb", "For the KB."),)))
    (body,) = _bodies(rsps, "POST", f"/rest/api/3/issue/{key}/comment")
    assert body["visibility"] == {"type": "role", "value": "Service Desk Team"}
    assert body["properties"] == [{"key": "sd.public.comment", "value": {"internal": True}}]
    (note,) = [e for e in b.fetch_ticket(key).history if e.kind == "comment"]
    assert note.public is False


def test_notify_users_false_is_sent_when_asked(fake: FakeJira, rsps: responses.RequestsMock,
                                               make_backend: Callable[..., JiraBackend]) -> None:
    fake.admin = True
    key = fake.create("quiet")
    make_backend(options={"notify_users": False}).apply(
        Diff(key, add_labels=frozenset({"sla-high"})))
    (put,) = calls(rsps, "PUT")
    assert query(put) == {"notifyUsers": "false"}


def test_an_empty_diff_sends_no_request(fake: FakeJira, rsps: responses.RequestsMock,
                                        make_backend: Callable[..., JiraBackend]) -> None:
    key = fake.create("empty")
    b = make_backend()
    b.fetch_ticket(key)
    n = len(rsps.calls)
    b.apply(Diff(key))
    assert len(rsps.calls) == n


def test_labels_custom_field(fake: FakeJira, rsps: responses.RequestsMock,
                             make_backend: Callable[..., JiraBackend]) -> None:
    fake.fields.append({"id": "customfield_10058", "name": "SLA tags", "custom": True,
                        "schema": {"type": "array", "items": "string",
                                   "custom": "com.atlassian.jira.plugin.system."
                                             "customfieldtypes:labels"}})
    fake.editable.add("customfield_10058")
    key = fake.create("cf labels", labels=["sla-high"], fields={"customfield_10058": ["x"]})
    b = make_backend(write={"labels": "cf:SLA tags"})
    b.apply(Diff(key, add_labels=frozenset({"sla-high"})))
    assert _bodies(rsps, "PUT", f"/rest/api/3/issue/{key}") == [
        {"update": {"customfield_10058": [{"add": "sla-high"}]}}]
    t = b.fetch_ticket(key)
    assert t.labels == ("x", "sla-high")
    assert fake.issues[key]["fields"]["labels"] == ["sla-high"]  # the system labels: untouched
