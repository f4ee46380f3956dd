"""The error types users and the daemon see.

Exit codes (docs/cli.md): 0 success, 1 the work ran but found problems (a tracker
unreachable, a write refused), 2 bad input (config, policy, arguments, ticket file).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2


class TrackerBridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    exit_code = EXIT_PROBLEMS


class InputError(TrackerBridgeError):
    """Bad input from the user: shown without a traceback, exit status 2."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """An invalid policy or config file.

    ``problems`` holds ``(path, message)`` pairs, the first error first; ``source`` names
    the file. ``str()`` gives one line per problem: ``FILE: path: message``.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}: {m}" if p else f"{source}: {m}"
                                   for p, m in problems))


class BackendError(TrackerBridgeError):
    """A tracker failed. ``retryable`` tells the daemon whether to try again later."""

    retryable = True

    def __init__(self, tracker: str, message: str) -> None:
        super().__init__(f"{tracker}: {message}")
        self.tracker = tracker


class BackendUnavailable(BackendError):
    """Connection refused, timeout, 5xx or 429: retry with backoff."""

    def __init__(self, tracker: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(tracker, message)
        self.retry_after = retry_after


class BackendAuthError(BackendError):
    """Credentials refused (401/403): stop polling this tracker until an admin acts."""

    retryable = False


class TicketWriteRejected(BackendError):
    """The tracker refused a write to one ticket (e.g. 422): record it, go on with the rest."""

    retryable = False

    def __init__(self, tracker: str, key: str, message: str) -> None:
        super().__init__(tracker, f"ticket {key}: {message}")
        self.key = key


class TicketNotFound(BackendError):
    """``fetch_ticket`` asked for a key the tracker does not have (deleted or not visible)."""

    retryable = False

    def __init__(self, tracker: str, key: str, message: str = "no such ticket") -> None:
        super().__init__(tracker, f"ticket {key}: {message}")
        self.key = key


class SyncSafetyError(TrackerBridgeError):
    """A tracker suddenly returned no open tickets where the store holds many."""


class StoreError(TrackerBridgeError):
    """The state store cannot be used right now (locked by another process, disk full)."""
