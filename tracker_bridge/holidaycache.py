"""Public holidays kept on disk between runs, so a command does not load the ``holidays``
package (about a third of a second: it imports every country it knows) to compute dates it
computed before.

The cache is one JSON file, ``holidays-<key>.json`` in ``$TRACKER_BRIDGE_CACHE_DIR``, else
``$XDG_CACHE_HOME/tracker-bridge``, else ``~/.cache/tracker-bridge``. ``<key>`` names the
installed ``holidays`` package (its location and modification time, found without importing
it), so an upgrade starts a fresh file. Nothing here is required: a cache that cannot be read
or written (a read-only home, a service without one) is passed over and the dates are
computed as without it; a damaged file is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from datetime import date
from pathlib import Path

from .core.calendar import holiday_dates

#: a cache file larger than this is not read (it only ever holds a few countries and years)
MAX_CACHE_BYTES = 1 << 20


def cache_dir() -> Path | None:
    """Where the cache lives, or ``None`` when no place is known."""
    explicit = os.environ.get("TRACKER_BRIDGE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "tracker-bridge"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "tracker-bridge" if home else None


def _package_key() -> str | None:
    spec = importlib.util.find_spec("holidays")
    if spec is None or not spec.origin:
        return None
    try:
        mtime = os.stat(spec.origin).st_mtime_ns
    except OSError:
        return None
    return hashlib.sha256(f"{spec.origin}:{mtime}".encode()).hexdigest()[:16]


class HolidayCache:
    """A ``(spec, year) -> dates`` source for :class:`~tracker_bridge.core.calendar.
    BusinessCalendar` that remembers what it computed, in memory and on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._dates: dict[str, list[str]] = {}
        self._loaded = False
        #: dates computed (not found in the cache) in this process, for tests and benchmarks
        self.computed = 0

    @classmethod
    def default(cls) -> HolidayCache:
        where, key = cache_dir(), _package_key()
        return cls(None if where is None or key is None else where / f"holidays-{key}.json")

    def _load(self) -> None:
        self._loaded = True
        if self.path is None:
            return
        try:
            if self.path.stat().st_size > MAX_CACHE_BYTES:
                return
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            self._dates = {k: v for k, v in data.items()
                           if isinstance(k, str) and isinstance(v, list)
                           and all(isinstance(d, str) for d in v)}

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".holidays-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._dates, f, sort_keys=True)
            os.replace(tmp, self.path)  # readers see the old file or the new, never half
        except OSError:
            return

    def __call__(self, spec: str, year: int) -> frozenset[date]:
        if not self._loaded:
            self._load()
        key = f"{spec}|{year}"
        found = self._dates.get(key)
        if found is not None:
            try:
                return frozenset(date.fromisoformat(d) for d in found)
            except ValueError:
                pass  # a damaged entry: computed again below
        dates = frozenset(holiday_dates(spec, year))  # CalendarError for an unknown spec
        self.computed += 1
        self._dates[key] = sorted(d.isoformat() for d in dates)
        self._save()
        return dates


_default: HolidayCache | None = None


def default_cache() -> HolidayCache:
    """The process's cache (built on first use)."""
    global _default
    if _default is None:
        _default = HolidayCache.default()
    return _default
