"""Settings for the whole test session."""

from __future__ import annotations

import os
import tempfile

# The holiday cache (tracker_bridge.holidaycache) of this test session lives in a folder of
# its own, not in the user's ~/.cache; subprocesses of the CLI inherit the variable.
os.environ.setdefault("TRACKER_BRIDGE_CACHE_DIR",
                      tempfile.mkdtemp(prefix="tracker-bridge-test-cache-"))
