"""Dropped kept-alive connections, against a small local server that behaves as stock Bugzilla
under mod_perl does (``Apache2::SizeLimit`` ends the child after one answer that says
``Keep-Alive``): each connection gets one answer; the next request on it is read and the
connection reset. Deterministic: the server resets only once it holds the next request, so
the client always meets the reset (the same against the real server: test_real_reset.py).
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tracker_bridge.errors import BackendUnavailable, TicketWriteRejected
from tracker_bridge.plugins._http import (
    dropped_connection,
    survive_dropped_connections,
    transport_error,
)
from tracker_bridge.plugins.bugzilla.client import BugzillaClient

KEY = "local-test-key-0123456789"


@dataclass
class Seen:
    connection: int
    index: int  # 0: the first request on its connection
    method: str
    path: str
    answered: bool


@dataclass
class OneAnswerServer:
    """``answers``: how many requests a connection answers before it resets the next (1 like
    stock Bugzilla; 0 resets every request)."""

    answers: int = 1
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    hang: bool = False  # True: read the request and never answer (until the test ends)

    def __post_init__(self) -> None:
        outer = self
        counter = iter(range(1, 10**6))

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                conn_no = next(counter)
                index = 0
                while True:
                    request = _read_request(self.rfile)
                    if request is None:
                        return  # the client closed the connection
                    method, path = request
                    answer = index < outer.answers and not outer.hang
                    with outer.lock:
                        outer.seen.append(Seen(conn_no, index, method, path, answer))
                    if outer.hang:
                        outer.release.wait(60)
                        return
                    if not answer:
                        # RST, not FIN: what the client of a vanished Apache child gets
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   struct.pack("ii", 1, 0))
                        return
                    body = json.dumps({"db_time": "2026-03-02T09:00:00Z", "bugs": [
                        {"id": 1, "changes": {}, "alias": [],
                         "last_change_time": "2026-03-02T09:00:00Z"}]}).encode()
                    self.wfile.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Connection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    self.wfile.flush()
                    index += 1

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def requests_for(self, method: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method]


def _read_request(rfile: object) -> tuple[str, str] | None:
    line = rfile.readline()  # type: ignore[attr-defined]
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    length = 0
    while True:
        header = rfile.readline()  # type: ignore[attr-defined]
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        rfile.read(length)  # type: ignore[attr-defined]
    return method, path.split("?", 1)[0]


@pytest.fixture
def one_answer() -> Iterator[OneAnswerServer]:
    server = OneAnswerServer()
    yield server
    server.close()


def test_the_server_resets_a_plain_session_on_its_second_request(
        one_answer: OneAnswerServer) -> None:
    """Without the adapter: what every run against stock Bugzilla met (the issue)."""
    with requests.Session() as s:
        assert s.get(f"{one_answer.url}/rest/time", timeout=30).status_code == 200
        with pytest.raises(requests.ConnectionError) as info:
            s.get(f"{one_answer.url}/rest/time", timeout=30)
    assert dropped_connection(info.value)
    error = transport_error("clinic-bz", "reading the server time", info.value, timeout=30,
                            base_url=one_answer.url)
    assert isinstance(error, BackendUnavailable) and error.retryable
    assert f"connection reset by {one_answer.url}" in str(error)
    assert "cannot connect" not in str(error)


def test_reads_are_sent_again_on_a_new_connection(one_answer: OneAnswerServer) -> None:
    with survive_dropped_connections(requests.Session()) as s:
        for i in range(4):
            r = s.get(f"{one_answer.url}/rest/bug/{i}", timeout=30)
            assert r.status_code == 200
    gets = one_answer.requests_for("GET")
    answered = [g.path for g in gets if g.answered]
    assert answered == [f"/rest/bug/{i}" for i in range(4)]
    # every request after the first met a dropped connection and went again on a new one
    reset = [g for g in gets if not g.answered]
    assert [g.path for g in reset] == [f"/rest/bug/{i}" for i in range(1, 4)]
    assert all(g.index == 0 for g in gets if g.answered)
    assert len({g.connection for g in gets if g.answered}) == 4


def test_a_write_goes_out_once_on_a_new_connection(one_answer: OneAnswerServer) -> None:
    with survive_dropped_connections(requests.Session()) as s:
        assert s.get(f"{one_answer.url}/rest/bug/1", timeout=30).status_code == 200
        r = s.put(f"{one_answer.url}/rest/bug/1", json={"ids": [1]}, timeout=30)
        assert r.status_code == 200
        assert s.get(f"{one_answer.url}/rest/bug/1", timeout=30).status_code == 200
    puts = one_answer.requests_for("PUT")
    assert len(puts) == 1, "the write was sent more than once"
    assert puts[0].index == 0 and puts[0].answered, \
        "the write went on a pooled connection the server could have dropped"


def test_the_bugzilla_client_reads_and_writes_through_a_dropping_server(
        one_answer: OneAnswerServer) -> None:
    client = BugzillaClient(one_answer.url, KEY, tracker="clinic-bz")
    try:
        for _ in range(3):
            client.db_time()
        client.put_bug(1, {"comment": {"body": "x"}}, "1")
        client.db_time()
    finally:
        client.close()
    assert len(one_answer.requests_for("PUT")) == 1
    assert len([g for g in one_answer.requests_for("GET") if g.answered]) == 4


def test_a_server_that_resets_everything_is_named_as_such(
        one_answer: OneAnswerServer) -> None:
    one_answer.answers = 0
    client = BugzillaClient(one_answer.url, KEY, tracker="clinic-bz")
    try:
        with pytest.raises(BackendUnavailable) as read:
            client.db_time()
        with pytest.raises(BackendUnavailable) as write:
            client.put_bug(1, {"comment": {"body": "x"}}, "1")
    finally:
        client.close()
    for info in (read, write):
        text = str(info.value)
        assert f"connection reset by {one_answer.url}" in text and "cannot connect" not in text
        assert KEY not in text and info.value.retryable
    # a read went three times (the first and two on new connections), the write once only
    assert len(one_answer.requests_for("GET")) == 3
    assert len(one_answer.requests_for("PUT")) == 1
    assert not isinstance(write.value, TicketWriteRejected)


def test_a_refused_connection_still_says_cannot_connect() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        client = BugzillaClient(url, KEY, tracker="clinic-bz")
        with pytest.raises(BackendUnavailable, match=f"cannot connect to {url}"):
            client.db_time()
        client.close()


def test_a_timeout_is_not_sent_again() -> None:
    server = OneAnswerServer(hang=True)
    client = BugzillaClient(server.url, KEY, tracker="clinic-bz", timeout=0.5)
    try:
        with pytest.raises(BackendUnavailable, match=r"timed out after 0\.5 s"):
            client.db_time()
    finally:
        client.close()
        server.close()
    assert len(server.requests_for("GET")) == 1
