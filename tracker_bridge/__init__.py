"""tracker_bridge: SLA enforcement for the issue trackers teams already run."""

__version__ = "0.1.0"
