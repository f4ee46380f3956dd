"""The Trac example plugin's tests (examples/trac-plugin/tests), in the repo's own test run.

The plugin is a separate distribution (``pip install -e examples/trac-plugin``: the plugin
and Trac 1.6 from PyPI); its tests live beside it so that a plugin author can copy the whole
folder. This module imports them so that ``python -m pytest`` from the repo root runs them
too: the contract suite and ``sync --once`` on real Trac environments made by
``trac-admin initenv``. Without the plugin or Trac they skip, naming the install command;
with ``$CI`` set they fail instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLE_TESTS = Path(__file__).resolve().parents[2] / "examples" / "trac-plugin" / "tests"
if str(EXAMPLE_TESTS) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_TESTS))

# the test modules' tests and fixtures, collected here as if written here
from test_trac_contract import TestTracContract, trac_env  # noqa: E402, F401
from test_trac_mapping import (  # noqa: E402, F401
    test_a_keywords_change_that_only_reorders_is_no_label_event,
    test_history_from_changelog_rows,
    test_keywords_split_on_blanks_and_commas_and_keep_their_order,
    test_new_labels_keep_every_other_label_in_place,
    test_the_cursor_keeps_the_pairs_of_the_overlap_window,
    test_to_ticket_reads_fields_deadlines_labels_and_the_default_plan,
    test_trac_times_are_utc_and_naive_ones_refused,
)
from test_trac_setup import (  # noqa: E402, F401
    env_path,
    test_check_names_what_is_wrong,
    test_check_passes_on_a_prepared_environment,
    test_check_refuses_a_field_the_bridge_cannot_write,
    test_errors_name_the_ticket_and_the_environment,
    test_several_notes_are_several_comments_in_order,
    test_the_plugin_is_found_by_its_entry_point,
)
from test_trac_sync import (  # noqa: E402, F401
    person,
    test_sync_writes_state_once_and_keeps_what_people_change,
)


def test_every_example_test_is_collected_here() -> None:
    """A test added to the example's modules is not silently left out of the repo's run."""
    import ast

    here = set(globals())
    for path in sorted(EXAMPLE_TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in tree.body
                 if isinstance(n, ast.FunctionDef | ast.ClassDef)
                 and n.name.startswith(("test_", "Test"))}
        assert names <= here, f"{path.name}: not imported here: {sorted(names - here)}"
