"""A real Bugzilla 5.2 for the tests (built by ``.ci/install-bugzilla.sh``): find it, start it
when it is installed but stopped, stop what we started, and act on it over REST as a person.

Paths, ports and the throwaway keys of this 127.0.0.1-only instance come from
``.ci/bugzilla/env.sh`` (read through bash, so the script and the tests never disagree).

    python -m tests.bugzilla.server start|stop|status
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tracker_bridge.plugins._http import survive_dropped_connections

REPO_ROOT = Path(__file__).resolve().parents[2]
CI_DIR = REPO_ROOT / ".ci" / "bugzilla"
INSTALL_SCRIPT = REPO_ROOT / ".ci" / "install-bugzilla.sh"
TARBALL = REPO_ROOT / "vendor" / "bugzilla-5.2.tar.gz"


class BugzillaNotInstalled(RuntimeError):
    """``.ci/install-bugzilla.sh`` has not built the test Bugzilla on this machine."""


@functools.cache
def env() -> Mapping[str, str]:
    """The variables of ``.ci/bugzilla/env.sh`` (``BZ_URL``, ``BZ_BOT_KEY``, ...)."""
    out = subprocess.run(["bash", "-c", f'. "{CI_DIR}/env.sh" && env -0'],
                         capture_output=True, check=True, timeout=30)
    pairs = (item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("BZ_")}


def is_installed() -> bool:
    root = Path(env()["BZ_ROOT"])
    return (root / ".built").exists() and (root / "apache" / "httpd-modperl.conf").exists()


def why_not_installable() -> str | None:
    """Why ``.ci/install-bugzilla.sh`` cannot run here, or None."""
    if not TARBALL.exists():
        return f"{TARBALL} is missing"
    if os.geteuid() != 0:
        return "not root (the install script installs Debian packages)"
    return None


@dataclass
class BugzillaServer:
    """The test Bugzilla: MariaDB and Apache/mod_perl by the scripts in ``.ci/bugzilla``."""

    started_here: bool = False
    _people: dict[str, requests.Session] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return env()["BZ_URL"]

    @property
    def bot_key(self) -> str:
        """The bridge's API key (user ``sla-bot``, in editbugs)."""
        return env()["BZ_BOT_KEY"]

    def is_up(self, timeout: float = 10) -> bool:
        try:
            r = requests.get(f"{self.url}/rest/version", timeout=timeout,
                             headers={"Connection": "close"})
        except requests.RequestException:
            return False
        return r.status_code == 200 and r.json().get("version", "").startswith("5.2")

    def start(self) -> None:
        """Start whatever is stopped (``start.sh`` waits until Bugzilla answers)."""
        if self.is_up():
            return
        if not is_installed():
            raise BugzillaNotInstalled(f"no test Bugzilla built; run {INSTALL_SCRIPT}")
        proc = subprocess.run(["bash", str(CI_DIR / "start.sh"), "all"], capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not self.is_up():
            raise RuntimeError(f"the test Bugzilla did not start:\n{proc.stdout}{proc.stderr}")
        self.started_here = True

    def stop(self) -> None:
        subprocess.run(["bash", str(CI_DIR / "stop.sh")], capture_output=True, timeout=120,
                       check=False)
        self.started_here = False

    # -- a person acting over REST ------------------------------------------------------------

    def session(self, who: str = "nurse") -> requests.Session:
        """A session of ``nurse`` (a person), ``admin`` or ``bot`` (the bridge's user)."""
        if who not in self._people:
            s = survive_dropped_connections(requests.Session())
            s.params = {"api_key": env()[f"BZ_{who.upper()}_KEY"]}  # type: ignore[assignment]
            self._people[who] = s
        return self._people[who]

    def call(self, method: str, path: str, who: str = "nurse", **kwargs: Any) -> Any:
        r = self.session(who).request(method, f"{self.url}/rest/{path}", timeout=60, **kwargs)
        data = r.json()
        if r.status_code >= 400 or (isinstance(data, dict) and data.get("error")):
            raise RuntimeError(f"{method} /rest/{path}: HTTP {r.status_code} {data}")
        return data

    def create_product(self, name: str, components: tuple[str, ...] = ("Desk",)) -> None:
        """A product of our own (admin), so that tests never see another session's bugs."""
        found = self.call("GET", "product", params={"names": name, "include_fields": "name"})
        if not found.get("products"):
            self.call("POST", "product", who="admin", json={
                "name": name, "description": f"{name} (tests)", "version": "unspecified",
                "has_unconfirmed": True, "is_open": True})
        for comp in components:
            try:
                self.call("POST", "component", who="admin", json={
                    "product": name, "name": comp, "description": comp,
                    "default_assignee": env()["BZ_ADMIN"]})
            except RuntimeError as e:
                if "already" not in str(e):
                    raise

    def create_bug(self, product: str, summary: str, component: str = "Desk",
                   **fields: Any) -> int:
        body = {"product": product, "component": component, "summary": summary,
                "version": "unspecified", "description": f"Reported by ward staff: {summary}.",
                "op_sys": "All", "platform": "All", **fields}
        return int(self.call("POST", "bug", json=body)["id"])

    def update(self, bid: int | str, who: str = "nurse", **fields: Any) -> Any:
        return self.call("PUT", f"bug/{bid}", who=who, json={"ids": [int(bid)], **fields})

    def bug(self, bid: int | str) -> dict[str, Any]:
        return dict(self.call("GET", f"bug/{bid}")["bugs"][0])

    def comments(self, bid: int | str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"bug/{bid}/comment")["bugs"][str(bid)]["comments"])

    def close(self) -> None:
        for s in self._people.values():
            s.close()
        self._people.clear()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in (["start"], ["stop"], ["status"]):
        print("usage: python -m tests.bugzilla.server start|stop|status", file=sys.stderr)
        return 2
    server = BugzillaServer()
    if argv == ["start"]:
        t0 = time.monotonic()
        server.start()
        print(f"{server.url} up ({time.monotonic() - t0:.1f} s)")
    elif argv == ["stop"]:
        server.stop()
        print("stopped")
    else:
        print(f"{server.url} {'up' if server.is_up() else 'down'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
