"""Make docs/img/report.png: the HTML report of a realistic desk, in headless Chromium.

    python docs/img/make_report_screenshot.py [OUT_DIR]   # default: docs/img

A desk of 90 tickets over three months (September to November 2026) on the care-pathway
policy (examples/policies/care-pathway.yaml), made with a fixed random seed, replayed through
the memory backend by one ordinary sync cycle at the end of November, then
``tracker-bridge report --format html``; the screenshot is taken with tests/browser.py's
flags. Needs /usr/bin/chromium (bash .ci/install-chromium.sh).
"""

from __future__ import annotations

import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "policies" / "care-pathway.yaml"
SUBJECTS = ("Calendar slow to open", "Lab results not filed", "Referral letter footer blank",
            "Password reset for a locum", "Discharge summary export fails",
            "Prescription printer offline", "Appointment reminders not sent",
            "EMR patient summary times out", "Report totals wrong for one user",
            "Scanner uploads rejected")
PRIORITIES = (("Urgent", 0.12), ("High", 0.25), ("Normal", 0.43), ("Low", 0.20))
PLANS = (("essentials", 0.5), ("professional", 0.3), ("premium", 0.2))


def pick(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def build(tmp: Path) -> Path:
    from tracker_bridge.config import load_config
    from tracker_bridge.core.ticket import HistoryEvent, Ticket
    from tracker_bridge.manager import get_plugin_manager
    from tracker_bridge.plugins.memory import MemoryTracker
    from tracker_bridge.sync import run_once

    rng = random.Random(20261130)
    desk = MemoryTracker.named("clinic-redmine")
    start = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    end = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    tickets = []
    for n in range(90):
        created = start + timedelta(minutes=rng.randrange(0, int((end - start).total_seconds()
                                                                 // 60) - 600))
        prio, plan = pick(rng, PRIORITIES), pick(rng, PLANS)
        month = created.month - 9  # later months answer faster: the desk is improving
        respond = timedelta(minutes=rng.lognormvariate(3.6 - 0.35 * month, 1.0))
        resolve = respond + timedelta(hours=rng.lognormvariate(2.6 - 0.2 * month, 1.1))
        history = [HistoryEvent(at=created + respond, kind="comment", by="agent",
                                text="We are looking into it.")]
        status = "In Progress"
        history.append(HistoryEvent(at=created + respond, kind="status", by="agent",
                                    from_="New", to="In Progress"))
        if created + resolve < end:
            history.append(HistoryEvent(at=created + resolve, kind="status", by="agent",
                                        from_="In Progress", to="Resolved"))
            status = "Resolved"
            if rng.random() < 0.06:
                history.append(HistoryEvent(at=created + resolve + timedelta(hours=3),
                                            kind="status", by="customer", from_="Resolved",
                                            to="In Progress"))
                status = "In Progress"
        history = [e for e in history if e.at < end]
        if not any(e.kind == "status" for e in history):
            status = "New"
        tickets.append(Ticket(
            tracker="clinic-redmine", key=str(4100 + n), created=created,
            updated=max([created, *(e.at for e in history)]), status=status,
            url=f"https://redmine.clinic.example/issues/{4100 + n}", reporter="customer",
            subject=rng.choice(SUBJECTS), fields={"priority": prio, "plan": plan},
            history=tuple(history)))
    tickets.sort(key=lambda t: t.created)
    config = tmp / "tracker-bridge.yaml"
    config.write_text(yaml.safe_dump({
        "policy": str(POLICY), "state": str(tmp / "state.sqlite"),
        "trackers": [{"name": "clinic-redmine", "backend": "memory",
                      "options": {"instance": "clinic-redmine"}, "adopt_closed": False,
                      "write": {"response_due": "cf:SLA response due",
                                "resolution_due": "cf:SLA resolution due",
                                "labels": "cf:SLA labels", "notes": "journal",
                                "timezone": "Europe/London"}}]}))
    pm = get_plugin_manager(load_entrypoints=False)
    cfg = load_config(config, pm=pm, resolve_secrets=False)
    desk.clock = lambda: end
    for t in tickets:
        desk.add(t)
    run_once(cfg, now=end, pm=pm)
    return config


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        config = build(tmp)
        from click.testing import CliRunner

        from tracker_bridge.cli import main as cli

        html = tmp / "report.html"
        r = CliRunner().invoke(cli, ["report", "--config", str(config), "--format", "html",
                                     "-o", str(html)])
        if r.exit_code:
            print(r.output, file=sys.stderr)
            return r.exit_code
        from playwright.sync_api import sync_playwright

        sys.path.insert(0, str(REPO / "tests"))
        from browser import FLAGS

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=list(FLAGS))
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(html.as_uri())
            page.screenshot(path=str(out / "report.png"), full_page=False)
            browser.close()
    print(out / "report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
