"""The user documentation stays inside the repo, its links resolve, and its examples run.

Users install the package and read docs/, README.md and examples/; nothing there may send them
to files they do not have (the team's spec folder, a path on the build machine). The example
tickets must evaluate against the policy docs/cli.md runs them with, and the outputs pasted in
docs/cli.md must still be what the commands print.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracker_bridge.cli import main

ROOT = Path(__file__).resolve().parents[1]

#: what no user-facing file may mention: the spec folder outside the repo, the spec files'
#: names, and machine paths
FORBIDDEN = ("../shared", "POLICY-FORMAT", "SLA-SEMANTICS", "CLI-AND-TICKET", "/work/", "/root/")

#: files users read (generated files under examples/, e.g. the demo's state and key, excluded)
_SKIP_PARTS = {"__pycache__", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".sqlite", ".sqlite3", ".sqlite-wal", ".sqlite-shm")


def _user_files() -> list[Path]:
    # every file of the repo: code messages, docstrings and test fixtures included (this file,
    # which names the words, is left out below)
    targets = ["."]
    try:  # what git would ship: tracked, or new and not ignored (the demo's secrets are)
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *targets],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        files = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.SubprocessError):
        files = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
        for d in ("docs", "examples"):
            files += [p for p in (ROOT / d).rglob("*") if p.is_file()]
    return sorted(
        p
        for p in files
        if p.is_file() and not _SKIP_PARTS & set(p.parts) and not p.name.endswith(_SKIP_SUFFIXES)
        and p != Path(__file__).resolve()
    )


def test_user_files_refer_to_nothing_outside_the_repo() -> None:
    found = []
    for path in _user_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            for word in FORBIDDEN:
                if word in line:
                    found.append(f"{path.relative_to(ROOT)}:{n}: {word!r}: {line.strip()[:120]}")
    assert not found, "user-facing files mention what users do not have:\n" + "\n".join(found)


# -- links ---------------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def _doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", _doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_that_exist(page: Path) -> None:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for m in _LINK.finditer(text):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


# -- the commands in docs/cli.md and README.md ---------------------------------------------------

_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _commands(page: Path) -> list[tuple[list[str], str | None]]:
    """Each ``tracker-bridge ...`` line of the page's sh blocks (continuations joined) with the
    plain output block that follows it, if the next block is one and the sh block held only
    that command."""
    blocks = list(_BLOCK.finditer(page.read_text(encoding="utf-8")))
    out = []
    for i, b in enumerate(blocks):
        if b.group(1) != "sh":
            continue
        lines = b.group(2).replace("\\\n", " ").splitlines()
        cmds = [shlex.split(line) for line in lines if line.startswith("tracker-bridge ")]
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        shown = None
        if len(cmds) == 1 and len(lines) == 1 and nxt is not None and nxt.group(1) in ("", "json"):
            shown = nxt.group(2)
        out += [(c[1:], shown) for c in cmds]
    return out


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TRACKER_BRIDGE_CONFIG", raising=False)
    return CliRunner().invoke(main, args)


def _evaluate_commands() -> list[tuple[list[str], str | None]]:
    return [
        (a, shown)
        for a, shown in _commands(ROOT / "docs" / "cli.md")
        if a and a[0] == "evaluate" and any(x.startswith("examples/tickets/") for x in a)
    ]


def test_every_example_ticket_is_run_in_cli_md() -> None:
    tickets = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "examples" / "tickets").glob("*.json")
    }
    assert len(tickets) >= 3
    run = {x for a, _ in _evaluate_commands() for x in a if x.startswith("examples/tickets/")}
    assert tickets <= run, f"example tickets docs/cli.md never evaluates: {sorted(tickets - run)}"


@pytest.mark.parametrize(
    ("args", "shown"),
    _evaluate_commands(),
    ids=lambda v: " ".join(v)[:90] if isinstance(v, list) else "",
)
def test_example_ticket_evaluates_as_cli_md_shows(
    args: list[str], shown: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(args, monkeypatch)
    if shown is not None and shown.startswith("error:"):  # an example of bad input
        assert result.exit_code == 2, result.output
        assert shown.strip() in result.output
        return
    assert result.exit_code == 0, result.output
    if shown is not None:  # the pasted output is still what the command prints
        assert result.stdout.strip() == shown.strip(), (
            "docs/cli.md shows another output for `tracker-bridge "
            + " ".join(args)
            + "`: run it and paste the new output\n"
            + result.stdout
        )


def _readme_engine_commands() -> list[list[str]]:
    return [
        a
        for a, _ in _commands(ROOT / "README.md")
        if a and a[0] in ("check", "deadline", "evaluate")
    ]


@pytest.mark.parametrize("args", _readme_engine_commands(), ids=lambda a: " ".join(a)[:90])
def test_readme_engine_commands_run_as_written(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(args, monkeypatch)
    assert result.exit_code == 0, result.output


def test_the_complete_policy_in_policy_md_loads() -> None:
    from tracker_bridge.policyfile import load_policy_text

    blocks = [
        b.group(2)
        for b in _BLOCK.finditer((ROOT / "docs" / "policy.md").read_text())
        if b.group(1) == "yaml"
        and re.search(r"^classes:", b.group(2), re.M)
        and b.group(2).startswith("name:")
    ]
    assert blocks, "docs/policy.md has no complete policy"
    for text in blocks:
        load_policy_text(text, "docs/policy.md")
