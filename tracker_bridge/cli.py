"""The ``tracker-bridge`` command line (see ../shared/spec/CLI-AND-TICKET.md)."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker-bridge")
def main() -> None:
    """Service-desk-grade SLA enforcement for Redmine, JIRA and Bugzilla."""


def _register_tracker_commands() -> None:
    try:
        from .cli_trackers import register_commands
    except ImportError:  # pragma: no cover - during bootstrap only
        return
    register_commands(main)


_register_tracker_commands()
