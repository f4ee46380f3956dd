"""Building the plugin manager: built-in backends and third-party plugins, the same way.

Built-ins are plain plugin modules listed in :data:`BUILTIN_PLUGINS` (not entry points, so an
editable or vendored install cannot lose them); third-party plugins come from the
``tracker_bridge`` entry-point group. ``TRACKER_BRIDGE_DISABLE_PLUGINS`` (comma-separated plugin
names) blocks any of them, e.g. a broken third-party plugin.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import __version__, hookspecs
from .backend import Backend, Registry
from .errors import ConfigError

ENTRY_POINT_GROUP = "tracker_bridge"
DISABLE_ENV = "TRACKER_BRIDGE_DISABLE_PLUGINS"

#: built-in plugin modules; a missing optional one (e.g. while a backend is being written)
#: is skipped, any other import error is raised
BUILTIN_PLUGINS: tuple[str, ...] = (
    "tracker_bridge.plugins.memory",
    "tracker_bridge.plugins.redmine",
    "tracker_bridge.plugins.jira",
    "tracker_bridge.plugins.bugzilla",
)


def get_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs, the built-ins and (optionally) entry points.

    :param load_entrypoints: also load third-party plugins from the ``tracker_bridge``
        entry-point group (tests pass ``False`` for a hermetic manager)
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (s.strip() for s in os.environ.get(DISABLE_ENV, "").split(","))):
        pm.set_blocked(name)
    for modname in BUILTIN_PLUGINS:
        if pm.is_blocked(modname):
            continue
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        pm.register(module, name=modname)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    # an implementation of a hook that does not exist (a typo, or a plugin written for a newer
    # bridge) fails here, at start, naming the plugin, rather than being silently ignored
    pm.check_pending()
    return pm


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin for its backends; each registration remembers which plugin made it."""
    registry = Registry()
    caller = pm.hook.tracker_bridge_register
    # one implementation at a time, so that the registry can name the plugin responsible for
    # each backend; in registration order, so built-ins claim their names first and a
    # third-party plugin reusing one is the one named as the duplicate
    for impl in caller.get_hookimpls():
        registry.current_plugin = impl.plugin_name
        kwargs = {"registry": registry} if "registry" in impl.argnames else {}
        impl.function(**kwargs)
    registry.current_plugin = "?"
    return registry


def backend_class(pm: pluggy.PluginManager, name: str) -> type[Backend]:
    """The backend class registered as ``name``."""
    cls = collect_registry(pm).get(name)
    if cls is None:
        raise ConfigError("config", [("backend", f"no backend named {name!r} is installed")])
    return cls


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as ``tracker-bridge plugins`` shows it."""

    name: str
    version: str
    origin: str
    backends: tuple[str, ...] = ()
    hooks: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "origin": self.origin,
                "backends": list(self.backends), "hooks": list(self.hooks)}


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every plugin with its version, origin (``built-in`` or its distribution) and backends."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    registry = collect_registry(pm)
    by_plugin: dict[str, list[str]] = {}
    for bname in registry.backends:
        by_plugin.setdefault(registry.origin(bname), []).append(bname)
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        if dist is not None:
            version, origin = dist.version, f"{dist.metadata['name']} (entry point)"
        elif name in BUILTIN_PLUGINS:
            version, origin = __version__, "built-in"
        else:
            version = str(getattr(plugin, "__version__", "") or "unknown")
            origin = "registered at run time"
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        out.append(PluginInfo(name, version, origin, tuple(sorted(by_plugin.get(name, ()))),
                              hooks))
    out.sort(key=lambda p: (p.origin != "built-in", p.name))
    return out
