"""Retrying a tracker call: exponential backoff with jitter (tenacity), ``Retry-After``, stop.

Only :class:`~tracker_bridge.errors.BackendUnavailable` is retried (connection refused, a
timeout, 5xx, 429): the tracker may answer in a moment. Credentials refused, a ticket refused
(422) or a missing ticket are not: repeating them cannot help.

A 429 or 503 with ``Retry-After`` waits exactly that long, if that fits in
``max_retry_after``; a longer one ends the attempt at once (the error goes up and the daemon
schedules that tracker's next cycle no earlier than the server asked, see daemon.py), so one
tracker's long wait never holds the others up.

Reads are retried as they are. A write is retried by the sync layer only after re-fetching the
ticket and recomputing the diff (sync.py), never by repeating the same request: a PUT whose
answer was lost may have been applied, and the note markers on the re-fetched ticket are what
keep a note from being posted twice.

Waiting goes through ``wait`` (``threading.Event.wait`` in the daemon), so a SIGTERM ends a
wait at once; tests inject a fake that records the waits instead of sleeping.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from .errors import BackendUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class CycleStopped(Exception):
    """The daemon was asked to stop while a tracker's cycle was waiting: abandon it."""


def sleep_wait(seconds: float) -> bool:
    """Sleep; return True if asked to stop meanwhile (never, for a plain sleep)."""
    threading.Event().wait(seconds)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How one tracker call is retried inside a cycle.

    :param attempts: tries in all (the first plus the retries)
    :param initial: the first backoff wait in seconds; each next one doubles...
    :param max_wait: ...up to this
    :param jitter: plus a random 0..jitter seconds, so that many bridges restarted together do
        not hit a tracker in step
    :param max_retry_after: the longest ``Retry-After`` waited for inside a cycle
    :param wait: ``wait(seconds) -> stop requested?``: an interruptible sleep
    :param on_retry: called ``(exception, attempt number, seconds)`` before each wait
        (logging, metrics)
    """

    attempts: int = 4
    initial: float = 1.0
    max_wait: float = 30.0
    jitter: float = 1.0
    max_retry_after: float = 120.0
    wait: Callable[[float], bool] = sleep_wait
    on_retry: Callable[[BaseException, int, float], None] | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, attempt: int, exc: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        base = min(self.max_wait, self.initial * 2 ** (attempt - 1))
        return min(self.max_wait, base + self.rng.uniform(0, self.jitter))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self.backoff(state.attempt_number, exc)

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.attempts:
            return True
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        # the server asked for more patience than a cycle has: give up now, it is rescheduled
        return retry_after is not None and retry_after > self.max_retry_after

    def _sleep(self, seconds: float) -> None:
        if self.wait(seconds):
            raise CycleStopped("stop requested while waiting to retry")

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = float(state.upcoming_sleep)
        log.warning("%s (attempt %d of %d); retrying in %.1f s", exc, state.attempt_number,
                    self.attempts, seconds)
        if self.on_retry is not None and exc is not None:
            self.on_retry(exc, state.attempt_number, seconds)

    def retrying(self) -> tenacity.Retrying:
        """A tenacity ``Retrying`` with this policy (iterate it, or call it with a function)."""
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(BackendUnavailable),
            stop=self._stop, wait=self._wait, sleep=self._sleep,
            before_sleep=self._before_sleep, reraise=True)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried on :class:`BackendUnavailable`."""
        result: T = self.retrying()(fn, *args, **kwargs)
        return result

    def attempts_iter(self) -> Iterator[tenacity.AttemptManager]:
        """``for attempt in policy.attempts_iter(): with attempt: ...`` (a retried block)."""
        yield from self.retrying()


#: no retry at all (``sync --once`` keeps its one-shot behaviour)
NO_RETRY = RetryPolicy(attempts=1)
