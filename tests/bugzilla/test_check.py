"""``check``: products, components, fields, statuses, keywords an admin must create, and a
write that proves the key is taken (Bugzilla 5.0 needs the api_key parameter)."""

from __future__ import annotations

from collections.abc import Callable

from tracker_bridge.plugins.bugzilla import BugzillaBackend

from .fake import SLA_KEYWORDS, FakeBugzilla

LABELS = ["sla-high", "sla-low", "sla-level-support-manager", "sla-paused"]


def _by_where(problems: list) -> dict[str, list]:  # type: ignore[type-arg]
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for p in problems:
        out.setdefault(p.where, []).append(p)
    return out


def test_a_good_setup_has_no_problems_and_proves_the_write(
        fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    bid = fake.create_bug("x")
    before = fake.bugs[bid]["last_change_time"]
    assert backend.check(list(SLA_KEYWORDS)) == []
    (put,) = [c for c in fake.calls if c.method == "PUT"]
    # a no-op update: logged in and allowed to edit, and nothing changes on the bug
    assert put.body == {"ids": [bid]}
    assert fake.bugs[bid]["last_change_time"] == before
    assert fake.activity[bid] == []


def test_missing_keywords_are_listed_for_an_admin(fake: FakeBugzilla,
                                                  backend: BugzillaBackend) -> None:
    problems = backend.check(LABELS)
    (p,) = problems
    assert p.where == "write.labels"
    assert p.missing_values == ("sla-level-support-manager",)
    assert "Administration > Keywords" in p.message


def test_whiteboard_labels_need_no_keyword(fake: FakeBugzilla,
                                           make_backend: Callable[..., BugzillaBackend]) -> None:
    assert make_backend(write={"labels": "whiteboard"}).check(LABELS) == []


def test_everything_wrong_at_once(fake: FakeBugzilla,
                                  make_backend: Callable[..., BugzillaBackend]) -> None:
    backend = make_backend(
        projects=["Clinic", "Nope"],
        options={"components": ["Support", "Plumbing"]},
        statuses={"waiting": ["NEEDINFO"]},
        fields={"impact": "cf_impakt", "priority": "priority"},
        write={"response_due": "cf_due_date", "resolution_due": "deadline",
               "labels": "tags", "notes": "journal"})
    got = _by_where(backend.check(LABELS))
    assert set(got) == {"projects", "options.components", "statuses.waiting", "fields.impact",
                        "write.response_due", "write.resolution_due", "write.labels",
                        "write.notes"}
    assert "'Nope'" in got["projects"][0].message
    assert "'Plumbing'" in got["options.components"][0].message
    assert "NEEDINFO" in got["statuses.waiting"][0].message
    assert "CONFIRMED" in got["statuses.waiting"][0].message  # says what exists
    assert "type 9" in got["write.response_due"][0].message  # a date without a time
    assert "custom field" in got["write.resolution_due"][0].message


def test_an_anonymous_answer_is_reported_with_the_api_key_note(
        fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]) -> None:
    """What a key Bugzilla did not take looks like (a 5.2 given only the header did so)."""
    backend = make_backend()
    backend.client._key = None  # as if the key never reached Bugzilla
    backend._has_key = True
    (p,) = backend.check(LABELS)
    assert p.where == "credentials"
    assert "api_key parameter" in p.message


def test_a_key_that_may_not_edit(fake: FakeBugzilla, backend: BugzillaBackend) -> None:
    fake.create_bug("x")
    fake.can_edit = False
    (p,) = backend.check(list(SLA_KEYWORDS))
    assert p.where == "credentials"
    assert "cannot edit bug 1" in p.message and "109" in p.message


def test_no_bug_in_scope_means_no_write_check(fake: FakeBugzilla,
                                              backend: BugzillaBackend) -> None:
    assert backend.check(list(SLA_KEYWORDS)) == []
    assert not [c for c in fake.calls if c.method == "PUT"]
