"""What the fuzz tests share: the example inputs, running the CLI, and the two verdicts.

A run either succeeds (exit 0) or refuses its input (exit 2) with a message that names the
file; a traceback (any other exception) or any other exit status fails the test.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from tracker_bridge.cli import main

REPO = Path(__file__).resolve().parents[2]
POLICIES = sorted((REPO / "examples" / "policies").glob("*.yaml"))
CARE = REPO / "examples" / "policies" / "care-pathway.yaml"
NOW = "2026-03-03T12:00:00+00:00"
#: the variable the example config names for its credentials
ENV = {"REDMINE_API_KEY": "0123456789abcdef"}


def memory_config(policy: Path = CARE) -> str:
    """examples/tracker-bridge.yaml on the in-memory backend (no network), policy absolute."""
    text = (REPO / "examples" / "tracker-bridge.yaml").read_text(encoding="utf-8")
    text = text.replace("backend: redmine", "backend: memory")
    text = text.replace("policy: policies/care-pathway.yaml", f"policy: {policy}")
    text = text.replace("      overlap_seconds: 60", "      instance: fuzz")
    assert "backend: memory" in text and str(policy) in text and "instance: fuzz" in text
    return text


def _ticket(key: str, **over: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "tracker": "clinic-redmine",
        "key": key,
        "url": f"http://127.0.0.1:3000/issues/{key}",
        "created": "2026-03-02T10:00:00+00:00",
        "updated": "2026-03-03T09:30:00+00:00",
        "reporter": "alice",
        "subject": "Calendar unavailable for the ward",
        "description": "Steps to reproduce: open the calendar. Patient 943 476 5919, 01632 960 001.",
        "status": "In Progress",
        "fields": {"priority": "High", "plan": "premium", "tier": "L2", "component": "Calendar",
                   "impact": "Single user", "urgency": "Job stopped"},
        "labels": ["customer-label", "sla-high"],
        "history": [
            {"at": "2026-03-02T10:20:00+00:00", "kind": "status", "from": "New",
             "to": "In Progress", "by": "bob"},
            {"at": "2026-03-02T10:25:00+00:00", "kind": "comment", "by": "bob", "public": True,
             "text": "Looking into it"},
            {"at": "2026-03-02T11:00:00+00:00", "kind": "field", "field": "tier", "from": "L1",
             "to": "L2", "by": "bob"},
            {"at": "2026-03-02T12:00:00+00:00", "kind": "status", "from": "In Progress",
             "to": "Feedback", "by": "bob"},
            {"at": "2026-03-03T09:00:00+00:00", "kind": "status", "from": "Feedback",
             "to": "In Progress", "by": "alice"},
        ],
    }
    t.update(over)
    return t


#: normalized tickets in the shape of docs/ticket.md: open, resolved with a KB note, new
TICKETS = [
    _ticket("42"),
    _ticket("43", status="Resolved", history=[
        *_ticket("x")["history"],
        {"at": "2026-03-03T09:10:00+00:00", "kind": "comment", "by": "bob", "public": True,
         "text": "Fixed: cleared the cache. Call 07700 900123."},
        {"at": "2026-03-03T09:20:00+00:00", "kind": "status", "from": "In Progress",
         "to": "Resolved", "by": "bob"},
    ]),
    _ticket("44", status="New", history=[], fields={"priority": "Low"}, labels=[]),
]


def ticket_bytes(t: dict[str, Any]) -> bytes:
    return json.dumps(t, indent=1, ensure_ascii=False).encode("utf-8")


def run(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=ENV)


def no_traceback(result: Result) -> None:
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"a traceback instead of a message:\n{tb}\noutput:\n{result.output}")


def ok_or_refused(result: Result, *names: str | Path) -> None:
    """Exit 0, or exit 2 with a message naming one of ``names`` (the files involved)."""
    no_traceback(result)
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        assert any(str(n) in result.output for n in names), result.output


def refused(result: Result, *needles: str | Path) -> str:
    """Exit 2 with every needle (the file, the line, the path, the reason) in the message."""
    no_traceback(result)
    assert result.exit_code == 2, (result.exit_code, result.output)
    for n in needles:
        assert str(n) in result.output, (n, result.output)
    return result.output
