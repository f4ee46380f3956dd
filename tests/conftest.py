"""Settings for the whole test session."""

from __future__ import annotations

import os
import tempfile

from hypothesis import settings

# The holiday cache (tracker_bridge.holidaycache) of this test session lives in a folder of
# its own, not in the user's ~/.cache; subprocesses of the CLI inherit the variable.
os.environ.setdefault("TRACKER_BRIDGE_CACHE_DIR",
                      tempfile.mkdtemp(prefix="tracker-bridge-test-cache-"))

# Property tests: in CI the same examples every run (derandomized: a red CI is a change's
# fault, never a newly drawn example's) and no per-example deadline (a busy machine is not a
# failure); outside CI hypothesis keeps exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
