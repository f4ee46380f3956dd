"""A private PostgreSQL cluster for the tests (Debian's ``postgresql`` package, no system one).

``start()`` runs initdb into a temporary folder, starts it with pg_ctl on a free port on
127.0.0.1 (as the ``postgres`` user when the tests run as root: initdb refuses root), with a
password superuser; :meth:`PgServer.new_database` makes one database per test, owned by a
password user ``bridge`` as the bridge connects. ``.ci/install-postgresql.sh`` installs the
package when it is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg


def pg_bin() -> Path | None:
    """The folder of initdb and pg_ctl: $TB_PG_BIN, else the newest Debian major version."""
    if os.environ.get("TB_PG_BIN"):
        return Path(os.environ["TB_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running private cluster."""

    bin: Path
    root: Path
    port: int
    superpass: str
    bridge_password: str
    _n: int = field(default=0)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)

    def admin(self, dbname: str = "postgres") -> Any:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               password=self.superpass, dbname=dbname, autocommit=True,
                               connect_timeout=30)

    def new_database(self) -> str:
        """A fresh database owned by ``bridge``; its URL (no password: see bridge_password)."""
        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}" OWNER bridge')
        return f"postgresql://bridge@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                   "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> PgServer:
    """Start a private cluster; RuntimeError saying why when it cannot be."""
    bindir = pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        msg = "PostgreSQL is not installed (bash .ci/install-postgresql.sh)"
        raise RuntimeError(msg)
    root = Path(tempfile.mkdtemp(prefix="tb-pg-"))
    superpass, bridge_pw = secrets.token_hex(12), secrets.token_hex(12)
    pwfile = root / "pw"
    pwfile.write_text(superpass + "\n")
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            msg = "running as root and there is no postgres user to run initdb as"
            raise RuntimeError(msg) from None
        os.chown(root, pg.pw_uid, pg.pw_gid)
        os.chown(pwfile, pg.pw_uid, pg.pw_gid)
    os.chmod(root, 0o700)
    server = PgServer(bindir, root, _free_port(), superpass, bridge_pw)
    r = server._run([str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres",
                     "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                     f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8", "--locale=C"])
    if r.returncode:
        shutil.rmtree(root, ignore_errors=True)
        msg = f"initdb failed: {r.stderr.strip()[-800:]}"
        raise RuntimeError(msg)
    opts = (f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c shared_buffers=32MB")
    r = server._run([str(bindir / "pg_ctl"), "-D", str(server.data), "-l",
                     str(root / "log"), "-o", opts, "-w", "-t", "120", "start"])
    if r.returncode:
        log = (root / "log").read_text(errors="replace")[-800:] \
            if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        msg = f"pg_ctl start failed: {r.stderr.strip()[-400:]} {log}"
        raise RuntimeError(msg)
    try:
        with server.admin() as db:
            db.execute(f"CREATE ROLE bridge LOGIN PASSWORD '{bridge_pw}'")
    except Exception:
        with contextlib.suppress(Exception):
            server.stop()
        raise
    return server
