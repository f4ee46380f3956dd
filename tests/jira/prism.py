"""Prism (Stoplight's OpenAPI mock and validating proxy) serving Atlassian's OpenAPI file.

``.ci/install-prism.sh`` installs Prism 5 from npm into ``/opt/tracker-bridge/prism``; this
module finds it (``TB_PRISM`` names another binary), unpacks the OpenAPI file kept in
``contract/`` (its sha256 checked), starts Prism on a free port, waits until it answers, and
stops it. :class:`Exchanges` records what Prism said of every request a ``requests.Session``
sent through it: Prism lists each broken rule in the ``sl-violations`` response header, with
a ``location`` starting ``request`` (what the backend sent) or ``response`` (what the
upstream or the example answered).

Two modes, both used by test_prism.py:

- ``mock``: Prism answers from the file's own examples (no state);
- ``proxy``: Prism forwards each request to an upstream (the stateful fake JIRA served over
  HTTP by :func:`serve_fake`) and judges the request and the upstream's answer.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .fakejira import FakeJira

HERE = Path(__file__).resolve().parent
SPEC_GZ = HERE / "contract" / "jira-cloud-platform-v3.openapi.json.gz"
#: sha256 of the uncompressed file (contract/README.md)
SPEC_SHA256 = "8fb4f8f81f409b87aab5f73651952c35c97ee0171bf0f194ecb7de74920766d1"
#: where .ci/install-prism.sh puts it
INSTALLED = Path("/opt/tracker-bridge/prism/node_modules/.bin/prism")
#: how long Prism may take to load the 2.5 MB file on a loaded 2-core machine (3 s idle)
START_CEILING_S = 240.0


def prism_binary() -> Path | None:
    """The prism executable: ``$TB_PRISM``, the install script's prefix, or PATH."""
    named = os.environ.get("TB_PRISM")
    if named:
        return Path(named)
    if INSTALLED.is_file() and os.access(INSTALLED, os.X_OK):
        return INSTALLED
    found = shutil.which("prism")
    return Path(found) if found else None


def unpack_spec(dest: Path) -> Path:
    """Atlassian's OpenAPI file, uncompressed into ``dest``, checked against its sha256."""
    data = gzip.decompress(SPEC_GZ.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != SPEC_SHA256:
        msg = (f"{SPEC_GZ.name}: sha256 of the uncompressed file is {digest}, not "
               f"{SPEC_SHA256} (contract/README.md)")
        raise AssertionError(msg)
    out = dest / "jira-cloud-platform-v3.openapi.json"
    out.write_bytes(data)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prism:
    """One Prism process on a free loopback port; :meth:`start` waits until it answers."""

    def __init__(self, binary: Path, spec: Path, log: Path, *, mode: str = "mock",
                 upstream: str | None = None) -> None:
        self.binary, self.spec, self.log = binary, spec, log
        self.mode, self.upstream = mode, upstream
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prism:
        cmd = [str(self.binary), self.mode, "-h", "127.0.0.1", "-p", str(self.port),
               str(self.spec)]
        if self.upstream:
            cmd.append(self.upstream)
        with self.log.open("wb") as out:
            # a session of its own: stop() ends Prism and the node processes it forks
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_CEILING_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prism {self.mode} exited with {self.proc.returncode} "
                                   f"before answering: {self.log_tail()}")
            try:
                # any HTTP answer (404: no path matched) means it listens with the file loaded
                requests.get(f"{self.url}/__tracker_bridge_ready", timeout=5)
                return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prism {self.mode} did not answer within "
                                   f"{START_CEILING_S:.0f} s: {self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"


# -- what Prism said of each request --------------------------------------------------------------

@dataclass
class Exchange:
    """One request sent through Prism, and the rules Prism found broken on either side."""

    method: str
    path: str
    query: str
    status: int
    violations: list[dict[str, Any]] = field(default_factory=list)

    def side(self, where: str) -> list[dict[str, Any]]:
        return [v for v in self.violations if (v.get("location") or [""])[0] == where]

    def __str__(self) -> str:
        q = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{q} -> {self.status}"


class Exchanges(list[Exchange]):
    """Every exchange of the sessions :meth:`watch` hooked, in order."""

    def watch(self, session: requests.Session) -> None:
        def hook(r: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
            raw = r.headers.get("sl-violations")
            url = urlsplit(r.request.url or "")
            self.append(Exchange(str(r.request.method), url.path, url.query, r.status_code,
                                 json.loads(raw) if raw else []))
            return r

        session.hooks["response"].append(hook)

    def request_violations(self) -> list[str]:
        """One line per broken rule of a request the backend sent."""
        return [f"{x}: {v.get('message')} (at {'.'.join(map(str, v.get('location') or ()))})"
                for x in self for v in x.side("request")]


# -- the stateful fake over HTTP (Prism's proxy upstream) ----------------------------------------

@dataclass
class _Request:
    """What FakeJira._handle reads of a request (the shape of ``responses``' request)."""

    method: str
    url: str
    headers: Any  # case-insensitive (a proxy may send them in lower case)
    body: bytes | None


@contextmanager
def serve_fake(fake: FakeJira) -> Iterator[str]:
    """``fake`` answering real HTTP on a free loopback port; yields its base URL."""
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            req = _Request(self.command, f"http://fake{self.path}", self.headers, body)
            with lock:  # the fake is one dict; one request at a time
                status, headers, text = fake._handle(req)
            data = text.encode() if text else b""
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the exchanges are recorded on the client side

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-jira-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
