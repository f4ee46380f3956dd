"""The Trac backend passes the contract every backend passes (tracker_bridge.testing), on a
real Trac 1.6 environment created by ``trac-admin initenv``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tracenv import TracPerson, make_env, require_trac, tracker_section

from tracker_bridge.backend import Backend
from tracker_bridge.config import parse_config
from tracker_bridge.manager import get_plugin_manager
from tracker_bridge.testing import BackendContract


@pytest.fixture(scope="module")
def trac_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_trac()
    return make_env(tmp_path_factory.mktemp("trac") / "contract")


def trac_backend(env_path: Path, base: Path, **extra: Any) -> Backend:
    """The backend as the bridge builds it: a validated config, the plugin found by its
    entry point (the config needs a ``policy`` key even when, as here, it is not loaded)."""
    import tracker_bridge_trac

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tracker_bridge_trac, name="trac")
    cfg = parse_config({"policy": "unused.yaml", "trackers": [tracker_section(env_path, **extra)]},
                       base=base, pm=pm, load_policy=False)
    from tracker_bridge_trac.backend import TracBackend

    return TracBackend.from_config(cfg.trackers[0])


class TestTracContract(BackendContract):
    @pytest.fixture
    def backend(self, trac_env: Path, tmp_path: Path) -> Iterator[Backend]:
        b = trac_backend(trac_env, tmp_path)
        yield b
        b.close()

    @pytest.fixture
    def contract_tracker(self, trac_env: Path) -> Iterator[TracPerson]:
        person = TracPerson(trac_env)
        yield person
        person.close()
