"""The JIRA backend plugin: Jira Cloud (REST v3) and Jira Data Center (REST v2), ``backend: jira``.

- :mod:`.client`: every HTTP call, each sent once (no retrying adapter), failures as
  ``tracker_bridge.errors``, search and changelog/comment paging;
- :mod:`.mapping`: pure functions, issues to tickets, diffs to edit and comment bodies, JQL
  and the cursor; :mod:`.adf` the Atlassian Document Format;
- :mod:`.backend`: :class:`JiraBackend`, joining them, and the hook that registers it.

This package is the plugin module ``tracker_bridge.manager`` registers: it re-exports the
backend class, its options and the hook implementation.
"""

from .backend import JiraBackend, JiraOptions, tracker_bridge_register

__all__ = ["JiraBackend", "JiraOptions", "tracker_bridge_register"]
