"""What every ``tracker-bridge`` command shares: error handling, ``--json``, ``--now``.

Kept apart from ``cli.py`` and ``cli_trackers.py`` so that each imports it without
importing the other (``cli.py`` registers the tracker commands at its end).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click

from .errors import EXIT_BAD_INPUT, ConfigError, InputError, TrackerBridgeError
from .masking import mask_secrets

F = TypeVar("F", bound=Callable[..., Any])


def emit_json(doc: Any) -> None:
    """Print one JSON document."""
    click.echo(json.dumps(doc, indent=2, default=str))


def fail(message: str, code: int = EXIT_BAD_INPUT, as_json: bool = False) -> None:
    """Print an error the user can act on (no traceback) and exit with ``code``."""
    message = mask_secrets(message)  # an error may quote a URL or a tracker's answer
    if as_json:
        emit_json({"error": message, "exit_code": code})
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F | None = None, *, value_errors: bool = False) -> Any:
    """Turn the bridge's own errors into their message and exit status.

    :param value_errors: also report a ``ValueError`` as bad input (exit 2): for commands
        whose only inputs are files and arguments (``deadline``, ``evaluate``), where one can
        only come from them; elsewhere it is a bug and keeps its traceback.
    """

    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            as_json = bool(kwargs.get("as_json"))
            try:
                return fn(*args, **kwargs)
            except ConfigError as exc:
                if as_json:
                    emit_json({"error": "invalid configuration", "exit_code": exc.exit_code,
                               "problems": [{"file": exc.source, "path": p, "message": m}
                                            for p, m in exc.problems]})
                    sys.exit(exc.exit_code)
                fail(str(exc), exc.exit_code)
            except TrackerBridgeError as exc:
                fail(str(exc), exc.exit_code, as_json)
            except ValueError as exc:
                if not value_errors:
                    raise
                fail(str(exc), EXIT_BAD_INPUT, as_json)

        return wrapper  # type: ignore[return-value]

    return decorate if func is None else decorate(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(func)


def parse_iso(value: str, option: str) -> datetime:
    """An option's ISO 8601 instant; a value without an offset is refused, and so is one
    outside 1970-01-01..2200-01-01 UTC (the range the engine computes in)."""
    from .core.durations import instant_problem

    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option}: {value!r} is not an ISO 8601 timestamp") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InputError(
            f"{option}: {value!r} has no UTC offset (write e.g. 2026-03-02T10:00:00+00:00)"
        )
    problem = instant_problem(dt)
    if problem is not None:
        raise InputError(f"{option}: {value!r} {problem}")
    return dt


def parse_now(value: str | None, option: str = "--now") -> datetime:
    """``--now`` as an aware instant; the current time when not given."""
    if value is None:
        return datetime.now(UTC)
    return parse_iso(value, option)


def print_verdict(verdict: Any, reasons: bool = False) -> None:
    """A verdict in human text (shared by ``evaluate`` and ``explain``)."""
    from .core.durations import format_duration

    v = verdict
    click.echo(f"{v.ticket} at {v.now.isoformat()}")
    click.echo(f"  class    {v.class_}  ({v.class_rule})")
    click.echo(f"  plan     {v.plan}")
    # a clock that has not started (no first response yet for `update`, no request for
    # `escalation_response`) has nothing to show here; --json lists it
    shown = {name: m for name, m in v.metrics.items() if m.state != "not_started"}
    width = max(10, *(len(name) for name in shown)) if shown else 10
    for name, m in shown.items():
        bits = [f"{m.state:<9}", f"elapsed {format_duration(m.elapsed)}"]
        if m.target is not None:
            bits.append(f"of {format_duration(m.target)}")
        if m.due is not None:
            bits.append(f"due {m.due.isoformat()}")
        if m.remaining is not None:
            bits.append(f"remaining {format_duration(m.remaining)}")
        bits.append(f"[{m.calendar}]")
        click.echo(f"  {name:<{width}} " + "  ".join(bits))
    if v.tier is not None:
        click.echo(
            f"  tier     {v.tier}" + (f" -> escalate to {v.escalate_to}" if v.escalate_to else "")
        )
    click.echo(f"  level    {v.level or '-'}")
    click.echo(f"  labels   {', '.join(sorted(v.labels))}")
    for n in v.notes:
        first = n.text.splitlines()[0] if n.text else ""
        internal = " (internal)" if getattr(n, "internal", False) else ""
        click.echo(f"  note     [{n.key}]{internal} {first}")
    if v.next_change is not None:
        click.echo(f"  changes  {v.next_change.isoformat()}")
    for w in v.warnings:
        click.echo(f"  warning  {w}")
    if reasons:
        click.echo("  why:")
        for r in v.reasons:
            click.echo(f"    - {r}")
