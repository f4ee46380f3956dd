"""The backend's requests conform to Atlassian's OpenAPI file (Prism mock server; optional).

Skipped unless ``TB_JIRA_PRISM_URL`` points at a running Prism serving the file::

    npx @stoplight/prism-cli@5 mock -h 127.0.0.1 -p 4010 \\
        path/to/jira-cloud-platform-v3.openapi.json   # Atlassian's published file
    TB_JIRA_PRISM_URL=http://127.0.0.1:4010 python -m pytest tests/jira/test_prism.py

Prism answers every request with Atlassian's examples and refuses one that breaks the
contract (400 for a bad parameter, 422 for a bad body); it keeps no state and checks only
that credentials are present. Its examples are not realistic issues (``updated`` is ``1``
in the search example), so only the requests are judged here, not the mapping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from tracker_bridge.backend import Diff
from tracker_bridge.core.verdict import Note
from tracker_bridge.errors import BackendError
from tracker_bridge.plugins.jira import JiraBackend
from tracker_bridge.plugins.jira.mapping import FieldDef

from .conftest import PAYLOADS

PRISM = os.environ.get("TB_JIRA_PRISM_URL")
pytestmark = pytest.mark.skipif(not PRISM, reason="TB_JIRA_PRISM_URL is not set (no Prism)")


@pytest.fixture
def prism_backend(make_backend: Callable[..., JiraBackend]
                  ) -> tuple[JiraBackend, list[tuple[str, str, int]]]:
    b = make_backend(url=PRISM, projects=["EX"], options={"notify_users": False})
    sent: list[tuple[str, str, int]] = []

    def hook(r: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append((r.request.method, r.request.path_url.split("?")[0], r.status_code))
        return r

    b.session.hooks["response"].append(hook)
    return b, sent


def test_reads_conform(prism_backend: tuple[JiraBackend, list[tuple[str, str, int]]]) -> None:
    b, sent = prism_backend
    cursor = json.dumps({"v": 1, "since": "2026-01-18T06:27:50.429+00:00", "seen": {}})
    # the example's `updated: 1` is refused by the mapping, after the search was accepted
    with pytest.raises(BackendError, match="not a timestamp"):
        b.fetch_changed(cursor)
    b.check(["sla-high"])
    assert ("GET", "/rest/api/3/search/jql", 200) in sent
    assert all(status < 400 for _, _, status in sent), sent


def test_writes_conform(prism_backend: tuple[JiraBackend, list[tuple[str, str, int]]]) -> None:
    b, sent = prism_backend
    # Prism's /field example has no labels or custom fields: use ours
    b._fields = [FieldDef.from_json(d)
                 for d in json.loads((PAYLOADS / "field.json").read_text())]
    b.apply(Diff("EX-1", set_fields={"response_due": "2026-03-02T17:30:00+00:00"},
                 add_labels=frozenset({"sla-high"}), remove_labels=frozenset({"sla-low"})))
    b.apply(Diff("EX-1", notes=(Note("kb", "For the KB."),)))
    assert ("PUT", "/rest/api/3/issue/EX-1", 200) in sent or \
        ("PUT", "/rest/api/3/issue/EX-1", 204) in sent
    assert ("POST", "/rest/api/3/issue/EX-1/comment", 201) in sent
    # and Prism does judge: a body of the wrong shape is refused
    r = b.session.put(f"{PRISM}/rest/api/3/issue/EX-1", json={"update": {"labels": "x"}})
    assert r.status_code == 422
