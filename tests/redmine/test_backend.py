"""The Redmine backend against a real Redmine 5: mapping, incremental polling, write-back, check.

Everything here goes over HTTP to the Redmine started by conftest.py; nothing is mocked.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tracker_bridge.backend import Diff, posted_note_keys
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import (
    BackendAuthError,
    BackendUnavailable,
    TicketNotFound,
    TicketWriteRejected,
)
from tracker_bridge.plugins._http import parse_utc

from .conftest import BULK_COUNT, KEY_ENV, RedmineEnv

pytestmark = pytest.mark.redmine


def cf(env: RedmineEnv, name: str, value: Any) -> dict[str, Any]:
    return {"id": env.fields[name], "value": value}


def cf_value(issue: dict[str, Any], name: str) -> Any:
    for f in issue["custom_fields"]:
        if f["name"] == name:
            return f["value"]
    raise AssertionError(f"issue {issue['id']} has no custom field {name!r}")


# -- mapping ----------------------------------------------------------------------------------

def test_issue_with_journals_maps_to_the_normalized_ticket(redmine: RedmineEnv,
                                                           make_backend: Any) -> None:
    s = redmine.server
    proj = redmine.project("map")
    prio = s.ids("issue_priorities")
    status = s.ids("issue_statuses")
    issue = s.create_issue(proj, "Calendar unavailable for all users",
                           description="Nobody can open the calendar since 09:00",
                           priority_id=prio["High"],
                           custom_fields=[cf(redmine, "Impact", "Single user"),
                                          cf(redmine, "Urgency", "Job stopped"),
                                          cf(redmine, "SLA labels", ["customer-vip"]),
                                          cf(redmine, "SLA response due", "2026-03-02 10:30 UTC")])
    iid = issue["id"]
    s.update_issue(iid, status_id=status["In Progress"])
    s.update_issue(iid, priority_id=prio["Urgent"],
                   custom_fields=[cf(redmine, "Impact", "Multiple users")])
    s.update_issue(iid, notes="internal: looks like the sync job", private_notes=True)
    s.update_issue(iid, notes="We are looking into it", status_id=status["Feedback"])

    t = make_backend([proj]).fetch_ticket(str(iid))

    assert t.tracker == "clinic-redmine" and t.key == str(iid)
    assert t.url == f"{redmine.url}/issues/{iid}"
    assert t.subject == "Calendar unavailable for all users"
    assert t.description.startswith("Nobody can open")
    assert t.reporter == "Redmine Admin"
    assert t.status == "Feedback"
    assert t.created == parse_utc(issue["created_on"])
    assert t.updated is not None and t.updated >= t.created
    assert t.fields["priority"] == "Urgent"
    assert t.fields["impact"] == "Multiple users"
    assert t.fields["urgency"] == "Job stopped"
    assert t.fields["tier"] is None and t.fields["component"] is None
    assert t.fields["plan"] == "essentials"  # plan field empty: the tracker's `plan:`
    assert t.fields["response_due"] == "2026-03-02 10:30 UTC"  # exact text in Redmine
    assert t.fields["resolution_due"] is None
    assert t.labels == ("customer-vip",)

    kinds = [(e.kind, e.field, e.from_, e.to, e.public) for e in t.history]
    assert kinds == [
        ("status", None, "New", "In Progress", True),  # initial status = first change's old
        ("field", "priority", "High", "Urgent", True),
        ("field", "impact", "Single user", "Multiple users", True),
        ("comment", None, None, None, False),           # a private note is not public
        ("status", None, "In Progress", "Feedback", True),
        ("comment", None, None, None, True),
    ]
    assert t.history[3].text == "internal: looks like the sync job"
    assert t.history[5].text == "We are looking into it"
    assert all(e.by == "Redmine Admin" for e in t.history)
    assert [e.at for e in t.history] == sorted(e.at for e in t.history)
    # the admin reads journals newest first (conftest sets that preference): order is ours
    raw = s.get_issue(iid)["journals"]
    assert [j["id"] for j in raw] == sorted((j["id"] for j in raw), reverse=True)


def test_plan_from_the_field_or_per_project(redmine: RedmineEnv, make_backend: Any) -> None:
    s = redmine.server
    proj = redmine.project("plans")
    with_field = s.create_issue(proj, "plan set", custom_fields=[
        cf(redmine, "Support plan", "premium")])["id"]
    without = s.create_issue(proj, "plan empty")["id"]
    backend = make_backend([proj], project_plans={proj: "professional"})
    assert backend.fetch_ticket(str(with_field)).fields["plan"] == "premium"
    assert backend.fetch_ticket(str(without)).fields["plan"] == "professional"


def test_unknown_issue_is_ticket_not_found(redmine: RedmineEnv, make_backend: Any) -> None:
    backend = make_backend([redmine.bulk_project])
    with pytest.raises(TicketNotFound) as e:
        backend.fetch_ticket("99999999")
    assert e.value.key == "99999999"


# -- incremental polling ----------------------------------------------------------------------

def test_first_fetch_returns_all_150_issues_once(redmine: RedmineEnv, make_backend: Any,
                                                 request_log: Any) -> None:
    backend = make_backend([redmine.bulk_project])
    log = request_log(backend)
    result = backend.fetch_changed(None)
    keys = [t.key for t in result.tickets]
    assert len(keys) == len(set(keys)) == BULK_COUNT
    assert set(keys) == {str(i) for i in redmine.bulk_ids}
    lists = [u for u in log.methods("GET") if "/issues.json" in u]
    # 120 issues share one second: the scan had to walk that second by issue id
    walks = [u for u in lists if "issue_id=%3E%3D" in u]
    assert walks, lists
    # keyset pages sort by time; the walk of a crowded window sorts by id (ids only grow)
    assert all("sort=id&" in u or u.endswith("sort=id") for u in walks)
    assert all("status_id=%2A" in u for u in lists)
    assert all("sort=updated_on%2Cid" in u for u in lists if u not in walks)
    assert result.cursor is not None


def _wait_until_settled(redmine: RedmineEnv, project: str) -> None:
    """The cursor only vouches for changes two seconds old (see plugins/redmine/mapping.make_cursor)."""
    r = redmine.server.session().get(
        f"{redmine.url}/issues.json",
        params={"project_id": project, "status_id": "*", "sort": "updated_on:desc", "limit": 1},
        timeout=30)
    newest = parse_utc(r.json()["issues"][0]["updated_on"])
    age = (datetime.now(UTC) - newest).total_seconds()
    if age < 3:
        time.sleep(3 - age)


def test_second_fetch_returns_only_what_changed(redmine: RedmineEnv, make_backend: Any) -> None:
    _wait_until_settled(redmine, redmine.bulk_project)
    backend = make_backend([redmine.bulk_project])
    first = backend.fetch_changed(None)
    assert len(first.tickets) == BULK_COUNT

    # one in the crowded second, one after it, one from the end
    touched = {redmine.bulk_ids[5], redmine.bulk_ids[125], redmine.bulk_ids[-1]}
    for iid in touched:
        redmine.server.update_issue(iid, notes="customer called back")
    second = backend.fetch_changed(first.cursor)
    assert {int(t.key) for t in second.tickets} == touched
    for t in second.tickets:
        assert t.history[-1].text == "customer called back"

    # nothing changed since: only the just-touched issues may come again (they are younger
    # than the two seconds the cursor needs to vouch for them); never anything else
    third = backend.fetch_changed(second.cursor)
    assert {int(t.key) for t in third.tickets} <= touched
    # the watermark is a server timestamp (the newest updated_on), not our clock
    newest = max(parse_utc(redmine.server.get_issue(i, journals=False)["updated_on"])
                 for i in touched)
    assert f'"since":"{newest.strftime("%Y-%m-%dT%H:%M:%SZ")}"' in (second.cursor or "")


def test_issue_edited_during_paging_is_not_lost(redmine: RedmineEnv, make_backend: Any) -> None:
    """An issue on page 1 edited before page 2 is read moves to the end of the order.

    With offset paging everything behind it shifts left by one and the issue at the page
    boundary is never listed (the control below shows that happens on this Redmine); the
    backend's keyset paging returns all 150 plus the edited issue in its new state.
    """
    project, ids = redmine.bulk_project, redmine.bulk_ids
    victim = ids[0]

    def edit_once(backend_or_session: Any) -> list[str]:
        done: list[str] = []

        def hook(response: Any, *args: Any, **kwargs: Any) -> Any:
            if not done and "/issues.json" in response.request.url:
                response.content  # noqa: B018 - finish reading before Redmine gets a new request
                done.append(response.request.url)
                redmine.server.update_issue(victim, subject=f"edited during paging {time.time()}")
            return response
        backend_or_session.hooks["response"].append(hook)
        return done

    # control: plain offset paging, as python-redmine's filter() does it
    s = redmine.server.session()
    edit_once(s)
    offset_ids: list[int] = []
    for offset in range(0, BULK_COUNT + 100, 100):
        page = s.get(f"{redmine.url}/issues.json", timeout=30, params={
            "project_id": project, "status_id": "*", "sort": "updated_on,id",
            "limit": 100, "offset": offset}).json()["issues"]
        offset_ids += [i["id"] for i in page]
    assert len(set(offset_ids)) == BULK_COUNT - 1, "offset paging should have lost one here"

    backend = make_backend([project])
    done = edit_once(backend.redmine.engine.session)
    result = backend.fetch_changed(None)
    assert done, "the edit hook never ran"
    got = {int(t.key): t for t in result.tickets}
    assert set(got) == set(ids)
    assert got[victim].subject.startswith("edited during paging")


def test_cursor_is_server_time_and_garbage_cursor_rereads(redmine: RedmineEnv,
                                                         make_backend: Any) -> None:
    proj = redmine.project("cursor")
    iid = redmine.server.create_issue(proj, "one")["id"]
    backend = make_backend([proj])
    assert [t.key for t in backend.fetch_changed(None).tickets] == [str(iid)]
    # an unreadable cursor (e.g. from another backend) means: read everything again
    assert [t.key for t in backend.fetch_changed("not json").tickets] == [str(iid)]


# -- write-back -------------------------------------------------------------------------------

def test_apply_labels_keeps_human_values_and_writes_deadlines(redmine: RedmineEnv,
                                                              make_backend: Any) -> None:
    s = redmine.server
    proj = redmine.project("labels")
    iid = s.create_issue(proj, "Report fails for one user", custom_fields=[
        cf(redmine, "SLA labels", ["customer-vip", "sla-test-a"])])["id"]
    backend = make_backend([proj])
    key = str(iid)

    backend.apply(Diff(key, set_fields={"response_due": "2026-03-02T11:00:00+00:00",
                                        "resolution_due": "2026-03-02T17:00:00+00:00"},
                       add_labels=frozenset({"sla-high", "sla-at-risk-response"}),
                       remove_labels=frozenset({"sla-test-a"})))
    issue = s.get_issue(iid)
    assert sorted(cf_value(issue, "SLA labels")) == ["customer-vip", "sla-at-risk-response",
                                                     "sla-high"]
    assert cf_value(issue, "SLA response due") == "2026-03-02T11:00:00+00:00"
    assert cf_value(issue, "SLA resolution due") == "2026-03-02T17:00:00+00:00"

    # a person adds their own value in the same field between two cycles
    s.update_issue(iid, custom_fields=[cf(redmine, "SLA labels", [
        *cf_value(issue, "SLA labels"), "escalation-requested"])])
    t = backend.fetch_ticket(key)
    assert set(t.labels) == {"customer-vip", "escalation-requested", "sla-at-risk-response",
                             "sla-high"}
    backend.apply(Diff(key, set_fields={"response_due": None},
                       add_labels=frozenset({"sla-breached-response"}),
                       remove_labels=frozenset({"sla-at-risk-response"})))
    issue = s.get_issue(iid)
    assert sorted(cf_value(issue, "SLA labels")) == [
        "customer-vip", "escalation-requested", "sla-breached-response", "sla-high"]
    assert cf_value(issue, "SLA response due") in ("", None)
    assert cf_value(issue, "SLA resolution due") == "2026-03-02T17:00:00+00:00"

    # removing every owned label leaves the humans' values alone
    backend.apply(Diff(key, remove_labels=frozenset({"sla-breached-response", "sla-high"})))
    assert sorted(cf_value(s.get_issue(iid), "SLA labels")) == ["customer-vip",
                                                                "escalation-requested"]


def test_notes_carry_the_marker_and_are_never_posted_twice(redmine: RedmineEnv,
                                                          make_backend: Any) -> None:
    s = redmine.server
    proj = redmine.project("notes")
    iid = s.create_issue(proj, "Password reset")["id"]
    key = str(iid)
    note = Note("breach:response", "The response target (30m) was breached.")
    make_backend([proj]).apply(Diff(key, notes=(note,)))
    journals = s.get_issue(iid)["journals"]
    assert len(journals) == 1
    text = journals[0]["notes"]
    assert text.startswith("The response target (30m) was breached.")
    assert text.endswith("[tracker-bridge:note=breach:response]")
    assert journals[0]["private_notes"] is False

    # the same diff again, from a new backend (the state store was deleted): nothing posted
    fresh = make_backend([proj])
    fresh.apply(Diff(key, notes=(note,)))
    assert len(s.get_issue(iid)["journals"]) == 1
    t = fresh.fetch_ticket(key)
    assert posted_note_keys(t) == {"breach:response"}
    assert t.history[-1].public is True


def test_empty_diff_makes_no_request_and_no_op_makes_no_put(redmine: RedmineEnv,
                                                           make_backend: Any,
                                                           request_log: Any) -> None:
    s = redmine.server
    proj = redmine.project("noop")
    iid = s.create_issue(proj, "Nothing to do", custom_fields=[
        cf(redmine, "SLA labels", ["sla-high"]),
        cf(redmine, "SLA response due", "2026-03-02T11:00:00+00:00")])["id"]
    backend = make_backend([proj])
    backend.fetch_ticket(str(iid))  # connect first, so the counts below are apply's alone
    log = request_log(backend)

    backend.apply(Diff(str(iid)))
    assert log.requests == []

    # a stale diff whose values are already there: one read, no PUT, updated_on unchanged
    before = s.get_issue(iid, journals=False)["updated_on"]
    time.sleep(1.1)  # a PUT now would move updated_on to a later second
    backend.apply(Diff(str(iid), set_fields={"response_due": "2026-03-02T11:00:00+00:00"},
                       add_labels=frozenset({"sla-high"})))
    assert log.methods("PUT") == []
    assert len(log.methods("GET")) == 1
    assert s.get_issue(iid, journals=False)["updated_on"] == before


def test_a_noop_put_bumps_updated_on_here(redmine: RedmineEnv) -> None:
    """Why apply compares first: on this Redmine an empty PUT moves updated_on anyway."""
    s = redmine.server
    iid = s.create_issue(redmine.project("bump"), "bump")["id"]
    before = s.get_issue(iid, journals=False)["updated_on"]
    time.sleep(1.1)
    s.update_issue(iid)
    after = s.get_issue(iid)
    assert after["updated_on"] > before and after["journals"] == []


def test_label_outside_possible_values_is_rejected_naming_the_ticket(redmine: RedmineEnv,
                                                                    make_backend: Any) -> None:
    iid = redmine.server.create_issue(redmine.project("reject"), "x")["id"]
    backend = make_backend([redmine.run_id + "-reject"])
    with pytest.raises(TicketWriteRejected) as e:
        backend.apply(Diff(str(iid), add_labels=frozenset({"sla-not-a-possible-value"})))
    assert e.value.key == str(iid)
    assert str(iid) in str(e.value) and "422" in str(e.value)


# -- check ------------------------------------------------------------------------------------

def test_check_reports_missing_fields_statuses_and_label_values(redmine: RedmineEnv,
                                                               make_backend: Any) -> None:
    good = make_backend([redmine.bulk_project])
    policy_labels = ["sla-high", "sla-breached-response"]
    assert good.check(policy_labels) == []

    bad = make_backend(
        [redmine.bulk_project, "no-such-project"],
        fields={"priority": "priority", "impact": "cf:No such field", "tier": "colour"},
        statuses={"waiting": ["Feedback", "Waiting for customer"]})
    problems = bad.check([*policy_labels, "sla-zz-new", "sla-aa-new"])
    text = "\n".join(str(p) for p in problems)
    assert "'no-such-project' does not exist" in text
    assert "no status 'Waiting for customer'" in text
    assert "no issue custom field named 'No such field'" in text
    assert "'colour' is not a Redmine issue attribute" in text
    [labels] = [p for p in problems if p.missing_values]
    assert labels.missing_values == ("sla-aa-new", "sla-zz-new")
    assert labels.where == "write.labels" and "sla-aa-new, sla-zz-new" in labels.message

    single = make_backend([redmine.bulk_project],
                          write={"labels": "cf:TB single label", "notes": "journal"})
    [p] = single.check(["sla-critical"])
    assert "must be a List field with 'Multiple values'" in p.message


# -- errors -----------------------------------------------------------------------------------

def test_wrong_key_is_an_auth_error_without_the_key(redmine: RedmineEnv, make_backend: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv(KEY_ENV, wrong)
    from tracker_bridge.config import parse_config
    from tracker_bridge.plugins.redmine import RedmineBackend

    from .conftest import POLICY, tracker_section

    cfg = parse_config({"policy": str(POLICY),
                        "trackers": [tracker_section(redmine, [redmine.bulk_project])]},
                       load_policy=False)
    backend = RedmineBackend.from_config(cfg.trackers[0])
    # Redmine answers an unknown key on /issues.json as anonymous (200): the backend must
    # not take that for success
    with pytest.raises(BackendAuthError) as e:
        backend.fetch_changed(None)
    assert wrong not in str(e.value) and "401" in str(e.value)
    assert not e.value.retryable


def test_unreachable_redmine_is_unavailable(redmine: RedmineEnv, make_backend: Any) -> None:
    from .server import free_port

    backend = make_backend([redmine.bulk_project], url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailable) as e:
        backend.fetch_changed(None)
    assert e.value.retryable and redmine.key not in str(e.value)


def test_outage_then_recovery(redmine: RedmineEnv, private_redmine: Any,
                              make_backend: Any) -> None:
    """Redmine stops mid-run: BackendUnavailable (retryable); it comes back: polling resumes."""
    proj = redmine.project("outage")
    a = redmine.server.create_issue(proj, "before the outage")["id"]
    backend = make_backend([proj], url=private_redmine.url)
    first = backend.fetch_changed(None)
    assert [t.key for t in first.tickets] == [str(a)]
    private_redmine.stop()
    assert not private_redmine.is_up()
    with pytest.raises(BackendUnavailable) as e:
        backend.fetch_changed(first.cursor)
    assert e.value.retryable and "cannot connect" in str(e.value)
    b = redmine.server.create_issue(proj, "while it was down")["id"]
    private_redmine.start()
    again = backend.fetch_changed(first.cursor)
    assert str(b) in {t.key for t in again.tickets}
