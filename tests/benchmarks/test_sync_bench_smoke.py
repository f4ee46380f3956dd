"""Smoke test: benchmarks/sync_bench.py on a tiny configuration against the real Redmine.

Three tickets and a 200-ticket store go through the same code path as the full run (its own
Redmine process on a free port, one rails-runner setup, the counted cycles, the memory child
processes). The figures' lines must be printed, and the requests the benchmark counted must
show what a sync does: writes in the first sync, none in the echo and steady-state cycles.
Timings are never checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redmine.server import INSTALL_SCRIPT, is_installed

pytestmark = pytest.mark.redmine

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sync_bench.py"
TICKETS = 3
NUMBER = r"[\d,]+(?:\.\d+)?"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    if not is_installed():
        msg = f"Redmine is not installed on this machine; run `sudo {INSTALL_SCRIPT}`"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("sync-bench") / "figures.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", str(TICKETS), "--memory-tickets", "200",
         "--port", "0", "--json", str(out)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout, json.loads(out.read_text())


def row(cycle: str) -> re.Pattern[str]:
    """A figures line: size, cycle, seconds, in HTTP, 6 request counts, fetched, written, notes."""
    counts = r"\s+".join([NUMBER] * 6)
    return re.compile(rf"^\s+{TICKETS}\s+{re.escape(cycle)}\s+{NUMBER}\s+{NUMBER}\s+{counts}"
                      rf"\s+\S+\s+{NUMBER}\s+{NUMBER}$", re.M)


def test_prints_the_machine_and_every_figure(bench: tuple[str, dict]) -> None:
    out, _ = bench
    for prefix in ("machine: ", "python: ", "redmine: ", "setup: ", "run: "):
        assert re.search("^" + prefix + r"\S", out, re.M), f"no {prefix!r} line in:\n{out}"
    assert re.search(r"^redmine: \d+\.\d+\.\d+", out, re.M), out
    assert re.search(rf"in one rails runner call: {NUMBER} s", out), out
    for cycle in ("first sync", "echo", "steady", "steady, new backend"):
        assert row(cycle).search(out), f"no figures line for {cycle!r} in:\n{out}"
    assert len(row("steady").findall(out)) == 2, out
    assert re.search(r"^memory: a sync process whose state store holds 200 open tickets",
                     out, re.M), out
    assert re.search(rf"^  ru_maxrss: {NUMBER} MiB after imports", out, re.M), out
    assert re.search(rf"^  tracemalloc .*: peak {NUMBER} MiB", out, re.M), out


def test_counted_requests_show_writes_only_in_the_first_sync(bench: tuple[str, dict]) -> None:
    _, figures = bench
    cycles = {(c["cycle"], i): c for i, c in enumerate(figures["cycles"])}
    by_name: dict[str, list[dict]] = {}
    for (name, _), c in sorted(cycles.items(), key=lambda kv: kv[0][1]):
        by_name.setdefault(name, []).append(c)
    assert all(c["errors"] == [] for c in figures["cycles"]), figures["cycles"]

    [first] = by_name["first sync"]
    # every ticket was written (one PUT each at least), and each was read with its journals
    assert first["written"] == TICKETS
    assert first["requests"]["PUT"] >= TICKETS, first
    assert first["requests"]["GET issue"] >= TICKETS, first

    [echo] = by_name["echo"]
    assert echo["fetched"] == TICKETS  # the bridge's own writes come back once...
    assert echo["requests"]["PUT"] == 0 and echo["written"] == 0, echo  # ...and cause none

    steady = by_name["steady"] + by_name["steady, new backend"]
    assert len(steady) == 3
    for c in steady:
        assert c["requests"]["PUT"] == 0, c
        assert c["requests"]["other"] == 0, c  # no POST or DELETE either
        assert c["requests"]["GET issue"] == 0, c  # nothing changed: no issue is read
        assert c["requests"]["GET list"] == 1, c  # the floor: one read of the one project
        assert c["written"] == 0 and c["fetched"] == 0, c
    # a daemon's warm backend needs nothing but that read
    assert all(c["total"] == 1 for c in by_name["steady"]), by_name["steady"]


def test_memory_figures_come_from_a_store_of_open_tickets(bench: tuple[str, dict]) -> None:
    _, figures = bench
    m = figures["memory"]
    assert m["rss"]["open_in_store"] == m["tracemalloc"]["open_in_store"] == 200
    assert m["rss"]["rss_peak_mib"] >= m["rss"]["rss_after_imports_mib"] > 0
    assert m["tracemalloc"]["traced_peak_mib"] > 0
