"""Fixtures for the tests against a real Redmine 5 (Debian's package, see server.py).

One Redmine per test session, one ``rails runner`` call to prepare it (custom fields, a
150-issue project), then plain REST. The tests skip, with the reason, only when Redmine is
not installed and ``$CI`` is unset; in CI a missing Redmine is an error.

Every session works in its own projects (``tb<id>-...``), so sessions can share one instance
(another engineer's tests, the demo) and a re-run never trips over old data.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .server import INSTALL_SCRIPT, CustomFieldSpec, RedmineServer, is_installed

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "policies" / "care-pathway.yaml"
KEY_ENV = "TB_TEST_REDMINE_KEY"

IMPACTS = ("Single user", "Multiple users", "Software wide")
URGENCIES = ("Patient care / safety", "Job stopped", "Job function affected",
             "Not affecting job")
PLANS = ("essentials", "professional", "premium")
TIERS = ("L1", "L2", "L3", "L4")
#: values a human puts in the labels field next to the bridge's own
HUMAN_LABELS = ("customer-vip", "escalation-requested", "customer-label")
#: sla- values the tests write besides the example policy's
EXTRA_SLA_LABELS = ("sla-test-a", "sla-test-b")
#: the desk rules' labels (test_desk_rules.py turns the rules on in its own policy)
DESK_LABELS = ("sla-phi-detected", "sla-needs-info", "sla-closed-unconfirmed", "sla-enhancement",
               "sla-unregistered-contact")
#: the source documents' incident categories (000), for the categories desk rule
CATEGORIES = ("Technical question", "Support incident", "Enhancement request")

BULK_COUNT = 150
BULK_SAME_SECOND = 120  # > one page (100) stamped with the same second: forces sub-paging


def _policy_labels() -> list[str]:
    from tracker_bridge.policyfile import load_policy

    return load_policy(POLICY).all_labels()


def field_specs() -> list[CustomFieldSpec]:
    labels = (*_policy_labels(), *EXTRA_SLA_LABELS, *DESK_LABELS, *HUMAN_LABELS)
    return [
        CustomFieldSpec("Impact", "list", IMPACTS),
        CustomFieldSpec("Urgency", "list", URGENCIES),
        CustomFieldSpec("Support plan", "list", PLANS),
        CustomFieldSpec("Tier", "list", TIERS),
        CustomFieldSpec("Incident category", "list", CATEGORIES),
        CustomFieldSpec("Customer", "string"),  # the registered contacts desk rule
        CustomFieldSpec("SLA response due", "string"),
        CustomFieldSpec("SLA resolution due", "string"),
        CustomFieldSpec("SLA state", "string"),  # write.state: one line for people
        CustomFieldSpec("SLA labels", "list", labels, multiple=True),
        # for check(): a labels field an admin forgot to make multi-value
        CustomFieldSpec("TB single label", "list", ("sla-critical",)),
    ]


# Runs in the same rails-runner call as the custom fields (one ~4 s call for the session):
# a project of BULK_COUNT issues, most of them stamped with the very same second so that a
# poll must sub-page one second; journals displayed newest first for the admin, so that the
# backend's own ordering of journals is what the tests see.
_SETUP_RB = """
setup = JSON.parse(ARGV[1])
admin = User.find_by_login("admin")
admin.pref.comments_sorting = "desc"
admin.pref.save!
# a second person (a support agent) for the tests where who wrote a comment matters; an admin,
# so the tests' projects need no memberships; the tests act as them through the admin key
# with X-Redmine-Switch-User
unless User.find_by_login("tb-agent")
  agent = User.new(firstname: "Alex", lastname: "Agent", mail: "tb-agent@example.org")
  agent.login = "tb-agent"
  agent.admin = true
  agent.password = SecureRandom.hex(16)
  agent.status = User::STATUS_ACTIVE
  agent.save!
end
tracker = Tracker.find_by(name: "Support") || Tracker.first
out = {}
setup["bulk"].each do |ident|
  p = Project.find_by(identifier: ident) || Project.create!(
        name: ident, identifier: ident, is_public: true, tracker_ids: Tracker.pluck(:id))
  if p.issues.count == 0
    ids = []
    Issue.transaction do
      setup["count"].times do |i|
        ids << Issue.create!(project: p, tracker: tracker, author: admin,
                             subject: format("bulk %03d", i), priority: IssuePriority.default).id
      end
    end
    t0 = Time.now.utc.change(usec: 0) - 600
    ids.sort!
    ids.first(setup["same"]).each { |id| Issue.where(id: id).update_all(updated_on: t0, created_on: t0) }
    ids.drop(setup["same"]).each_with_index { |id, k|
      Issue.where(id: id).update_all(updated_on: t0 + k + 1, created_on: t0) }
  end
  out[ident] = p.issues.order(:id).pluck(:id)
end
puts "BULK-JSON " + JSON.generate(out)
"""


@dataclass
class RedmineEnv:
    """What the tests get: the server, its API key, the fields and this session's projects."""

    server: RedmineServer
    key: str
    fields: dict[str, int]
    run_id: str
    bulk_project: str
    bulk_ids: list[int]
    #: a second 150-issue project, for the end-to-end sync (which writes into every issue)
    sync_project: str
    sync_ids: list[int]

    @property
    def url(self) -> str:
        return self.server.url

    def project(self, suffix: str) -> str:
        """A fresh project for one test (identifier ``tb<run>-<suffix>``)."""
        ident = f"{self.run_id}-{suffix}"
        self.server.create_project(ident)
        return ident


def _require_redmine() -> None:
    if is_installed():
        return
    msg = (f"Redmine is not installed on this machine; run `sudo {INSTALL_SCRIPT}` "
           "(Debian's redmine + redmine-sqlite, about 35 s)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI is set but {msg}", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def redmine_server() -> Iterator[RedmineServer]:
    """The running Redmine (started here unless it already answers; stopped if started here).

    Tests of outages may ``stop()``/``start()`` it; later tests find it started again.
    """
    _require_redmine()
    server = RedmineServer()
    t0 = time.monotonic()
    server.start()
    started = server.started_here
    if started:
        print(f"\n[redmine] started {server.url} in {time.monotonic() - t0:.1f} s")
    yield server
    if started or server.started_here:
        server.stop()


@pytest.fixture(scope="session")
def redmine(redmine_server: RedmineServer) -> RedmineEnv:
    """A prepared Redmine: custom fields, a 150-issue project, the admin's key."""
    run_id = f"tb{int(time.time()) % 10**6:06d}{secrets.token_hex(2)}"
    bulk, sync_bulk = f"{run_id}-bulk", f"{run_id}-sync150"
    t0 = time.monotonic()
    out = redmine_server.runner(
        _cf_and_setup_script(), json.dumps([s.to_json() for s in field_specs()]),
        json.dumps({"bulk": [bulk, sync_bulk], "count": BULK_COUNT, "same": BULK_SAME_SECOND}))
    fields: dict[str, int] = {}
    bulk_ids: dict[str, list[int]] = {}
    for line in out.splitlines():
        if line.startswith("CF-JSON "):
            fields = {str(k): int(v) for k, v in json.loads(line[8:]).items()}
        elif line.startswith("BULK-JSON "):
            bulk_ids = {k: [int(i) for i in v] for k, v in json.loads(line[10:]).items()}
    assert fields and all(len(bulk_ids.get(p, ())) == BULK_COUNT for p in (bulk, sync_bulk)), \
        out[-500:]
    print(f"\n[redmine] custom fields + 2 x {BULK_COUNT} issues in one rails runner call: "
          f"{time.monotonic() - t0:.1f} s")
    return RedmineEnv(redmine_server, redmine_server.api_key(), fields, run_id, bulk,
                      bulk_ids[bulk], sync_bulk, bulk_ids[sync_bulk])


def _cf_and_setup_script() -> str:
    from .server import _CUSTOM_FIELDS_RB

    return _CUSTOM_FIELDS_RB + _SETUP_RB


#: the field mapping of the tests' tracker config (as a user would write it)
FIELDS = {
    "priority": "priority",
    "impact": "cf:Impact",
    "urgency": "cf:Urgency",
    "plan": "cf:Support plan",
    "tier": "cf:Tier",
    "component": "category",
    "version": "fixed_version",
}
WRITE = {
    "response_due": "cf:SLA response due",
    "resolution_due": "cf:SLA resolution due",
    "labels": "cf:SLA labels",
    "notes": "journal",
    "timezone": "UTC",
}


def tracker_section(env: RedmineEnv, projects: list[str], **overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "name": "clinic-redmine",
        "backend": "redmine",
        "url": env.url,
        "credentials": {"env": KEY_ENV},
        "projects": projects,
        "plan": "essentials",
        "fields": dict(FIELDS),
        "statuses": {"waiting": ["Feedback"]},
        "write": dict(WRITE),
    }
    section.update(overrides)
    return section


@pytest.fixture
def make_backend(redmine: RedmineEnv, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[Callable[..., Any]]:
    """Build a RedmineBackend the way the bridge does: config file section -> TrackerConfig."""
    from tracker_bridge.config import parse_config
    from tracker_bridge.manager import collect_registry, get_plugin_manager

    monkeypatch.setenv(KEY_ENV, redmine.key)
    made: list[Any] = []

    def make(projects: list[str], **overrides: Any) -> Any:
        cfg = parse_config({"policy": str(POLICY),
                            "trackers": [tracker_section(redmine, projects, **overrides)]},
                           load_policy=False)
        tracker = cfg.trackers[0]
        cls = collect_registry(get_plugin_manager(load_entrypoints=False)).get(tracker.backend)
        assert cls is not None, "the redmine backend is not registered through the hook"
        backend = cls.from_config(tracker)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()


class RequestLog:
    """Every HTTP request a backend makes (a requests response hook on its session)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.requests.append((response.request.method, response.request.url))
        return response

    def methods(self, method: str) -> list[str]:
        return [u for m, u in self.requests if m == method]


@pytest.fixture
def request_log() -> Callable[[Any], RequestLog]:
    def attach(backend: Any) -> RequestLog:
        log = RequestLog()
        backend.redmine.engine.session.hooks["response"].append(log)
        return log
    return attach


@pytest.fixture
def private_redmine(redmine: RedmineEnv) -> Iterator[RedmineServer]:
    """A second Redmine process on a free port (same database), for outage tests.

    Stopping the session's instance would break tests running beside these (other sessions
    share it); this one belongs to the test alone. Costs ~4 s to start.
    """
    from .server import free_port

    server = RedmineServer(port=free_port())
    server.start()
    yield server
    server.stop()
