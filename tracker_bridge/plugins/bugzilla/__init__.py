"""The Bugzilla backend plugin (Bugzilla 5.x REST API): ``backend: bugzilla``.

- :mod:`.client`: every HTTP call (the key as a parameter, ``{"error": true}`` decoded into
  ``tracker_bridge.errors``, keyset paging);
- :mod:`.mapping`: pure functions, bugs to tickets and diffs to ``Bug.update`` bodies, and
  the cursor;
- :mod:`.backend`: :class:`BugzillaBackend`, joining the two, and the hook that registers it.

This package is the plugin module ``tracker_bridge.manager`` registers: it re-exports the
backend class, its options and the hook implementation.
"""

from .backend import BugzillaBackend, BugzillaOptions, tracker_bridge_register

__all__ = ["BugzillaBackend", "BugzillaOptions", "tracker_bridge_register"]
