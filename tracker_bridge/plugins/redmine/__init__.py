"""The Redmine backend plugin (Redmine 5.x REST API through python-redmine): ``backend: redmine``.

- :mod:`.client`: every HTTP call (python-redmine's engine with a timeout, ``Retry-After``
  and the server's ``Date``), keyset paging, cached lookups, errors as
  ``tracker_bridge.errors``;
- :mod:`.mapping`: pure functions, issues to tickets, diffs to ``PUT`` bodies, and the cursor;
- :mod:`.backend`: :class:`RedmineBackend`, joining them, and the hook that registers it.

This package is the plugin module ``tracker_bridge.manager`` registers: it re-exports the
backend class, its options and the hook implementation.
"""

from .backend import RedmineBackend, RedmineOptions, tracker_bridge_register

__all__ = ["RedmineBackend", "RedmineOptions", "tracker_bridge_register"]
