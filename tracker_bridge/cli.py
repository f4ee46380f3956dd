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
from .cli_trackers import CONFIG_HELP, load_plugin_commands, register_commands
from .errors import InputError, StoreError


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


def _day(value: str | None, option: str) -> Any:
    """A ``--since``/``--until`` day: ``YYYY-MM-DD``, or ``YYYY-MM`` for the month's first."""
    if value is None:
        return None
    from datetime import date

    text = value.strip()
    try:
        return date.fromisoformat(text + "-01" if len(text) == 7 else text)
    except ValueError:
        raise InputError(f"{option}: {value!r} is not a day (write YYYY-MM-DD or YYYY-MM)") \
            from None


@main.command()
@click.option("--since", default=None, help="Tickets created on or after this day (UTC), "
              "YYYY-MM-DD or YYYY-MM.")
@click.option("--until", default=None, help="Tickets created before this day (UTC).")
@click.option("--tracker", "only", multiple=True, help="Only this tracker (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "html"]),
              default="text", show_default=True, help="What to print.")
@click.option("--output", "-o", "output", default=None, type=click.Path(dir_okay=False),
              help="Write to this file instead of standard output.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help=CONFIG_HELP)
@json_option
@handle_errors
def report(since: str | None, until: str | None, only: tuple[str, ...], fmt: str,
           output: str | None, config_path: str | None, as_json: bool) -> None:
    """SLA compliance per month, tracker, class and plan from the state store, against the
    policy's goal (docs/report.md). --json is --format json."""
    from pathlib import Path

    from .compliance import aggregate, print_text, read_tickets, to_csv
    from .config import load_config
    from .manager import get_plugin_manager
    from .store import open_reader

    if as_json:
        fmt = "json"
    start, end = _day(since, "--since"), _day(until, "--until")
    if start is not None and end is not None and end <= start:
        raise InputError(f"--until: {until} is not after --since {since}")
    cfg = load_config(config_path, pm=get_plugin_manager(), resolve_secrets=False)
    for name in only:
        cfg.tracker(name)
    if not cfg.state_is_shared and not Path(cfg.state).is_file():
        raise InputError(f"{cfg.source}: state: no state store at {cfg.state} "
                         "(run `tracker-bridge sync --once` first)")
    try:
        # read-only: a report never writes to, or migrates, the daemon's store
        with open_reader(cfg.state, password=cfg.state_password) as db:
            tickets = read_tickets(db)
    except StoreError as e:  # (the password masked by the store)
        raise InputError(f"{cfg.source}: state: {e} (a store from an older tracker-bridge "
                         "is upgraded by its next sync)") from None
    doc = aggregate(tickets, goal=float(cfg.policy_obj.goal), since=start, until=end,
                    trackers=only or None)
    doc["policy"] = cfg.policy_obj.name
    if fmt == "json":
        text = json.dumps(doc, indent=2) + "\n"
    elif fmt == "csv":
        text = to_csv(doc)
    elif fmt == "html":
        from .report_html import render_html

        text = render_html(doc)
    elif output is None:
        print_text(doc)
        return
    else:
        import io

        buf = io.StringIO()
        print_text(doc, file=buf)
        text = buf.getvalue()
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            Path(output).write_text(text, encoding="utf-8", newline="")
        except OSError as e:
            raise InputError(f"--output: cannot write {output}: {e.strerror}") from None


@main.command()
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help=CONFIG_HELP)
@json_option
@handle_errors
def status(config_path: str | None, as_json: bool) -> None:
    """The cluster sharing the state store: live daemons, which owns each tracker, lease
    ages and handovers, each tracker's last cycle (docs/cli.md)."""
    from datetime import UTC, datetime

    from .config import load_config
    from .daemon import cluster_view
    from .manager import get_plugin_manager
    from .store import open_store

    cfg = load_config(config_path, pm=get_plugin_manager())
    st = open_store(cfg.state, password=cfg.state_password)
    try:
        view = cluster_view(st.leases(), "") if st.shared else {"me": "", "daemons": [],
                                                                  "leases": {}}
        last: dict[str, dict[str, Any]] = {}
        for rep in reversed(st.last_cycles(200)):  # oldest first: the newest wins
            for t in rep.get("trackers", []):
                last[t["tracker"]] = {"at": rep.get("now"), "aborted": t.get("aborted"),
                                      "evaluated": t.get("evaluated"),
                                      "errors": len(t.get("errors", []))}
    finally:
        st.close()
    trackers = {}
    for tc in cfg.trackers:
        lease = view["leases"].get(tc.name)
        trackers[tc.name] = {
            "owner": None if lease is None else lease["owner"],
            "lease_age_seconds": None if lease is None else lease["age_seconds"],
            "handovers": 0 if lease is None else lease["handovers"],
            "token": None if lease is None else lease["token"],
            "last_cycle": last.get(tc.name)}
    doc = {"state": "postgresql" if cfg.state_is_shared else "sqlite",
           "now": datetime.now(UTC).isoformat(timespec="seconds"),
           "daemons": [{"owner": d, "trackers": sorted(
               n for n, t in trackers.items() if t["owner"] == d)} for d in view["daemons"]],
           "trackers": trackers}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    if not cfg.state_is_shared:
        click.echo("state: SQLite (one daemon per store: no leases)")
    else:
        click.echo(f"{len(doc['daemons'])} live daemons on the PostgreSQL store")
        for d in doc["daemons"]:
            click.echo(f"  {d['owner']}: {', '.join(d['trackers']) or '(no tracker)'}")
    for name, t in trackers.items():
        owner = t["owner"] or ("nobody" if cfg.state_is_shared else "-")
        age = "" if t["lease_age_seconds"] is None else \
            f", lease age {t['lease_age_seconds']:.0f} s, {t['handovers']} handovers"
        lc = t["last_cycle"]
        cyc = "never" if lc is None else \
            f"{lc['at']} ({'failed' if lc['aborted'] else 'ok'}, {lc['evaluated']} evaluated)"
        click.echo(f"{name}: owner {owner}{age}; last cycle {cyc}")


register_commands(main)


if __name__ == "__main__":  # python -m tracker_bridge.cli
    main()
