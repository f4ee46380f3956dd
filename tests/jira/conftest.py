"""Fixtures for the JIRA backend tests: a fake JIRA on ``responses``, backends built from config."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tracker_bridge.plugins.jira import JiraBackend

from .fakejira import BASE, EMAIL, TOKEN, FakeJira

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "policies" / "care-pathway.yaml"
PAYLOADS = Path(__file__).resolve().parent / "payloads"
TOKEN_ENV = "TB_TEST_JIRA_TOKEN"


def payload(name: str) -> Any:
    """A JSON file from tests/jira/payloads (each one's origin is in payloads/README.md)."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def tracker_section(**over: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "name": "acme-jira", "backend": "jira", "url": BASE,
        "credentials": {"env": TOKEN_ENV},
        "projects": ["SD"], "plan": "essentials",
        "project_plans": {"VIP": "premium"},
        "fields": {"priority": "priority", "impact": "cf:Impact", "plan": "cf:Support plan"},
        "statuses": {"waiting": ["Waiting for customer"]},
        "write": {"response_due": "cf:SLA response due",
                  "resolution_due": "cf:SLA resolution due",
                  "labels": "labels", "notes": "comment", "timezone": "UTC"},
        "options": {"email": EMAIL, "deployment": "cloud"},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(section.get(k), dict):
            section[k] = {**section[k], **v}
        else:
            section[k] = v
    return section


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


@pytest.fixture
def fake(rsps: responses.RequestsMock) -> FakeJira:
    return FakeJira().install(rsps)


@pytest.fixture
def make_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., JiraBackend]]:
    """Build a JiraBackend the way the bridge does: config section -> TrackerConfig -> hook."""
    from tracker_bridge.config import parse_config
    from tracker_bridge.manager import collect_registry, get_plugin_manager

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    made: list[JiraBackend] = []

    def make(**over: Any) -> JiraBackend:
        cfg = parse_config({"policy": str(POLICY), "trackers": [tracker_section(**over)]},
                           load_policy=False)
        tracker = cfg.trackers[0]
        cls = collect_registry(get_plugin_manager(load_entrypoints=False)).get("jira")
        assert cls is JiraBackend, "the jira backend is not registered through the hook"
        backend = cls.from_config(tracker)
        assert isinstance(backend, JiraBackend)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()


def calls(rsps: responses.RequestsMock, method: str | None = None,
          path: str | None = None) -> list[Any]:
    """The requests sent, optionally only one method and/or one URL path (no query)."""
    from urllib.parse import unquote, urlsplit

    out = []
    for c in rsps.calls:
        if method and c.request.method != method:
            continue
        if path and unquote(urlsplit(c.request.url).path) != path:
            continue
        out.append(c.request)
    return out


def query(request: Any) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[-1] for k, v in parse_qs(urlsplit(request.url).query).items()}
