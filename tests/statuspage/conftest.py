"""The daemon tests' subprocess fixture, for the page served by `tracker-bridge run`."""

from daemon.conftest import start_daemon  # noqa: F401
