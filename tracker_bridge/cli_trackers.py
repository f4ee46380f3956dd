"""The tracker commands: ``sync --once``, ``run`` (the daemon), ``check``, ``explain``,
``plugins``.

``tracker_bridge.cli`` calls :func:`register_commands` on its group. Exit status: 0 success,
1 the work ran but found problems (a tracker unreachable, a write refused, a setup problem),
2 bad input (config, policy, arguments). With ``--json`` each prints one JSON document.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .cli_common import emit_json, handle_errors, json_option, parse_now
from .errors import (
    EXIT_OK,
    EXIT_PROBLEMS,
    BackendAuthError,
    InputError,
    TrackerBridgeError,
)

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "The config file (default: $TRACKER_BRIDGE_CONFIG or tracker-bridge.yaml)."


def _config_option(func: F) -> F:
    return click.option("--config", "config_path", default=None,
                        type=click.Path(dir_okay=False), help=CONFIG_HELP)(func)


def _describe_diff(d: Any) -> str:
    parts = [f"{k}={v if v is not None else '(clear)'}" for k, v in sorted(d.set_fields.items())]
    parts += [f"+{x}" for x in sorted(d.add_labels)]
    parts += [f"-{x}" for x in sorted(d.remove_labels)]
    parts += [f"note {n.key}" for n in d.notes]
    return ", ".join(parts)


# -- sync ---------------------------------------------------------------------------------------


@click.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (the daemon is `run`).")
@click.option("--dry-run", is_flag=True, help="Print the writes it would make; make none.")
@click.option("--now", default=None, help="Evaluate as of this instant (ISO 8601 with offset).")
@click.option("--tracker", "only", multiple=True, help="Only this tracker (repeatable).")
@click.option("--force", is_flag=True,
              help="Skip the mass-change guard for this cycle (after checking the tracker).")
@_config_option
@json_option
@handle_errors
def sync(once: bool, dry_run: bool, now: str | None, only: tuple[str, ...], force: bool,
         config_path: str | None, as_json: bool) -> None:
    """One poll-evaluate-write cycle over every configured tracker."""
    from .config import load_config
    from .manager import get_plugin_manager
    from .sync import run_once

    if not once:
        raise InputError("sync runs one cycle with --once; the daemon is `tracker-bridge run`")
    at = parse_now(now)
    pm = get_plugin_manager()
    cfg = load_config(config_path, pm=pm)
    for name in only:
        cfg.tracker(name)  # an unknown name is bad input, before anything runs
    report = run_once(cfg, now=at, dry_run=dry_run, pm=pm, trackers=only or None, force=force)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    sys.exit(EXIT_OK if report.ok else EXIT_PROBLEMS)


def _print_report(report: Any) -> None:
    verb = "would write" if report.dry_run else "wrote"
    head = f"sync at {report.now.isoformat()}"
    if report.dry_run:
        head += " (dry run: nothing is written)"
    click.echo(head)
    for t in report.trackers:
        w = t.writes
        line = (f"{t.tracker}: fetched {t.fetched}, re-fetched {t.refetched}, evaluated "
                f"{t.evaluated}; {verb} {w['tickets']} tickets ({w['fields']} fields, "
                f"{w['labels_added']} labels added, {w['labels_removed']} removed, "
                f"{w['notes']} notes)")
        if t.adopted:
            line += f"; {t.adopted} already closed at the first sync, recorded only"
        click.echo(line)
        for d in t.diffs:
            click.echo(f"  {t.tracker}:{d.key}: {_describe_diff(d)}")
        if t.aborted:
            click.echo(f"  {t.tracker}: stopped; its cursor did not move")
        for e in t.errors:
            click.echo(f"  error: {e}")
    for h in report.hook_errors:
        click.echo(f"  plugin error: {h}")
    if report.next_change is not None:
        click.echo(f"next time-driven change: {report.next_change.isoformat()}")


# -- check --------------------------------------------------------------------------------------


@click.command()
@click.option("--policy", "policy_path", default=None, type=click.Path(dir_okay=False),
              help="Validate this policy file alone.")
@_config_option
@json_option
@handle_errors
def check(policy_path: str | None, config_path: str | None, as_json: bool) -> None:
    """Validate the config and policy, then connect to each tracker and verify its setup."""
    # (``check --policy`` alone loads no tracker plugin and no HTTP library)
    from .config import default_config_path
    from .policyfile import load_policy

    doc: dict[str, Any] = {"ok": True}
    lines: list[str] = []
    if policy_path is not None:
        policy = load_policy(policy_path)
        doc["policy"] = _policy_summary(policy_path, policy)
        lines.append(_policy_line(policy_path, policy))
        if config_path is None and not default_config_path().exists():
            _finish_check(doc, lines, as_json)
            return
    elif config_path is None and not default_config_path().exists():
        raise InputError(f"nothing to check: give --policy FILE or --config FILE "
                         f"(no {default_config_path()} here)")

    from .config import load_config
    from .manager import get_plugin_manager

    pm = get_plugin_manager()
    cfg = load_config(config_path, pm=pm)
    policy = cfg.policy_obj
    doc["config"] = {"file": str(cfg.source), "trackers": [t.name for t in cfg.trackers]}
    doc["policy"] = _policy_summary(str(cfg.policy), policy)
    lines.append(f"config {cfg.source}: ok ({len(cfg.trackers)} trackers)")
    lines.append(_policy_line(str(cfg.policy), policy))
    labels = policy.all_labels()
    doc["trackers"] = []
    from .sync import make_backend

    for tc in cfg.trackers:
        entry: dict[str, Any] = {"name": tc.name, "backend": tc.backend,
                                 "url": tc.mask(tc.url) if tc.url else tc.url,
                                 "problems": []}
        backend = None
        try:
            backend = make_backend(pm, tc)
            problems = backend.check(labels)
        except TrackerBridgeError as e:
            problems = []
            # a refused key is the credentials' problem, not the connection's
            where = "credentials" if isinstance(e, BackendAuthError) else "connection"
            entry["problems"].append({"where": where, "message": str(e),
                                      "missing_values": []})
        except Exception as e:  # a plugin bug is this tracker's problem, not the command's
            problems = []
            entry["problems"].append({"where": "plugin", "message":
                                      f"{type(e).__name__}: {e}", "missing_values": []})
        finally:
            if backend is not None:
                backend.close()
        for p in problems:
            entry["problems"].append({"where": p.where, "message": p.message,
                                      "missing_values": list(p.missing_values)})
        for p in entry["problems"]:  # a plugin's message must not leak the tracker's secret
            p["message"] = tc.mask(p["message"])
        entry["ok"] = not entry["problems"]
        doc["trackers"].append(entry)
        if entry["ok"]:
            lines.append(f"tracker {tc.name} ({tc.backend}): ok")
        else:
            doc["ok"] = False
            lines.append(f"tracker {tc.name} ({tc.backend}): {len(entry['problems'])} problems")
            for p in entry["problems"]:
                lines.append(f"  - {p['where']}: {p['message']}")
                if p["missing_values"]:
                    lines.append("    values an admin must add:")
                    lines.extend(f"      {v}" for v in p["missing_values"])
    _finish_check(doc, lines, as_json)


def _policy_summary(path: str, policy: Any) -> dict[str, Any]:
    return {"file": path, "name": policy.name, "classes": list(policy.classes),
            "plans": list(policy.plans), "label_prefix": policy.label_prefix,
            "labels": policy.all_labels()}


def _policy_line(path: str, policy: Any) -> str:
    return (f"policy {path}: ok ({policy.name}: {len(policy.classes)} classes, "
            f"{len(policy.plans)} plans, {len(policy.all_labels())} labels "
            f"under {policy.label_prefix!r})")


def _finish_check(doc: dict[str, Any], lines: list[str], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
    else:
        for line in lines:
            click.echo(line)
    sys.exit(EXIT_OK if doc["ok"] else EXIT_PROBLEMS)


# -- explain ------------------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="TRACKER:KEY")
@click.option("--now", default=None, help="Evaluate as of this instant (ISO 8601 with offset).")
@_config_option
@json_option
@handle_errors
def explain(ref: str, now: str | None, config_path: str | None, as_json: bool) -> None:
    """Fetch one live ticket and print the verdict with the reasoning in words.

    The decision is the sync cycle's own (:func:`tracker_bridge.plan.plan`), with what the
    state store remembers of the ticket when the store exists: the notes it already posted,
    whether the ticket is history.
    """
    from pathlib import Path

    from .backend import posted_note_keys
    from .config import load_config
    from .manager import get_plugin_manager
    from .plan import plan
    from .store import open_store
    from .sync import before_write, history_mark, make_backend, ticket_fetched

    name, sep, key = ref.partition(":")
    if not sep or not name or not key:
        raise InputError(f"{ref!r}: write TRACKER:KEY, e.g. clinic-redmine:42")
    at = parse_now(now)
    pm = get_plugin_manager()
    cfg = load_config(config_path, pm=pm)
    tc = cfg.tracker(name)
    policy = cfg.policy_obj.with_status_overrides(tc.status_overrides())
    backend = make_backend(pm, tc)
    try:
        ticket = ticket_fetched(pm, tc, backend.fetch_ticket(key))
    finally:
        backend.close()
    stored = first_sync = None
    # a PostgreSQL store always exists once configured; a SQLite one only once synced (and
    # explain never creates it)
    if cfg.state_is_shared or Path(cfg.state).exists():
        with open_store(cfg.state, password=cfg.state_password) as st:
            stored = st.ticket(tc.name, ticket.key)
            first_sync = history_mark(st, tc.name, at)
    else:
        first_sync = at  # never synced: what is closed now would be history
    p = plan(policy, tc, ticket, stored, at, first_sync=first_sync)
    verdict = p.verdict
    diff = before_write(pm, tc, policy, p)
    if as_json:
        emit_json({"ticket": ticket.to_dict(), "verdict": verdict.to_dict(),
                    "reasons": list(verdict.reasons), "diff": diff.to_dict(),
                    "history": p.adopted,
                    "posted_notes": sorted(posted_note_keys(ticket))})
        return
    from .cli_common import print_verdict

    if ticket.url:
        click.echo(ticket.url)
    print_verdict(verdict, reasons=True)
    if diff:
        click.echo(f"  sync would write: {_describe_diff(diff)}")
    elif p.adopted:
        click.echo("  sync would write nothing: the ticket was closed before the bridge first "
                   "synced this tracker (history, adopt_closed)")
    else:
        click.echo("  sync would write nothing: the ticket already shows this verdict")


# -- plugins ------------------------------------------------------------------------------------


@click.command()
@json_option
@handle_errors
def plugins(as_json: bool) -> None:
    """The installed tracker plugins, their versions and where they come from."""
    from .manager import get_plugin_manager, list_plugins

    infos = list_plugins(get_plugin_manager())
    if as_json:
        emit_json({"plugins": [p.to_dict() for p in infos]})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("plugin", "version", "origin", "backends", box=None, pad_edge=False)
    for p in infos:
        table.add_row(p.name, p.version, p.origin, ", ".join(p.backends) or "-")
    Console(width=max(100, Console().width)).print(table)


# -- run ----------------------------------------------------------------------------------------


def _seconds(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    from .config import parse_interval

    try:
        return parse_interval(value).total_seconds()
    except ValueError as e:
        raise InputError(f"{option}: {e}") from None


@click.command()
@_config_option
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human",
              show_default=True, help="Log lines for people, or one JSON object a line.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /metrics and /healthz on 127.0.0.1:PORT (0: any free port, logged).")
@click.option("--tracker", "only", multiple=True, help="Only this tracker (repeatable).")
@click.option("--auth-retry", default="1h", show_default=True,
              help="How long a tracker whose credentials were refused is left alone before "
                   "one more try (SIGHUP re-reads the config and tries at once).")
@click.option("--health-max-age", default=None,
              help="/healthz fails for a tracker with no good cycle for this long "
                   "(default: 3 poll intervals, at least 60s).")
@click.option("--stop-timeout", default="10s", show_default=True,
              help="On SIGTERM/SIGINT, abandon a cycle still running after this long.")
@handle_errors
def run(config_path: str | None, log_format: str, log_level: str, metrics_port: int | None,
        only: tuple[str, ...], auth_retry: str, health_max_age: str | None,
        stop_timeout: str) -> None:
    """The daemon: cycles at the poll interval and at each ticket's next deadline.

    Stops cleanly on SIGTERM or SIGINT; SIGHUP re-reads the config. Exit status: 0 after a
    stop, 1 when another daemon holds the state store (or the store cannot be used),
    2 for a bad config or option.
    """
    from .config import load_config
    from .daemon import Daemon, config_secrets
    from .manager import get_plugin_manager
    from .observability import setup_logging

    auth_s = _seconds(auth_retry, "--auth-retry")
    max_age = _seconds(health_max_age, "--health-max-age")
    stop_s = _seconds(stop_timeout, "--stop-timeout")
    pm = get_plugin_manager()
    cfg = load_config(config_path, pm=pm)
    for name in only:
        cfg.tracker(name)
    filt = setup_logging(log_format, log_level, config_secrets(cfg))
    daemon = Daemon(cfg, pm=pm, only=only, metrics_port=metrics_port,
                    auth_retry=auth_s or 3600.0, health_max_age=max_age,
                    stop_timeout=stop_s or 10.0,
                    reload=lambda: load_config(config_path, pm=pm), secret_filter=filt)
    daemon.install_signal_handlers()
    sys.exit(daemon.run())


# -- registration -------------------------------------------------------------------------------


def register_commands(group: click.Group) -> None:
    """Add the tracker commands to ``group`` (plugins' commands: :func:`load_plugin_commands`)."""
    for cmd in (sync, check, explain, plugins, run):
        group.add_command(cmd)


def load_plugin_commands(group: click.Group) -> None:
    """Add the commands installed plugins contribute (``tracker_bridge_register_commands``).

    Called only when the command line names a command that is not built in, or asks for the
    list of commands: ``deadline``, ``evaluate`` and ``check --policy`` load no plugin.
    """
    try:
        from .manager import get_plugin_manager

        pm = get_plugin_manager()
        pm.hook.tracker_bridge_register_commands(cli=group)
    except Exception as e:  # a broken plugin must not take the whole command line down
        click.echo(f"warning: plugin commands not loaded: {type(e).__name__}: {e} "
                   "(disable a plugin with TRACKER_BRIDGE_DISABLE_PLUGINS=name)", err=True)
