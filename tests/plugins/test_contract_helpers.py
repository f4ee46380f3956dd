"""The helpers the plugin contract gives every backend: the note marker, the deadline fields
and the one "same deadline" comparison (tracker_bridge.backend), and the zone check."""

from __future__ import annotations

import time

import pytest

from tracker_bridge import backend, config
from tracker_bridge.backend import (
    DEADLINE_FIELDS,
    NOTE_MARKER_RE,
    marker_keys,
    note_marker,
    same_deadline,
)
from tracker_bridge.core import verdict
from tracker_bridge.core.zones import iana_zone


def test_one_marker_everywhere() -> None:
    assert verdict.NOTE_MARKER_RE is NOTE_MARKER_RE  # the engine's and KB's names still work
    assert verdict.note_marker is note_marker
    assert note_marker("breach:response") == "[tracker-bridge:note=breach:response]"
    text = f"Missed.\n\n{note_marker('tier:L3')} and {note_marker('kb')} {note_marker('kb')}"
    assert marker_keys(text) == ["tier:L3", "kb", "kb"]
    assert marker_keys(None) == marker_keys("") == []
    assert marker_keys("[tracker-bridge:note=]") == []
    assert marker_keys("[tracker-bridge:note=has space]") == []
    assert NOTE_MARKER_RE.findall(text) == marker_keys(text)


def test_a_lone_surrogate_in_a_comment_does_not_stop_the_search() -> None:
    # a tracker's JSON can carry "\ud800"; RE2 cannot take it: scrubbed, positions kept
    text = "caf\ud800 " + note_marker("kb")
    assert marker_keys(text) == ["kb"]
    m = NOTE_MARKER_RE.search(text)
    assert m is not None and text[m.start():m.end()] == note_marker("kb")


def test_markers_are_found_in_linear_time() -> None:
    hostile = "[tracker-bridge:note=" + "a" * 200_000  # never closed
    t0 = time.perf_counter()
    assert marker_keys(hostile * 5) == []
    assert time.perf_counter() - t0 < 2.0


def test_one_list_of_deadline_fields() -> None:
    assert DEADLINE_FIELDS == ("response_due", "resolution_due")
    assert config.DEADLINE_FIELDS is backend.DEADLINE_FIELDS


@pytest.mark.parametrize(("have", "want", "same"), [
    ("2026-03-02T17:30:00+00:00", "2026-03-02T17:30:00+00:00", True),
    (" 2026-03-02T17:30:00Z ", "2026-03-02T17:30:00+00:00", True),   # Z, blanks
    ("2026-03-02T18:30:00+01:00", "2026-03-02T17:30:00+00:00", True),  # another offset
    ("2026-03-02T17:30:00", "2026-03-02T17:30:00+00:00", False),      # naive: not an instant
    ("2026-03-02T17:31:00+00:00", "2026-03-02T17:30:00+00:00", False),
    (None, None, True), ("", None, True), ("  ", None, True),
    (None, "2026-03-02T17:30:00+00:00", False),
    ("2026-03-02T17:30:00+00:00", None, False),
    ("next Tuesday", "next Tuesday", True), ("next Tuesday", "2026-03-02T17:30:00+00:00", False),
])
def test_same_deadline(have: str | None, want: str | None, same: bool) -> None:
    assert same_deadline(have, want) is same


def test_the_zone_check_names_the_value_and_an_example() -> None:
    assert iana_zone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ValueError, match=r"'Mars/Olympus' is not an IANA time zone "
                                         r"\(e.g. UTC, Europe/Berlin\)"):
        iana_zone("Mars/Olympus", "Europe/Berlin")
    with pytest.raises(ValueError, match="Europe/London"):
        iana_zone("not a zone")
