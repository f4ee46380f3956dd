"""The demo's two steps that are not tracker-bridge commands: seed Redmine, show the verdicts.

    python examples/demo/demo.py seed [--reset]   # people, project, custom fields, 8 tickets
    python examples/demo/demo.py show             # each ticket's verdict, and the KB note

``seed`` sets up the demo's own corner of Redmine in ONE ``rails runner`` call (each costs
3-5 s): a tracker "Clinic support" carrying only the demo's custom fields ("Clinic impact",
... "Clinic SLA labels", none of them for all projects), two people (Priya Shah, the clinic's
practice manager, who reports the tickets; Sam Okafor, a support agent, who answers them), the
project ``clinic-demo`` with only that tracker and those fields, and its default issue list
showing the SLA columns. Custom fields other tools or the test suite left on the same Redmine
are not on the demo's tracker, so the demo's pages never show them.

It then creates the tickets over REST as those people (the admin key with Redmine's
``X-Redmine-Switch-User``), so every ticket is the customer's and every reply the agent's,
and moves their clocks back (a second runner call) so that the first sync already finds
running, at-risk, breached, paused and met targets, and a resolved ticket whose KB-ready note
carries the agent's workaround. Running it again keeps the existing tickets (they age
naturally); ``--reset`` deletes the demo's project (only that one) and starts over, as does a
project left by an older version of the demo.

``run-demo.sh`` calls both; see it for the whole sequence.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))  # the Redmine helper lives with the tests

from tests.redmine.server import CustomFieldSpec, RedmineServer  # noqa: E402

PROJECT = "clinic-demo"
PROJECT_NAME = "Clinic (tracker-bridge demo)"
#: in the project's description; a project without it was made by an older demo: rebuilt
SEED_VERSION = "demo data v2"
TRACKER = "Clinic support"
QUERY = "SLA board"
CONFIG = HERE / "tracker-bridge.yaml"
STATE = HERE / "demo-state.sqlite"
POLICY = REPO / "examples" / "policies" / "care-pathway.yaml"


@dataclass(frozen=True)
class Person:
    login: str
    firstname: str
    lastname: str
    role: str  # the Redmine role in the demo project

    @property
    def name(self) -> str:
        return f"{self.firstname} {self.lastname}"


CUSTOMER = Person("priya.shah", "Priya", "Shah", "Reporter")
AGENT = Person("sam.okafor", "Sam", "Okafor", "Developer")
PEOPLE = (CUSTOMER, AGENT)

# The demo's own fields (Redmine field names are unique, so they differ from the tests'
# "Impact", "SLA labels", ...); tracker-bridge.yaml maps them.
IMPACT, URGENCY, PLAN, TIER = "Clinic impact", "Clinic urgency", "Clinic plan", "Clinic tier"
RESPONSE_DUE, RESOLUTION_DUE = "Clinic response due", "Clinic resolution due"
SLA_STATE, SLA_LABELS = "Clinic SLA state", "Clinic SLA labels"
#: the issue list's columns, in order (built-in ones by Redmine's column name)
COLUMNS = ("status", "priority", "subject", "author", PLAN, SLA_STATE, RESPONSE_DUE,
           RESOLUTION_DUE, SLA_LABELS)


def field_specs() -> list[CustomFieldSpec]:
    from tracker_bridge.policyfile import load_policy

    labels = [*load_policy(POLICY).all_labels(), "customer-vip", "escalation-requested"]
    return [
        CustomFieldSpec(IMPACT, "list", ("Single user", "Multiple users", "Software wide")),
        CustomFieldSpec(URGENCY, "list", ("Patient care / safety", "Job stopped",
                                          "Job function affected", "Not affecting job")),
        CustomFieldSpec(PLAN, "list", ("essentials", "professional", "premium")),
        CustomFieldSpec(TIER, "list", ("L1", "L2", "L3", "L4")),
        CustomFieldSpec(RESPONSE_DUE, "string"),
        CustomFieldSpec(RESOLUTION_DUE, "string"),
        CustomFieldSpec(SLA_STATE, "string"),
        CustomFieldSpec(SLA_LABELS, "list", tuple(labels), multiple=True),
    ]


@dataclass
class Case:
    """One demo ticket: what the customer reported, and how long ago."""

    subject: str
    description: str
    priority: str
    age: timedelta
    plan: str | None = None
    impact: str | None = None
    urgency: str | None = None
    category: str | None = None
    labels: tuple[str, ...] = ()
    #: (minutes after creation, who, status name, note): the edits after the report
    steps: list[tuple[int, Person, str | None, str | None]] = field(default_factory=list)


CASES = [
    Case("Calendar unavailable for all users",
         "Since 08:40 nobody at the clinic can open the appointment calendar: the page "
         "keeps loading. Reported by phone by the practice manager.",
         "Normal", timedelta(minutes=25), plan="premium", impact="Software wide",
         urgency="Job stopped", category="Calendar"),
    Case("EMR not loading: clinicians cannot see clinical data",
         "The EMR2 patient summary is inaccessible on every workstation of ward 3.",
         "Urgent", timedelta(minutes=50), plan="premium", impact="Multiple users",
         urgency="Patient care / safety", category="EMR"),
    Case("Monthly activity report fails for one user",
         "Running the monthly activity report as user jsmith stops with 'query timeout'; "
         "other users can run it.",
         "High", timedelta(hours=2), plan="professional", impact="Single user",
         urgency="Job function affected", category="Reports",
         steps=[(20, AGENT, "In Progress", "Reproduced with jsmith's saved filters."),
                (35, CUSTOMER, None, "Thanks. It worked last month with the same filters.")]),
    Case("Password reset for a locked-out clinician",
         "Dr Patel is locked out after the password change; please reset the account.",
         "Low", timedelta(minutes=40), plan="essentials", impact="Single user",
         urgency="Not affecting job"),
    Case("Referral letters print with a blank footer",
         "Since the last update the footer of referral letters is empty.\n\n"
         "Steps to reproduce:\n1. Open a referral\n2. Print, Letter template B",
         "Normal", timedelta(hours=5), plan="professional", impact="Multiple users",
         urgency="Job function affected", category="Letters",
         steps=[(30, AGENT, "Feedback", "Could you send us a sample letter and the template "
                                        "version? The clock is paused until you reply.")]),
    Case("Data supply job stopped overnight",
         "The nightly data supply extract did not run; the 06:00 file is missing.",
         "High", timedelta(hours=1, minutes=10), plan="premium", impact="Software wide",
         urgency="Job function affected", category="Data supply", labels=("customer-vip",)),
    Case("Appointment reminders sent twice",
         "Patients received every SMS reminder twice yesterday.\n\n"
         "Steps to reproduce:\n1. Book an appointment for tomorrow\n"
         "2. Wait for the 18:00 reminder run: two SMS arrive",
         "Normal", timedelta(hours=26), plan="essentials", impact="Multiple users",
         urgency="Not affecting job", category="Messaging",
         steps=[(45, AGENT, "In Progress", "Duplicate job found in the scheduler."),
                (60, CUSTOMER, None, "It happened again this morning."),
                (180, AGENT, "Resolved", "Workaround: removed the duplicate scheduler entry; "
                                         "reminders go out once again. Fix planned for 5.1.1.")]),
    Case("Request: export of last year's clinic list",
         "Enhancement: could the clinic list be exported to CSV?",
         "Low", timedelta(days=3), plan="essentials", impact="Single user",
         urgency="Not affecting job"),
]

#: the resolved ticket whose KB-ready note the demo shows
SHOWCASE = "Appointment reminders sent twice"


# One rails-runner call: the demo's tracker (workflow copied from "Support"), its custom fields
# on that tracker only (not for all projects), the two people, the project with only that
# tracker and those fields, the people's roles in it, its categories, and its default issue
# list. Idempotent; a project whose description lacks SEED_VERSION (an older demo's, or one
# whose seeding was cut short: _BACKDATE_RB adds it last) or, with "reset", the current one
# is destroyed first: only the demo's own project, never another.
_SETUP_RB = """
require "json"
# the database is shared with Redmine's web server (and other tools' runner calls): wait for
# its lock rather than fail at once
c = ActiveRecord::Base.connection.raw_connection
c.busy_timeout(60_000) if c.respond_to?(:busy_timeout)
d = JSON.parse(ARGV[0])
out = {}
ActiveRecord::Base.transaction do
  tracker = Tracker.find_by(name: d["tracker"])
  unless tracker
    tracker = Tracker.new(name: d["tracker"], description: "tracker-bridge demo",
                          default_status: IssueStatus.find_by(name: "New") || IssueStatus.sorted.first)
    tracker.save!
    source = Tracker.find_by(name: "Support") || Tracker.where.not(id: tracker.id).sorted.first
    tracker.copy_workflow_rules(source) if source
  end
  fields = {}
  d["fields"].each do |s|
    cf = IssueCustomField.find_by(name: s["name"]) || IssueCustomField.new(
           name: s["name"], field_format: s["field_format"], multiple: s["multiple"],
           is_filter: true, visible: true, editable: true)
    cf.is_for_all = false
    cf.possible_values = s["possible_values"] if s["field_format"] == "list"
    cf.trackers = [tracker]
    cf.save!
    fields[s["name"]] = cf.id
  end
  # only the demo's fields on the demo's tracker (a field made later "for every tracker" by
  # another tool leaves it again here)
  tracker.custom_field_ids = fields.values
  users = {}
  d["people"].each do |u|
    user = User.find_by_login(u["login"])
    unless user
      user = User.new(firstname: u["firstname"], lastname: u["lastname"], mail: u["mail"])
      user.login = u["login"]
      user.password = SecureRandom.hex(16)
      user.status = User::STATUS_ACTIVE
      user.mail_notification = "none"
      user.save!
    end
    users[u["login"]] = user
  end
  project = Project.find_by(identifier: d["project"])
  if project && (d["reset"] || !project.description.to_s.include?(d["version"]))
    project.destroy
    out["deleted"] = true
    project = nil
  end
  unless project
    project = Project.new(name: d["name"], identifier: d["project"], is_public: true,
                          description: "Tickets of a clinic, for the tracker-bridge demo.")
    project.enabled_module_names = ["issue_tracking"]
    project.trackers = [tracker]
    project.save!
    out["created"] = true
  end
  project.tracker_ids = [tracker.id]
  project.issue_custom_field_ids = fields.values
  project.save!
  d["people"].each do |u|
    next if Member.exists?(project_id: project.id, user_id: users[u["login"]].id)
    m = Member.new(project: project, principal: users[u["login"]])
    m.role_ids = [Role.find_by!(name: u["role"]).id]
    m.save!
  end
  d["categories"].each { |n| project.issue_categories.find_or_create_by!(name: n) }
  q = IssueQuery.find_by(project_id: project.id, name: d["query"]) ||
      IssueQuery.new(project: project, name: d["query"])
  q.user = User.find_by_login("admin")
  q.visibility = Query::VISIBILITY_PUBLIC
  q.filters = {"status_id" => {operator: "*", values: [""]}}
  q.column_names = d["columns"].map { |c| fields[c] ? "cf_#{fields[c]}" : c }
  q.sort_criteria = [["id", "asc"]]
  q.save!
  project.default_issue_query = q
  project.save!
  out["fields"] = fields
  out["tracker_id"] = tracker.id
  out["issues"] = project.issues.count
end
puts "DEMO-JSON " + JSON.generate(out)
"""


def _runner(server: RedmineServer, script: str, arg: str, tries: int = 3) -> str:
    """``rails runner`` again after a failure (both scripts are safe to repeat): a Redmine
    busy with other clients' writes can still refuse its SQLite lock now and then."""
    for attempt in range(1, tries + 1):
        try:
            return server.runner(script, arg)
        except RuntimeError as e:
            if attempt == tries:
                raise
            print(f"  (rails runner failed, trying again; {len(str(e))} characters of error)")
    raise AssertionError("unreachable")


def setup(server: RedmineServer, reset: bool = False, project: str = PROJECT) -> dict[str, Any]:
    """The one rails-runner call of :data:`_SETUP_RB`; returns what it printed.

    ``project`` is the demo's identifier unless a test asks for a project of its own.
    """
    name = PROJECT_NAME if project == PROJECT else f"{PROJECT_NAME} [{project}]"
    arg = {
        "tracker": TRACKER, "project": project, "name": name, "version": SEED_VERSION,
        "reset": reset, "query": QUERY, "columns": list(COLUMNS),
        "fields": [s.to_json() for s in field_specs()],
        "people": [{"login": p.login, "firstname": p.firstname, "lastname": p.lastname,
                    "mail": f"{p.login}@example.org", "role": p.role} for p in PEOPLE],
        "categories": sorted({c.category for c in CASES if c.category}),
    }
    out = _runner(server, _SETUP_RB, json.dumps(arg))
    for line in out.splitlines():
        if line.startswith("DEMO-JSON "):
            return dict(json.loads(line[len("DEMO-JSON "):]))
    raise RuntimeError(f"the demo's Redmine setup printed no result: {out[-500:]!r}")


def seed(server: RedmineServer, reset: bool = False, state: Path = STATE,
         project: str = PROJECT) -> list[int]:
    """Set the demo up and, when its project has no tickets, create them; return their ids."""
    done = setup(server, reset, project)
    if done.get("deleted"):
        print(f"deleted the demo's old project {project}")
    if done.get("created"):
        # a new project's tickets have new ids: the old store's records are about nothing
        for p in state.parent.glob(state.name + "*"):
            p.unlink()
    s = server.session()
    if done["issues"]:
        print(f"project {project} already has {done['issues']} tickets (use --reset to start over)")
        r = s.get(f"{server.url}/issues.json", timeout=30,
                  params={"project_id": project, "status_id": "*", "limit": 100, "sort": "id"})
        r.raise_for_status()
        return [int(i["id"]) for i in r.json()["issues"]]
    fields = done["fields"]
    url = server.url
    r = s.get(f"{url}/projects/{project}/issue_categories.json", timeout=30)
    r.raise_for_status()
    categories = {c["name"]: c["id"] for c in r.json()["issue_categories"]}
    prio = server.ids("issue_priorities")
    status = server.ids("issue_statuses")

    def as_person(who: Person) -> dict[str, str]:
        return {"X-Redmine-Switch-User": who.login}

    shifts: dict[str, list[Any]] = {}
    ids = []
    for case in CASES:
        cfs = [{"id": fields[SLA_LABELS], "value": list(case.labels)}]
        for name, value in ((PLAN, case.plan), (IMPACT, case.impact), (URGENCY, case.urgency)):
            if value:
                cfs.append({"id": fields[name], "value": value})
        attrs: dict[str, Any] = {"project_id": project, "subject": case.subject,
                                 "description": case.description,
                                 "tracker_id": done["tracker_id"],
                                 "priority_id": prio[case.priority], "custom_fields": cfs}
        if case.category:
            attrs["category_id"] = categories[case.category]
        r = s.post(f"{url}/issues.json", json={"issue": attrs}, headers=as_person(CUSTOMER),
                   timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"creating {case.subject!r} as {CUSTOMER.login}: "
                               f"{r.status_code} {r.text[:300]}")
        issue = r.json()["issue"]
        for _, who, st, note in case.steps:
            upd: dict[str, Any] = {}
            if st:
                upd["status_id"] = status[st]
            if note:
                upd["notes"] = note
            r = s.put(f"{url}/issues/{issue['id']}.json", json={"issue": upd},
                      headers=as_person(who), timeout=30)
            if r.status_code != 204:
                raise RuntimeError(f"updating #{issue['id']} as {who.login}: "
                                   f"{r.status_code} {r.text[:300]}")
        # created `age` ago; the k-th journal `steps[k][0]` minutes after creation
        shifts[str(issue["id"])] = [int(case.age.total_seconds()), [m for m, *_ in case.steps]]
        ids.append(int(issue["id"]))
        print(f"  #{issue['id']:<5} {case.priority:<7} {case.subject}")
    _runner(server, _BACKDATE_RB, json.dumps({
        "now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "shifts": shifts,
        "project": project, "version": SEED_VERSION}))
    print(f"created {len(CASES)} tickets in project {project}, reported by {CUSTOMER.name}, "
          f"answered by {AGENT.name}; clocks moved back")
    return ids


# Moves each demo issue's creation `age` seconds into the past and its journals to the given
# minutes after creation; updated_on follows the last journal. Runs in one rails-runner call.
_BACKDATE_RB = r"""
require "json"
# the database is shared with Redmine's web server (and other tools' runner calls): wait for
# its lock rather than fail at once
c = ActiveRecord::Base.connection.raw_connection
c.busy_timeout(60_000) if c.respond_to?(:busy_timeout)
data = JSON.parse(ARGV[0])
now = Time.parse(data["now"]).utc
data["shifts"].each do |id, (age, minutes)|
  created = now - age
  issue = Issue.find(id.to_i)
  journals = issue.journals.order(:id).to_a
  last = created
  journals.each_with_index do |j, k|
    at = created + (minutes[k] || 0) * 60
    j.update_columns(created_on: at)
    last = at if at > last
  end
  Issue.where(id: issue.id).update_all(created_on: created, updated_on: last,
                                       start_date: created.to_date)
end
project = Project.find_by!(identifier: data["project"])
project.update_column(:description, project.description.to_s.sub(/\.\z/, "") +
                                    " (" + data["version"] + ").")
puts "ok"
"""


def kb_note(url: str, key: str, subject: str = SHOWCASE,
            project: str = PROJECT) -> tuple[int, str | None]:
    """The showcase ticket's id and the KB-ready note the bridge wrote on it (None: none yet)."""
    import requests

    s = requests.Session()
    s.headers["X-Redmine-API-Key"] = key
    r = s.get(f"{url}/issues.json", timeout=30, params={
        "project_id": project, "status_id": "*", "limit": 100})
    r.raise_for_status()
    issue = next(i for i in r.json()["issues"] if i["subject"] == subject)
    r = s.get(f"{url}/issues/{issue['id']}.json", params={"include": "journals"}, timeout=30)
    r.raise_for_status()
    journals = r.json()["issue"].get("journals") or []
    notes = [j["notes"] for j in journals if "KB-ready resolution note" in (j.get("notes") or "")]
    return int(issue["id"]), (notes[-1] if notes else None)


def show(config: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from tracker_bridge.config import load_config
    from tracker_bridge.core.engine import evaluate
    from tracker_bridge.manager import get_plugin_manager
    from tracker_bridge.sync import make_backend

    pm = get_plugin_manager()
    cfg = load_config(config, pm=pm)
    tc = cfg.trackers[0]
    policy = cfg.policy_obj.with_status_overrides(tc.status_overrides())
    backend = make_backend(pm, tc)
    now = datetime.now(UTC)
    try:
        tickets = backend.fetch_changed(None).tickets
    finally:
        backend.close()
    table = Table(title=f"verdicts at {now:%Y-%m-%d %H:%M} UTC")
    for col in ("#", "subject", "reporter", "status", "class", "plan", "response", "resolution"):
        table.add_column(col, no_wrap=True, overflow="ellipsis",
                         max_width=30 if col == "subject" else None)
    table.add_column("labels in Redmine")
    zone = tc.write.zone

    def metric(v: Any) -> str:
        if v is None:
            return "-"
        due = f" due {v.due.astimezone(zone):%a %H:%M}" if v.due else ""
        return f"{v.state}{due}"

    for t in sorted(tickets, key=lambda t: int(t.key)):
        v = evaluate(policy, t, now)
        table.add_row(t.key, t.subject, t.reporter or "-", t.status, v.class_, v.plan,
                      metric(v.metrics.get("response")), metric(v.metrics.get("resolution")),
                      ", ".join(sorted(t.labels)))
    console = Console(width=170)
    console.print(table)
    issue_id, note = kb_note(str(tc.url), (config.parent / "redmine-api-key").read_text().strip())
    console.print(f"\nThe KB-ready note on #{issue_id} ({SHOWCASE!r}), written by the sync; "
                  f"its workaround is {AGENT.name}'s last reply:\n", style="bold")
    console.print(note or "(no KB-ready note yet: did the sync run?)", markup=False,
                  highlight=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_seed = sub.add_parser("seed", help="create the demo's people, project and tickets")
    p_seed.add_argument("--reset", action="store_true",
                        help="delete the demo's project (only it) first")
    p_show = sub.add_parser("show", help="print each ticket's verdict and the KB note")
    p_show.add_argument("--config", type=Path, default=CONFIG)
    args = ap.parse_args()
    if args.cmd == "seed":
        seed(RedmineServer(), args.reset)
    else:
        show(args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
