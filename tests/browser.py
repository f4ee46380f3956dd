"""Open a page in a real browser for a test: Debian's headless Chromium, driven through
playwright's Python package (``executable_path=/usr/bin/chromium``: playwright never downloads
a browser here). ``.ci/install-chromium.sh`` installs Chromium; ``make test`` runs it.

How to use it (``tests/`` is on ``sys.path`` through tests/conftest.py)::

    from browser import open_page

    def test_my_page(tmp_path):
        with open_page("http://127.0.0.1:8080/status", screenshot=tmp_path / "status.png") as p:
            assert p.page.locator("table#tickets tbody tr").count() == 3
            assert p.errors == []                # no uncaught exception, no console error
            assert p.external == []              # nothing fetched from outside
            html = p.dom                          # the rendered DOM, as HTML

:func:`open_page` skips the test with the reason when Chromium (or playwright) is missing
and ``$CI`` is unset, and fails it when ``CI`` is set. The page has loaded (``load`` event)
when the block starts; ``p.page`` is the playwright ``Page`` for anything more (clicks,
``wait_for_selector`` with a generous timeout, ``evaluate``). The screenshot, when asked
for, is taken at the end of the block (so it shows what the test left on the page), full
page, at ``size``; keep it under the test's ``tmp_path`` (CI keeps pytest's tmp dirs as
artifacts).

Chromium runs with a fresh profile, ``--no-sandbox`` (root in CI), no GPU, no QUIC, no
first-run, background-networking, component-update or sync traffic. Requests to hosts
other than ``allow_hosts`` (and ``file:``/``data:`` URLs) are aborted and listed in
``p.external``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
#: how long a page may take to load or an element to appear (a loaded 2-core machine)
TIMEOUT_MS = 60_000


def need_chromium() -> str:
    """The Chromium binary; skips (outside CI) or fails (in CI) when it, or playwright, is
    missing."""
    problem = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problem = f"{CHROMIUM} is not installed (bash .ci/install-chromium.sh)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[test]')"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium: {problem}")
        pytest.skip(problem)
    return CHROMIUM


@dataclass
class Loaded:
    """A page open in Chromium, and what happened while it loaded and was used."""

    page: Any
    #: uncaught exceptions (``pageerror``) and console messages of type error
    errors: list[str] = field(default_factory=list)
    #: every console message, as ``type: text``
    console: list[str] = field(default_factory=list)
    #: requests to a host not allowed (aborted)
    external: list[str] = field(default_factory=list)
    #: every URL requested
    requests: list[str] = field(default_factory=list)
    #: dialogs the page opened (``alert``, ``confirm``...), dismissed
    dialogs: list[str] = field(default_factory=list)

    @property
    def dom(self) -> str:
        """The rendered DOM as HTML (what ``--dump-dom`` prints)."""
        return str(self.page.content())


@contextmanager
def open_page(url: str | Path, *, screenshot: Path | None = None,
              size: tuple[int, int] = (1280, 900),
              allow_hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> Iterator[Loaded]:
    """Open ``url`` (a path is opened as a ``file:`` URL) in headless Chromium; see the
    module docstring."""
    exe = need_chromium()
    from playwright.sync_api import sync_playwright

    target = Path(url).resolve().as_uri() if isinstance(url, Path) else url
    profile = tempfile.mkdtemp(prefix="tb-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=exe, headless=True, args=list(FLAGS),
                viewport={"width": size[0], "height": size[1]}, timeout=TIMEOUT_MS)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                loaded = Loaded(page=page)

                def on_console(msg: Any) -> None:
                    loaded.console.append(f"{msg.type}: {msg.text}")
                    if msg.type == "error":
                        loaded.errors.append(f"console: {msg.text}")

                def on_dialog(dialog: Any) -> None:
                    loaded.dialogs.append(f"{dialog.type}: {dialog.message}")
                    dialog.dismiss()

                def route(r: Any) -> None:
                    u = r.request.url
                    loaded.requests.append(u)
                    parts = urlsplit(u)
                    if parts.scheme in ("file", "data", "about", "blob") \
                            or parts.hostname in allow_hosts:
                        r.continue_()
                    else:
                        loaded.external.append(u)
                        r.abort()

                page.on("console", on_console)
                page.on("pageerror", lambda exc: loaded.errors.append(f"page: {exc}"))
                page.on("dialog", on_dialog)
                context.route("**/*", route)
                page.goto(target, wait_until="load")
                yield loaded
                if screenshot is not None:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot), full_page=True)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
