"""The Trac backend passes the contract every backend passes (tracker_bridge.testing), on a
real Trac 1.6 environment created by ``trac-admin initenv``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tracenv import TracPerson, make_env, require_trac, trac_backend

from tracker_bridge.backend import Backend
from tracker_bridge.testing import BackendContract


@pytest.fixture(scope="module")
def trac_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_trac()
    return make_env(tmp_path_factory.mktemp("trac") / "contract")


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
