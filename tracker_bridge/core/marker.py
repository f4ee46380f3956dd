"""The marker the bridge appends to every note it posts: ``[tracker-bridge:note=KEY]``.

One pattern and one parse function for every place that looks for markers: the engine (a
marked comment is never a response), the KB note (marked comments are left out), the sync
layer (``posted_note_keys``: a note whose key is on the ticket is never posted again) and each
backend (a last look at the comments right before posting). Markers are searched in comment
text that customers write, so the pattern runs on RE2 (:mod:`tracker_bridge.core.saferegex`):
linear time whatever the text.
"""

from __future__ import annotations

from .saferegex import compile_safe

#: a note key: what ``Note.key`` may hold (``breach:response``, ``tier:L3``, ``kb``)
KEY_CHARS = r"[A-Za-z0-9:._\-]+"
#: how the bridge marks the notes it posts, so it never posts one twice (group 1: the key)
NOTE_MARKER_RE = compile_safe(rf"\[tracker-bridge:note=({KEY_CHARS})\]")


def note_marker(key: str) -> str:
    """The marker appended to every note the bridge posts, e.g. ``[tracker-bridge:note=kb]``."""
    return f"[tracker-bridge:note={key}]"


def marker_keys(text: str | None) -> list[str]:
    """The note keys of every marker in ``text``, in order (repeats kept); ``[]`` for none."""
    if not text:
        return []
    return list(NOTE_MARKER_RE.findall(text))
