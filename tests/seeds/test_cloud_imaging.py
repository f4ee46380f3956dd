"""Strategy 003 (Carestream Vue Cloud) replayed against cloud-imaging.yaml.

"Severity Level Guidelines": Severity 1 15 min / 8 hrs; Severity 2 1 Hour / 24 hrs;
Severity 3 24 hrs / 120 hrs; Severity 4 2 Days / N/A. All on the clock (24x7x365).
US Eastern time: EST (UTC-5) until Sun 8 Mar 2026 07:00 UTC, then EDT (UTC-4).
"""

from __future__ import annotations

import pytest

from .seedlib import at, due, policy, ticket, verdict

P = "cloud-imaging"

# Reported Fri 6 Mar 2026 16:30 EST = 21:30 UTC, an hour before the end of the chat desk's day.
CREATED = "2026-03-06T16:30:00-05:00"

TARGETS = [
    # sev1: +15 min = 16:45 EST; +8h = Sat 00:30 EST
    ("Immediate", "sev1", "2026-03-06T16:45:00-05:00", "2026-03-07T00:30:00-05:00"),
    # sev2: +1h = 17:30 EST; +24h = Sat 7 Mar 16:30 EST
    ("Urgent", "sev2", "2026-03-06T17:30:00-05:00", "2026-03-07T16:30:00-05:00"),
    ("High", "sev2", "2026-03-06T17:30:00-05:00", "2026-03-07T16:30:00-05:00"),
    # sev3: +24h = Sat 16:30 EST; +120h (5 x 24 real hours) = Wed 11 Mar 21:30 UTC, which is
    # 17:30 EDT on the wall clock since the clocks went forward on Sunday
    ("Normal", "sev3", "2026-03-07T16:30:00-05:00", "2026-03-11T17:30:00-04:00"),
    # sev4: "2 Days" = 48 real hours = Sun 8 Mar 21:30 UTC = 17:30 EDT; fix time "N/A"
    ("Low", "sev4", "2026-03-08T17:30:00-04:00", None),
]


@pytest.mark.parametrize(("priority", "cls", "response_due", "resolution_due"), TARGETS)
def test_severity_targets_on_the_clock(
    priority: str, cls: str, response_due: str, resolution_due: str | None
) -> None:
    v = verdict(policy(P), ticket(CREATED, fields={"priority": priority}), CREATED)
    assert v["class"] == cls
    assert due(v, "response") == at(response_due)
    if resolution_due is None:
        assert v["metrics"]["resolution"]["state"] == "no_target"
        assert v["metrics"]["resolution"]["target_s"] is None
        assert v["metrics"]["resolution"]["due"] is None
    else:
        assert due(v, "resolution") == at(resolution_due)


def test_holidays_do_not_stop_the_clock() -> None:
    # Christmas Day 2026 (a Friday, a US federal holiday), sev2 at 09:00 EST:
    # response 10:00 EST, fix Sat 26 Dec 09:00 EST.
    created = "2026-12-25T09:00:00-05:00"
    v = verdict(policy(P), ticket(created, fields={"priority": "Urgent"}), created)
    assert due(v, "response") == at("2026-12-25T10:00:00-05:00")
    assert due(v, "resolution") == at("2026-12-26T09:00:00-05:00")


@pytest.mark.parametrize(
    ("now", "state"),
    [
        # 75% of 15 min = 11m15s
        ("2026-03-06T16:41:14-05:00", "running"),
        ("2026-03-06T16:41:15-05:00", "at_risk"),
        ("2026-03-06T16:45:00-05:00", "at_risk"),   # exactly the target: not yet late
        ("2026-03-06T16:45:01-05:00", "breached"),
    ],
)
def test_severity_1_response_at_risk_then_breached(now: str, state: str) -> None:
    v = verdict(policy(P), ticket(CREATED, fields={"priority": "Immediate"}), now)
    assert v["metrics"]["response"]["state"] == state
    if state == "breached":
        assert "sla-breached-response" in v["labels"]
        assert any(n["key"] == "breach:response" for n in v["notes"])
    if state == "at_risk":
        assert "sla-at-risk-response" in v["labels"]


@pytest.mark.parametrize(
    ("subject", "cls"),
    [
        ("PACS service down for all radiologists", "sev1"),
        ("Worklist unavailable since the upgrade", "sev1"),
        ("How do I export a study to CD?", "sev4"),
    ],
)
def test_service_not_delivered_is_severity_1(subject: str, cls: str) -> None:
    v = verdict(policy(P), ticket(CREATED, fields={"priority": "Low"}, subject=subject), CREATED)
    assert v["class"] == cls
