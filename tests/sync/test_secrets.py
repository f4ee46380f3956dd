"""Credentials never leave the process: every output of every command, and every row of the
state store, grepped for the secret.

Two ways a secret could get out are driven here:
- written into the tracker's URL (``http://admin:S3cret@host``): refused at load, exit 2, the
  message points to ``credentials:`` and does not repeat the URL;
- given properly (from the environment) to a tracker that answers with the request it got
  (headers, query string and URL echoed back in an error page, as a misconfigured proxy
  does): the bridge's messages quote that answer, and the mask must catch it everywhere.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from tracker_bridge.cli import main
from tracker_bridge.masking import mask_secrets, url_has_userinfo

from .conftest import tracker_entry

SECRET = "S3cret-pa55word"
API_KEY = "0123456789abcdef0123456789abcdef01234567"  # Redmine's 40 hex digits


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def store_text(path: Path) -> str:
    """Every value of every table of the store, as one text."""
    if not path.exists():
        return ""
    db = sqlite3.connect(path)
    try:
        out = []
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in db.execute(f"SELECT * FROM {table}"):  # names from sqlite_master
                out.append(" ".join(str(v) for v in row))
        return "\n".join(out)
    finally:
        db.close()


@pytest.mark.parametrize("url", [
    f"http://admin:{SECRET}@127.0.0.1:9",
    f"https://{SECRET}@tracker.example.org/redmine",
    f"http://admin:{SECRET}@[::1]:3000/",
])
def test_credentials_in_the_url_are_refused_and_never_echoed(write_config, tmp_path: Path,
                                                             url: str) -> None:
    path = write_config([tracker_entry(backend="redmine", url=url, options={})])
    outputs = []
    for args in (("check", "--config", str(path)), ("check", "--config", str(path), "--json"),
                 ("sync", "--once", "--config", str(path)),
                 ("sync", "--once", "--config", str(path), "--json"),
                 ("explain", "--config", str(path), "desk:1")):
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        outputs.append(r.output)
    text = "\n".join(outputs)
    assert "trackers[0].url: credentials in the URL" in text
    assert "credentials: {env: NAME} or {file: PATH}" in text
    assert SECRET not in text
    assert SECRET not in store_text(tmp_path / "state.sqlite")


class _Echo(BaseHTTPRequestHandler):
    """A tracker that answers every request with 500 and the request itself in the body."""

    status = 500
    #: how many requests carried the key (proof that the secret was in play)
    keyed: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        if API_KEY in str(self.headers) or API_KEY in self.path:
            type(self).keyed.append(self.path)
        host = self.headers.get("Host", "")
        body = (f"<h1>Internal error</h1><pre>{self.command} http://admin:{SECRET}@{host}"
                f"{self.path}\n{self.headers}</pre>").encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A loopback HTTP server answering with ``handler``; yields its base URL."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def echo_server() -> Iterator[str]:
    with serving(_Echo) as url:
        yield url


@pytest.mark.parametrize("backend", ["redmine", "jira", "bugzilla"])
@pytest.mark.parametrize("status", [500, 401, 422])
def test_a_tracker_echoing_the_key_never_gets_it_out(write_config, tmp_path: Path,
                                                     echo_server: str, status: int,
                                                     backend: str, monkeypatch,
                                                     caplog) -> None:
    monkeypatch.setattr(_Echo, "status", status)
    monkeypatch.setattr(_Echo, "keyed", [])
    path = write_config([tracker_entry(backend=backend, url=echo_server, projects=["DESK"],
                                       credentials={"env": "TB_TEST_KEY"},
                                       options={"timeout_seconds": 5})])
    env = {"TB_TEST_KEY": API_KEY}
    outputs = []
    caplog.set_level("DEBUG")
    for args in (("check", "--config", str(path)), ("check", "--config", str(path), "--json"),
                 ("sync", "--once", "--config", str(path)),
                 ("sync", "--once", "--config", str(path), "--json"),
                 ("explain", "--config", str(path), "desk:1"),
                 ("explain", "--config", str(path), "desk:1", "--json")):
        r = run(*args, env=env)
        assert r.exit_code in (1, 2), (args, r.output)
        outputs.append(r.output)
    text = "\n".join(outputs)
    # the work did run into the echo (not refused before it), with the key in every request
    assert len(_Echo.keyed) >= 4, _Echo.keyed
    assert "desk:" in text
    stored = store_text(tmp_path / "state.sqlite")
    assert stored, "the failed cycles and errors are recorded"
    for where, blob in (("output", text), ("store", stored), ("logs", caplog.text)):
        assert API_KEY not in blob, where
        assert SECRET not in blob, where
    json.loads(outputs[3])  # the JSON output is still one JSON document


@pytest.mark.parametrize("text", [
    f"cannot connect to http://admin:{SECRET}@127.0.0.1:3000/issues.json",
    f"GET https://{SECRET}@host/x",
    f"GET /issues.json?key={SECRET}&limit=100",
    f"GET /rest/bug?Bugzilla_api_key={SECRET}",
    f"{{'X-Redmine-API-Key': '{SECRET}', 'Accept': 'json'}}",
    f"Authorization: Bearer {SECRET}",
    f"token {API_KEY} refused",
])
def test_mask_secrets_catches_every_credential_shape(text: str) -> None:
    masked = mask_secrets(text)
    assert SECRET not in masked and API_KEY not in masked
    assert "***" in masked


def test_mask_secrets_keeps_ordinary_text_and_masks_known_values() -> None:
    plain = "ticket 42: write rejected (422): Subject cannot be blank; see https://host/x?y=1"
    assert mask_secrets(plain) == plain
    assert mask_secrets("the value hunter2-x was refused", ["hunter2-x"]) == (
        "the value *** was refused")
    assert mask_secrets("abc", ["ab"]) == "abc"  # too short to mask by value


def test_mask_secrets_is_linear_on_hostile_text() -> None:
    # the shapes that make a backtracking engine quadratic: counted work, not timed
    for hostile in ("a" * 200_000, "http://" + "a:" * 100_000, "?" + "key" * 60_000,
                    "authorization" * 20_000, "0" * 200_000):
        assert len(mask_secrets(hostile)) <= len(hostile)


@pytest.mark.parametrize(("url", "has"), [
    ("http://127.0.0.1:3000", False), ("https://host/path?a=b@c", False),
    ("http://u:p@host", True), ("https://tok@host/x", True), ("not a url", False),
])
def test_url_has_userinfo(url: str, has: bool) -> None:
    assert url_has_userinfo(url) is has


def test_mask_secrets_takes_text_utf8_cannot_encode() -> None:
    # a lone surrogate: from a non-UTF-8 file name (surrogateescape) or a tracker's JSON
    masked = mask_secrets(f"\udcfe-missing.yaml: GET /x?key={SECRET}")
    assert SECRET not in masked and masked.startswith("\ufffd-missing.yaml")


def test_a_file_name_that_is_not_utf8_is_named_not_a_traceback(tmp_path: Path) -> None:
    r = run("check", "--policy", str(tmp_path / "\udcfe-missing.yaml"))
    assert r.exit_code == 2 and "-missing.yaml: cannot read the policy file" in r.output


@pytest.mark.parametrize(("backend", "status", "body"), [
    ("redmine", 401, ""),
    ("jira", 401, '{"errorMessages": ["Client must be authenticated"], "errors": {}}'),
    # a real Bugzilla 5.2 answers a wrong key with HTTP 400 and error code 306
    ("bugzilla", 400, '{"error": true, "code": 306, "message": "The API key you specified '
                      'is invalid."}'),
])
def test_check_names_a_refused_key_as_a_credentials_problem(
        write_config, monkeypatch, backend: str, status: int, body: str) -> None:
    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Refuse) as url:
        path = write_config([tracker_entry(
            backend=backend, url=url, projects=["DESK"], credentials={"env": "TB_TEST_KEY"},
            options={})])
        r = run("check", "--config", str(path), "--json", env={"TB_TEST_KEY": API_KEY})
    assert r.exit_code == 1, r.output
    (problem,) = json.loads(r.stdout)["trackers"][0]["problems"]
    assert problem["where"] == "credentials", problem
    assert API_KEY not in r.stdout
