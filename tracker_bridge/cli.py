"""The ``tracker-bridge`` command line (documented in docs/cli.md).

Exit status: 0 success, 1 the work ran but found problems, 2 bad input (config, policy,
arguments, ticket file). With ``--json`` a command prints exactly one JSON document.
"""

from __future__ import annotations

import json
from typing import Any

import click

from . import __version__
from .cli_common import handle_errors, json_option, parse_iso, parse_now, print_verdict
from .cli_trackers import load_plugin_commands, register_commands
from .errors import InputError


class _Commands(click.Group):
    """The command group: installed plugins' commands are loaded only when a command that is
    not built in is named, or the list of commands is shown (``--help``), so the engine
    commands start without importing any tracker plugin or HTTP library."""

    _plugins_loaded = False

    def _plugins(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True
            load_plugin_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and not self._plugins_loaded:
            self._plugins()
            cmd = super().get_command(ctx, cmd_name)
        return cmd

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._plugins()
        return super().list_commands(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker-bridge")
def main() -> None:
    """Service-desk-grade SLA enforcement for Redmine, JIRA and Bugzilla."""


@main.command()
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The policy YAML file.",
)
@click.option("--class", "class_", required=True, help="The ticket class (severity).")
@click.option("--plan", default=None, help="The support plan (default: the policy's default_plan).")
@click.option("--start", required=True, help="The start instant, ISO 8601 with an offset.")
@click.option(
    "--metric",
    default="resolution",
    show_default=True,
    type=click.Choice(["response", "resolution"]),
    help="Which target.",
)
@json_option
@handle_errors(value_errors=True)
def deadline(
    policy_path: str, class_: str, plan: str | None, start: str, metric: str, as_json: bool
) -> None:
    """The due instant of one target from a start instant (pure calendar arithmetic)."""
    from .policyfile import load_policy

    policy = load_policy(policy_path)
    if class_ not in policy.classes:
        raise InputError(
            f"--class: {class_!r} is not a class of {policy_path} ({', '.join(policy.classes)})"
        )
    if plan is not None and plan not in policy.plans:
        raise InputError(
            f"--plan: {plan!r} is not a plan of {policy_path} ({', '.join(policy.plans)})"
        )
    t0 = parse_iso(start, "--start")
    due = policy.deadline(class_, plan, t0, metric)
    if as_json:
        click.echo(json.dumps({"due": None if due is None else due.isoformat()}))
        return
    cal = policy.calendar_name(class_, plan, metric)
    target = policy.classes[class_].get(metric)
    if due is None:
        click.echo(f"no {metric} target for class {class_}")
        return
    local = due.astimezone(policy.calendars[cal].zone if cal != "always" else due.tzinfo)
    click.echo(due.isoformat())
    click.echo(
        f"  {metric} target {target.duration if target else '?'} for class {class_}, "
        f"plan {plan or policy.default_plan}, on calendar {cal}; local time "
        f"{local.strftime('%a %Y-%m-%d %H:%M:%S %Z')}"
    )


def _read_ticket(path: str) -> dict[str, Any]:
    """A ticket file (``-``: standard input) through the untrusted-input reader: at most
    16 MiB, UTF-8, strict JSON (no duplicate keys, NaN or deep nesting); errors name the file."""
    from .inputfile import MAX_TICKET_BYTES, read_json_file

    data = read_json_file(path, what="ticket", limit=MAX_TICKET_BYTES)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a normalized ticket is a JSON object")
    return data


@main.command()
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The policy YAML file.",
)
@click.argument("ticket_path", metavar="TICKET.json")
@click.option("--now", default=None, help="Evaluate as of this instant (default: now).")
@json_option
@handle_errors(value_errors=True)
def evaluate(policy_path: str, ticket_path: str, now: str | None, as_json: bool) -> None:
    """The engine's verdict on one normalized ticket (use - to read it from stdin)."""
    from .core.engine import evaluate as run
    from .core.ticket import Ticket, TicketError
    from .policyfile import load_policy

    policy = load_policy(policy_path)
    at = parse_now(now)
    try:
        ticket = Ticket.from_dict(_read_ticket(ticket_path))
    except TicketError as exc:
        raise InputError(f"{ticket_path}: {exc}") from None
    verdict = run(policy, ticket, at)
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), indent=2))
        return
    print_verdict(verdict)


register_commands(main)


if __name__ == "__main__":  # python -m tracker_bridge.cli
    main()
