"""Fixtures: a fake Bugzilla on ``responses``, a real Bugzilla 5.2 (``real_*``), and backends
configured like the bridge does."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tracker_bridge.config import parse_config
from tracker_bridge.manager import collect_registry, get_plugin_manager
from tracker_bridge.plugins.bugzilla import BugzillaBackend

from .fake import BASE, KEY, FakeBugzilla

PAYLOADS = Path(__file__).parent / "payloads"
KEY_ENV = "TB_TEST_BUGZILLA_KEY"


def payload(name: str) -> Any:
    """A payload file: an example from Bugzilla 5.0's REST documentation."""
    data = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    data.pop("_source", None)  # where the example comes from (see each test's docstring)
    return data


def tracker_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "name": "clinic-bz",
        "backend": "bugzilla",
        "url": BASE,
        "credentials": {"env": KEY_ENV},
        "projects": ["Clinic"],
        "plan": "essentials",
        "project_plans": {"Lab": "premium"},
        "fields": {"priority": "priority", "severity": "severity", "impact": "cf_impact",
                   "plan": "cf_support_plan", "component": "component", "version": "version"},
        "statuses": {"waiting": ["UNCONFIRMED"]},
        "write": {"response_due": "cf_sla_response_due",
                  "resolution_due": "cf_sla_resolution_due",
                  "labels": "keywords", "notes": "comment", "timezone": "UTC"},
        "options": {"overlap_seconds": 60},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(section.get(k), dict):
            section[k] = {**section[k], **v}
        else:
            section[k] = v
    return section


@pytest.fixture
def fake() -> Iterator[FakeBugzilla]:
    bz = FakeBugzilla()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        bz.install(rsps)
        yield bz


@pytest.fixture
def make_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BugzillaBackend]]:
    """Build a backend the way the bridge does: a config section through the plugin registry."""
    monkeypatch.setenv(KEY_ENV, KEY)
    made: list[BugzillaBackend] = []

    def make(**overrides: Any) -> BugzillaBackend:
        pm = get_plugin_manager(load_entrypoints=False)
        cfg = parse_config({"policy": "unused.yaml", "trackers": [tracker_section(**overrides)]},
                           pm=pm, load_policy=False)
        tracker = cfg.trackers[0]
        cls = collect_registry(pm).get(tracker.backend)
        assert cls is BugzillaBackend, "the bugzilla backend is not registered through the hook"
        backend = cls.from_config(tracker)
        assert isinstance(backend, BugzillaBackend)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()


@pytest.fixture
def backend(fake: FakeBugzilla, make_backend: Callable[..., BugzillaBackend]
            ) -> BugzillaBackend:
    return make_backend()


# -- a real Bugzilla 5.2 (.ci/install-bugzilla.sh; tests/bugzilla/server.py) ------------------

REAL_KEY_ENV = "TB_TEST_BUGZILLA_REAL_KEY"
POLICY = Path(__file__).resolve().parents[2] / "examples" / "policies" / "care-pathway.yaml"


def _require_real() -> None:
    from .server import INSTALL_SCRIPT, is_installed, why_not_installable

    if is_installed():
        return
    why = why_not_installable()
    msg = (f"the test Bugzilla 5.2 is not built on this machine; run `sudo bash "
           f"{INSTALL_SCRIPT.relative_to(INSTALL_SCRIPT.parents[1])}`"
           + (f" ({why})" if why else " (Debian packages, about 35 s after them)"))
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI is set but {msg}", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def real_bugzilla() -> Iterator[Any]:
    """The running test Bugzilla (started here when installed but stopped; then stopped at
    the end), with every label of the example policy as a keyword."""
    from .server import CI_DIR, BugzillaServer, env

    _require_real()
    server = BugzillaServer()
    server.start()
    from tracker_bridge.policyfile import load_policy

    have = {v["name"] for f in server.call("GET", "field/bug", params={"names": "keywords"})
            ["fields"] for v in f["values"]}
    missing = [k for k in load_policy(POLICY).all_labels() if k not in have]
    if missing:  # the policy gained a label since the server was built
        subprocess.run(["perl", str(CI_DIR / "bz-data.pl"), *missing], cwd=env()["BZ_SRC"],
                       env={**os.environ, **env()}, check=True, capture_output=True,
                       timeout=300)
    yield server
    server.close()
    if server.started_here:
        server.stop()


@pytest.fixture(scope="session")
def real_product(real_bugzilla: Any) -> str:
    """A product of this test session's own (bugs of other sessions never show)."""
    name = f"tb{int(time.time()) % 10**6:06d}{secrets.token_hex(2)}"
    real_bugzilla.create_product(name)
    return name


def real_section(url: str, products: list[str], **overrides: Any) -> dict[str, Any]:
    """The tracker section a user of the test server would write (the README's example)."""
    section: dict[str, Any] = {
        "name": "clinic-bugzilla",
        "backend": "bugzilla",
        "url": url,
        "credentials": {"env": REAL_KEY_ENV},
        "projects": products,
        "plan": "essentials",
        "fields": {"priority": "priority", "severity": "severity", "impact": "cf_impact",
                   "plan": "cf_support_plan", "component": "component",
                   "version": "version"},
        "statuses": {"new": ["UNCONFIRMED", "CONFIRMED"], "waiting": ["NEEDINFO"],
                     "resolved": ["RESOLVED"], "closed": ["VERIFIED"]},
        "write": {"response_due": "cf_sla_response_due",
                  "resolution_due": "cf_sla_resolution_due",
                  "labels": "keywords", "notes": "comment", "timezone": "UTC"},
        # the shortest overlap: a ticket leaves the re-read window within seconds
        "options": {"overlap_seconds": 2, "timeout_seconds": 60, "server_timezone": "UTC"},
    }
    section.update(overrides)
    return section


@pytest.fixture
def make_real_backend(real_bugzilla: Any, real_product: str, monkeypatch: pytest.MonkeyPatch
                      ) -> Iterator[Callable[..., BugzillaBackend]]:
    monkeypatch.setenv(REAL_KEY_ENV, real_bugzilla.bot_key)
    made: list[BugzillaBackend] = []

    def make(**overrides: Any) -> BugzillaBackend:
        pm = get_plugin_manager(load_entrypoints=False)
        cfg = parse_config({"policy": str(POLICY), "trackers": [
            real_section(real_bugzilla.url, [real_product], **overrides)]},
            pm=pm, load_policy=False)
        backend = BugzillaBackend.from_config(cfg.trackers[0])
        assert isinstance(backend, BugzillaBackend)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()
