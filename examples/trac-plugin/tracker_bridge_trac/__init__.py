"""tracker_bridge_trac: the Trac 1.6 backend of tracker_bridge, an example plugin.

Installed with ``pip install -e examples/trac-plugin``; found by the bridge through its
``tracker_bridge`` entry point (see its pyproject.toml). Importing this module does not import
Trac: the backend opens Trac only when it is used, so the bridge's other commands start as
fast with the plugin installed as without.
"""

from __future__ import annotations

from typing import Any

from tracker_bridge.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def tracker_bridge_register(registry: Any) -> None:
    from .backend import TracBackend

    registry.add_backend(TracBackend)
