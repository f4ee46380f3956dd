"""The hooks a tracker_bridge plugin can implement (pluggy, project ``tracker_bridge``).

A plugin is a module or object with functions decorated by :data:`hookimpl` and named like
the specs below. Third-party plugins are found through the ``tracker_bridge`` entry-point group
(docs/plugins.md); the built-in backends are registered the same way, by
:func:`tracker_bridge.manager.get_plugin_manager`.

Compatibility rule: a spec may gain parameters in a later version but never loses or renames
one. An implementation may accept *fewer* parameters than its spec (pluggy passes only the
ones it names), so write only the ones you use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .backend import Diff, Registry
    from .config import TrackerConfig
    from .core.ticket import Ticket
    from .core.verdict import Verdict
    from .report import SyncReport

PROJECT = "tracker_bridge"

#: decorate hook specifications (used by this module only)
hookspec = pluggy.HookspecMarker(PROJECT)
#: decorate a plugin's hook implementations: ``@hookimpl def tracker_bridge_register(registry):``
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def tracker_bridge_register(registry: Registry) -> None:
    """Register the tracker backends this plugin provides.

    Called once when the bridge builds its registry. Call ``registry.add_backend(cls)`` for
    each :class:`tracker_bridge.backend.Backend` subclass; its ``name`` is the value users
    write as ``backend:`` in a tracker's config. Registering a name another plugin already
    registered is an error.

    :param registry: the :class:`tracker_bridge.backend.Registry` to add backends to
    :return: nothing; the return value is ignored
    """


@hookspec
def tracker_bridge_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``tracker-bridge`` command line.

    :param cli: the top-level click group; add commands with ``cli.command()`` or
        ``cli.add_command(cmd)``. A name that already exists replaces nothing: pick your own.
    :return: nothing; the return value is ignored
    """


@hookspec(firstresult=True)
def tracker_bridge_ticket_fetched(tracker: TrackerConfig, ticket: Ticket) -> Ticket | None:
    """Inspect or replace a normalized ticket before the engine evaluates it.

    Use it to derive a field the tracker lacks (e.g. the plan from the customer's
    organisation). The first implementation returning a ticket wins.

    :param tracker: the configured tracker the ticket was read from
    :param ticket: the normalized ticket as the backend produced it
    :return: a replacement :class:`~tracker_bridge.core.ticket.Ticket` (same ``key``), or
        ``None`` to keep ``ticket`` as it is
    """


@hookspec(firstresult=True)
def tracker_bridge_before_write(tracker: TrackerConfig, ticket: Ticket, verdict: Verdict,
                                diff: Diff) -> Diff | None:
    """Inspect or narrow the diff the sync layer is about to write to one ticket.

    Not called for an empty diff. The returned diff may drop parts of ``diff`` (return an
    empty ``Diff(key)`` to skip the write); labels outside the policy's prefix are removed
    from it again, so a plugin cannot make the bridge touch a label it does not own.

    :param tracker: the configured tracker the ticket lives in
    :param ticket: the ticket as fetched this cycle
    :param verdict: the engine's verdict on the ticket at this cycle's ``now``
    :param diff: the minimal change between the verdict and what the ticket shows
    :return: a replacement :class:`~tracker_bridge.backend.Diff` for the same key, or
        ``None`` to write ``diff`` as it is
    """


@hookspec
def tracker_bridge_cycle_done(report: SyncReport) -> None:
    """Observe a finished sync cycle (metrics, alerting, audit logs).

    Called after every ``run_once``, including dry runs and cycles in which trackers failed.
    An exception here is reported but does not undo the cycle.

    :param report: the cycle's :class:`tracker_bridge.sync.SyncReport` (per tracker: fetched,
        evaluated, writes by kind, errors; and the earliest next change)
    :return: nothing; the return value is ignored
    """


__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "tracker_bridge_before_write",
    "tracker_bridge_cycle_done",
    "tracker_bridge_register",
    "tracker_bridge_register_commands",
    "tracker_bridge_ticket_fetched",
]
