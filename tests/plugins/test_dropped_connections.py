"""Every HTTP backend survives a server or proxy that drops a kept-alive connection after an
answer (stock Bugzilla under mod_perl does it after every answer; proxies and load balancers
after an idle time): a read goes again on a new connection, a write is sent once.

The local server is tests/bugzilla/test_dropped_connections.py's: each connection answers one
request and resets the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from tests.bugzilla.test_dropped_connections import OneAnswerServer
from tracker_bridge.plugins.jira.client import JiraClient
from tracker_bridge.plugins.redmine.client import RedmineClient


@pytest.fixture
def one_answer() -> Iterator[OneAnswerServer]:
    server = OneAnswerServer()
    yield server
    server.close()


def _redmine(url: str) -> requests.Session:
    return RedmineClient("clinic-redmine", url, "k" * 40, timeout=30, verify=True).session


def _jira(url: str) -> requests.Session:
    return JiraClient("clinic-jira", url, token="t" * 24, email="bot@example.org", cloud=True,
                      timeout=30, verify=True).session


@pytest.mark.parametrize("session_of", [_redmine, _jira], ids=["redmine", "jira"])
def test_reads_go_again_and_writes_go_once(one_answer: OneAnswerServer,
                                           session_of: Callable[[str], requests.Session]
                                           ) -> None:
    s = session_of(one_answer.url)
    for _ in range(3):  # each read after the first meets a dropped connection
        assert s.get(f"{one_answer.url}/issues.json", timeout=30).status_code == 200
    gets = one_answer.requests_for("GET")
    assert [g.answered for g in gets] == [True, False, True, False, True]
    # a write goes out on a new connection, so it is answered, and it is sent once
    assert s.put(f"{one_answer.url}/issues/1.json", json={}, timeout=30).status_code == 200
    assert [(p.index, p.answered) for p in one_answer.requests_for("PUT")] == [(0, True)]
