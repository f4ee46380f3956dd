"""The marker the bridge appends to every note it posts: ``[tracker-bridge:note=KEY]``.

One pattern and one parse function for every place that looks for markers: the engine (a
marked comment is never a response), the KB note (marked comments are left out), the sync
layer (``posted_note_keys``: a note whose key is on the ticket is never posted again) and each
backend (a last look at the comments right before posting). Markers are searched in comment
text that customers write, so the pattern runs on RE2 (:mod:`tracker_bridge.core.saferegex`):
linear time whatever the text. RE2 cannot take a lone surrogate (``"\\ud800"``, which a
tracker's JSON can carry), so the text is scrubbed first (``saferegex.scrub``, one character
for one: positions stay valid), here rather than by every caller.
"""

from __future__ import annotations

from typing import Any

from .saferegex import compile_safe, scrub

#: a note key: what ``Note.key`` may hold (``breach:response``, ``tier:L3``, ``kb``)
KEY_CHARS = r"[A-Za-z0-9:._\-]+"


class _MarkerPattern:
    """The compiled marker pattern (group 1: the key), taking any ``str``."""

    def __init__(self, pattern: str) -> None:
        self._re = compile_safe(pattern)

    @property
    def pattern(self) -> str:
        return str(self._re.pattern)

    def search(self, text: str, *args: Any) -> Any:
        return self._re.search(scrub(text), *args)

    def findall(self, text: str, *args: Any) -> list[Any]:
        return list(self._re.findall(scrub(text), *args))

    def finditer(self, text: str, *args: Any) -> Any:
        return self._re.finditer(scrub(text), *args)


#: how the bridge marks the notes it posts, so it never posts one twice (group 1: the key)
NOTE_MARKER_RE = _MarkerPattern(rf"\[tracker-bridge:note=({KEY_CHARS})\]")


#: every note marker starts so: a comment without it cannot hold one (no RE2 call needed)
MARKER_START = "[tracker-bridge:note="


def is_bridge_note(text: str | None) -> bool:
    """Whether a comment is one of the bridge's own notes (it carries a marker)."""
    return (text is not None and MARKER_START in text
            and NOTE_MARKER_RE.search(text) is not None)


def note_marker(key: str) -> str:
    """The marker appended to every note the bridge posts, e.g. ``[tracker-bridge:note=kb]``."""
    return f"[tracker-bridge:note={key}]"


def marker_keys(text: str | None) -> list[str]:
    """The note keys of every marker in ``text``, in order (repeats kept); ``[]`` for none."""
    if not text:
        return []
    return NOTE_MARKER_RE.findall(text)
