"""Bulk edits with sub-second timestamps: the scan must neither stall nor skip.

Redmine 5 reads ``updated_on=>=T`` as ``updated_on > T - 1s`` on timestamps stored with
microseconds (and shown truncated to the second). A bulk edit that stamps more than a page of
issues inside two consecutive seconds therefore made a page that never advanced. The
session's bulk project cannot show this: its crowd is stamped on a whole second.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .conftest import RedmineEnv

CROWD = 130  # more than a page (100), spread over two consecutive seconds

_CROWD_RB = """
ident = ARGV[0]
n = ARGV[1].to_i
admin = User.find_by_login("admin")
tracker = Tracker.find_by(name: "Support") || Tracker.first
p = Project.create!(name: ident, identifier: ident, is_public: true, tracker_ids: Tracker.pluck(:id))
ids = []
Issue.transaction do
  n.times { |i| ids << Issue.create!(project: p, tracker: tracker, author: admin,
                                      subject: format("crowd %03d", i), priority: IssuePriority.default).id }
end
s = Time.now.utc.change(usec: 0) - 300
ids.each_with_index do |id, i|
  # half inside second s-1, half inside second s, never on a whole second
  at = i.even? ? s - 1 + Rational(100_000 + i * 1000, 1_000_000) : s + Rational(200_000 + i * 1000, 1_000_000)
  Issue.where(id: id).update_all(updated_on: at, created_on: s - 3600)
end
puts "CROWD-JSON " + JSON.generate(ids)
"""


def _crowd(redmine: RedmineEnv, suffix: str) -> tuple[str, list[int]]:
    ident = f"{redmine.run_id}-{suffix}"
    out = redmine.server.runner(_CROWD_RB, ident, str(CROWD))
    line = next(x for x in out.splitlines() if x.startswith("CROWD-JSON "))
    return ident, json.loads(line[len("CROWD-JSON "):])


def test_a_crowd_over_two_seconds_is_read_whole_and_then_left_alone(
    redmine: RedmineEnv, make_backend: Any, request_log: Any
) -> None:
    project, ids = _crowd(redmine, "crowd")
    backend = make_backend([project])
    log = request_log(backend)
    first = backend.fetch_changed(None)
    keys = [t.key for t in first.tickets]
    assert len(keys) == len(set(keys)) == CROWD
    assert set(keys) == {str(i) for i in ids}
    lists = [u for u in log.methods("GET") if "/issues.json" in u]
    # the stalled page was walked by id inside a bounded window
    assert any("issue_id=%3E%3D" in u and "sort=id" in u for u in lists), lists

    # nothing changes afterwards: the cursor vouches for the whole crowd, including the
    # second Redmine's filter adds in front of the window, so no issue is read again
    time.sleep(2.5)  # the crowd is 5 minutes old; this only lets the server clock move on
    second = backend.fetch_changed(first.cursor)
    log.requests.clear()
    third = backend.fetch_changed(second.cursor)
    assert third.tickets == []
    issue_reads = [u for u in log.methods("GET") if "/issues/" in u]
    assert issue_reads == []


def test_an_edit_inside_the_crowd_is_found(redmine: RedmineEnv, make_backend: Any) -> None:
    project, ids = _crowd(redmine, "crowd2")
    backend = make_backend([project])
    first = backend.fetch_changed(None)
    assert len(first.tickets) == CROWD
    redmine.server.update_issue(ids[57], notes="still broken")
    second = backend.fetch_changed(first.cursor)
    assert [t.key for t in second.tickets] == [str(ids[57])]
