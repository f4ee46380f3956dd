"""Helpers for replaying the source handbooks' worked examples against examples/policies/.

Expected instants in these tests are worked out by hand from each handbook's rules (the
arithmetic is written beside each case); the engine is only ever the thing under test.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from tracker_bridge.core.engine import evaluate
from tracker_bridge.core.policy import Policy
from tracker_bridge.core.ticket import Ticket
from tracker_bridge.policyfile import load_policy

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "policies"

#: the keys `evaluate --json` must print (docs/ticket.md)
VERDICT_KEYS = {"class", "class_rule", "plan", "metrics", "tier", "escalate_to", "level", "labels", "notes"}
METRIC_KEYS = {"state", "elapsed_s", "target_s", "due", "remaining_s"}


@cache
def policy(name: str) -> Policy:
    """The example policy ``examples/policies/<name>.yaml``, loaded once."""
    return load_policy(POLICIES / f"{name}.yaml")


def at(text: str) -> datetime:
    """An aware instant from ISO text (always written with its offset in these tests)."""
    dt = datetime.fromisoformat(text)
    assert dt.tzinfo is not None, text
    return dt


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


def ticket(
    created: str,
    *,
    status: str = "New",
    fields: dict[str, str] | None = None,
    history: list[dict[str, Any]] | None = None,
    subject: str = "Something is wrong",
    description: str = "",
    labels: list[str] | None = None,
    key: str = "1",
) -> Ticket:
    """A normalized ticket built through its JSON form, as a tracker plugin would hand it over."""
    return Ticket.from_dict({
        "tracker": "seed",
        "key": key,
        "created": created,
        "reporter": "customer",
        "subject": subject,
        "description": description,
        "status": status,
        "fields": fields or {},
        "labels": labels or [],
        "history": history or [],
    })


def status(at_: str, frm: str, to: str, by: str = "agent") -> dict[str, Any]:
    return {"at": at_, "kind": "status", "from": frm, "to": to, "by": by}


def field(at_: str, name: str, frm: str | None, to: str | None, by: str = "agent") -> dict[str, Any]:
    return {"at": at_, "kind": "field", "field": name, "from": frm, "to": to, "by": by}


def verdict(p: Policy, t: Ticket, now: str) -> dict[str, Any]:
    """``evaluate`` as the JSON document `evaluate --json` prints, checked for shape."""
    out = evaluate(p, t, at(now)).to_dict()
    out = json.loads(json.dumps(out))  # must be plain JSON
    missing = VERDICT_KEYS - out.keys()
    assert not missing, f"verdict lacks {sorted(missing)}"
    for name, m in out["metrics"].items():
        assert m.keys() >= METRIC_KEYS, f"metric {name} lacks {sorted(METRIC_KEYS - m.keys())}"
    return out


def due(v: dict[str, Any], metric: str) -> datetime | None:
    """A metric's due instant from a verdict (compared as instants, whatever offset is printed)."""
    text = v["metrics"][metric]["due"]
    return None if text is None else at(text)
