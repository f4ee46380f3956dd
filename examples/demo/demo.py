"""The demo's two steps that are not tracker-bridge commands: seed Redmine, show the verdicts.

    python examples/demo/demo.py seed [--reset]   # project, custom fields, 8 tickets
    python examples/demo/demo.py show             # each ticket's verdict, as a table

``seed`` creates a project ``clinic-demo`` whose tickets follow the cases of the source
handbooks (a calendar outage for every user, an EMR outage, a report failing for one user,
a password reset, a ticket waiting on the customer, ...), then moves their clocks back
(one ``rails runner`` call) so that the first sync already finds running, at-risk, breached,
paused and met targets. Running it again keeps the existing tickets (they age naturally);
``--reset`` deletes the project and starts over.

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
CONFIG = HERE / "tracker-bridge.yaml"
KEY_FILE = HERE / "redmine-api-key"
POLICY = REPO / "examples" / "policies" / "care-pathway.yaml"


def field_specs() -> list[CustomFieldSpec]:
    from tracker_bridge.policyfile import load_policy

    labels = [*load_policy(POLICY).all_labels(), "customer-vip", "escalation-requested"]
    return [
        CustomFieldSpec("Impact", "list", ("Single user", "Multiple users", "Software wide")),
        CustomFieldSpec("Urgency", "list", ("Patient care / safety", "Job stopped",
                                            "Job function affected", "Not affecting job")),
        CustomFieldSpec("Support plan", "list", ("essentials", "professional", "premium")),
        CustomFieldSpec("Tier", "list", ("L1", "L2", "L3", "L4")),
        CustomFieldSpec("SLA response due", "string"),
        CustomFieldSpec("SLA resolution due", "string"),
        CustomFieldSpec("SLA labels", "list", tuple(labels), multiple=True),
    ]


@dataclass
class Case:
    """One demo ticket: what a customer reported, and how long ago."""

    subject: str
    description: str
    priority: str
    age: timedelta
    plan: str | None = None
    impact: str | None = None
    urgency: str | None = None
    category: str | None = None
    labels: tuple[str, ...] = ()
    #: (minutes after creation, status name, note) edits a support engineer made
    steps: list[tuple[int, str | None, str | None]] = field(default_factory=list)


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
         steps=[(20, "In Progress", "Reproduced with jsmith's saved filters.")]),
    Case("Password reset for a locked-out clinician",
         "Dr Patel is locked out after the password change; please reset the account.",
         "Low", timedelta(minutes=40), plan="essentials", impact="Single user",
         urgency="Not affecting job"),
    Case("Referral letters print with a blank footer",
         "Since the last update the footer of referral letters is empty. Steps to "
         "reproduce: open a referral, Print, Letter template B.",
         "Normal", timedelta(hours=5), plan="professional", impact="Multiple users",
         urgency="Job function affected", category="Letters",
         steps=[(30, "Feedback", "Could you send us a sample letter and the template "
                                 "version? The clock is paused until you reply.")]),
    Case("Data supply job stopped overnight",
         "The nightly data supply extract did not run; the 06:00 file is missing.",
         "High", timedelta(hours=1, minutes=10), plan="premium", impact="Software wide",
         urgency="Job function affected", category="Data supply", labels=("customer-vip",)),
    Case("Appointment reminders sent twice",
         "Patients received every SMS reminder twice yesterday.",
         "Normal", timedelta(hours=26), plan="essentials", impact="Multiple users",
         urgency="Not affecting job", category="Messaging",
         steps=[(45, "In Progress", "Duplicate job found in the scheduler."),
                (180, "Resolved", "Workaround: removed the duplicate scheduler entry. "
                                  "Fix planned for 5.1.1.")]),
    Case("Request: export of last year's clinic list",
         "Enhancement: could the clinic list be exported to CSV?",
         "Low", timedelta(days=3), plan="essentials", impact="Single user",
         urgency="Not affecting job"),
]


def seed(server: RedmineServer, reset: bool) -> None:
    s = server.session()
    url = server.url
    if reset and s.get(f"{url}/projects/{PROJECT}.json", timeout=30).status_code == 200:
        s.delete(f"{url}/projects/{PROJECT}.json", timeout=60).raise_for_status()
        print(f"deleted project {PROJECT}")
    fields = server.ensure_custom_fields(field_specs())  # one rails-runner call
    existing = s.get(f"{url}/issues.json", timeout=30,
                     params={"project_id": PROJECT, "status_id": "*", "limit": 1})
    if existing.status_code == 200 and existing.json()["total_count"] > 0:
        print(f"project {PROJECT} already has tickets (use --reset to start over)")
        return
    server.create_project(PROJECT, "Clinic (tracker-bridge demo)")
    categories = {}
    for name in sorted({c.category for c in CASES if c.category}):
        r = s.post(f"{url}/projects/{PROJECT}/issue_categories.json", timeout=30,
                   json={"issue_category": {"name": name}})
        r.raise_for_status()
        categories[name] = r.json()["issue_category"]["id"]
    prio = server.ids("issue_priorities")
    status = server.ids("issue_statuses")
    shifts: dict[str, list[Any]] = {}
    for case in CASES:
        cfs = [{"id": fields["SLA labels"], "value": list(case.labels)}]
        for name, value in (("Support plan", case.plan), ("Impact", case.impact),
                            ("Urgency", case.urgency)):
            if value:
                cfs.append({"id": fields[name], "value": value})
        attrs: dict[str, Any] = {"description": case.description, "tracker_id":
                                 server.ids("trackers").get("Support", 1),
                                 "priority_id": prio[case.priority], "custom_fields": cfs}
        if case.category:
            attrs["category_id"] = categories[case.category]
        issue = server.create_issue(PROJECT, case.subject, **attrs)
        for _, st, note in case.steps:
            upd: dict[str, Any] = {}
            if st:
                upd["status_id"] = status[st]
            if note:
                upd["notes"] = note
            server.update_issue(issue["id"], **upd)
        # created `age` ago; the k-th journal `steps[k][0]` minutes after creation
        shifts[str(issue["id"])] = [int(case.age.total_seconds()), [m for m, _, _ in case.steps]]
        print(f"  #{issue['id']:<5} {case.priority:<7} {case.subject}")
    server.runner(_BACKDATE_RB, json.dumps({"now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                            "shifts": shifts}))
    print(f"created {len(CASES)} tickets in project {PROJECT}, clocks moved back")


# Moves each demo issue's creation `age` seconds into the past and its journals to the given
# minutes after creation; updated_on follows the last journal. Runs in one rails-runner call.
_BACKDATE_RB = """
require "json"
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
puts "ok"
"""


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
    for col in ("#", "subject", "status", "class", "plan", "response", "resolution"):
        table.add_column(col, no_wrap=True, overflow="ellipsis",
                         max_width=34 if col == "subject" else None)
    table.add_column("labels in Redmine")
    zone = tc.write.zone

    def metric(v: Any) -> str:
        if v is None:
            return "-"
        due = f" due {v.due.astimezone(zone):%a %H:%M}" if v.due else ""
        return f"{v.state}{due}"

    for t in sorted(tickets, key=lambda t: int(t.key)):
        v = evaluate(policy, t, now)
        table.add_row(t.key, t.subject, t.status, v.class_, v.plan,
                      metric(v.metrics.get("response")), metric(v.metrics.get("resolution")),
                      ", ".join(sorted(t.labels)))
    Console(width=160).print(table)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_seed = sub.add_parser("seed", help="create the demo project and tickets")
    p_seed.add_argument("--reset", action="store_true", help="delete the project first")
    p_show = sub.add_parser("show", help="print each ticket's verdict")
    p_show.add_argument("--config", type=Path, default=CONFIG)
    args = ap.parse_args()
    server = RedmineServer()
    if args.cmd == "seed":
        seed(server, args.reset)
    else:
        show(args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
