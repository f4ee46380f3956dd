"""The whiteboard edit keeps people's text as written and is linear on any whiteboard.

It was two backtracking ``re.sub`` calls per removed word; it is now one pass over runs of
blanks and words. The property test holds it to the old regexes' results on random
whiteboards (the old code is the oracle here, kept in the test)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tracker_bridge.plugins.bugzilla.mapping import edit_whiteboard


def old_edit(text: str, add: list[str], remove: list[str]) -> str:
    out = text
    for word in sorted(set(remove)):
        pat = re.escape(word)
        out = re.sub(rf"\s+{pat}(?=\s|$)", "", out)
        out = re.sub(rf"^{pat}(?:\s+|$)", "", out)
    present = set(out.split())
    new = [w for w in sorted(set(add)) if w not in present]
    if new:
        out = f"{out.rstrip()} {' '.join(new)}" if out.strip() else " ".join(new)
    return out


WORDS = ["sla-high", "sla-breached-response", "[needs-info]", "customer", "a"]
whiteboards = st.lists(st.sampled_from([*WORDS, " ", "  ", "\t", "\n"]), max_size=12).map(
    "".join)


@settings(max_examples=400, deadline=None)
@given(whiteboards, st.lists(st.sampled_from(WORDS)), st.lists(st.sampled_from(WORDS)))
def test_the_same_result_as_before(text: str, add: list[str], remove: list[str]) -> None:
    assert edit_whiteboard(text, add, remove) == old_edit(text, add, remove)


def test_people_words_and_spacing_are_kept() -> None:
    assert edit_whiteboard("customer  sla-high\tother", ["sla-low"], ["sla-high"]) == (
        "customer\tother sla-low")
    assert edit_whiteboard("sla-high  customer", [], ["sla-high"]) == "customer"


def test_a_hostile_whiteboard_is_one_pass() -> None:
    # blanks and near-miss words by the hundred thousand: a count, never a time
    text = (" " * 50_000 + "sla-highX ") * 4
    out = edit_whiteboard(text, ["sla-low"], ["sla-high"])
    assert out.endswith("sla-low") and out.count("sla-highX") == 4
