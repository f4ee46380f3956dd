"""Inputs built to exhaust memory are refused before any large structure is built.

Memory is counted, not timed: tracemalloc's peak while the CLI (or the library) handles the
file must stay far below what the input would expand to (a billion-laughs file expands to
about 10^9 strings; before these fixes one reached 1 GB in 30 s, a config 2.6 GB). The bound,
200 MB, is generous: each refusal below peaks at a few MB.
"""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tracker_bridge.cli_trackers
import tracker_bridge.config
import tracker_bridge.policyfile  # noqa: F401  (imported now: not counted in the peaks below)
from tracker_bridge.errors import ConfigError
from tracker_bridge.inputfile import MAX_TICKET_BYTES, parse_json, parse_yaml, read_json_file

from .helpers import CARE, NOW, memory_config, refused, run

LIMIT = 200 * 1024 * 1024


def peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level is nine aliases of the one before (9^9 strings in the end)."""
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    names = "abcdefghijklmnop"
    for prev, cur in itertools.pairwise(names[: levels + 1]):
        text += f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text


def test_billion_laughs_policy(tmp_path: Path) -> None:
    p = tmp_path / "bomb.yaml"
    p.write_text("name: lol\n" + billion_laughs())
    result, used = peak(lambda: run("check", "--policy", str(p)))
    refused(result, p, "line 2: a", "anchors and aliases")
    assert used < LIMIT


def test_billion_laughs_config(tmp_path: Path) -> None:
    p = tmp_path / "tracker-bridge.yaml"
    p.write_text(memory_config() + billion_laughs())
    result, used = peak(lambda: run("check", "--config", str(p)))
    refused(result, p, "anchors and aliases")
    assert used < LIMIT


@pytest.mark.parametrize("pure", [False, True])
def test_billion_laughs_with_either_parser(pure: bool) -> None:
    """PyYAML's own parser (used where libyaml is missing) refuses it as early."""

    def parse() -> str:
        with pytest.raises(ConfigError) as info:
            parse_yaml(billion_laughs(12), "bomb.yaml", pure=pure)
        return str(info.value)

    message, used = peak(parse)
    assert "bomb.yaml: line 1: a: YAML anchors and aliases" in message
    assert used < LIMIT


def test_a_50_mb_policy_is_refused_unread(tmp_path: Path) -> None:
    p = tmp_path / "big.yaml"
    with p.open("w") as fh:  # a valid policy followed by 50 MB of comment
        fh.write(CARE.read_text())
        chunk = "# " + "x" * 1022 + "\n"
        for _ in range(50 * 1024):
            fh.write(chunk)
    result, used = peak(lambda: run("check", "--policy", str(p)))
    refused(result, p, "larger than 4 MiB")
    assert used < 64 * 1024 * 1024  # only the cap (4 MiB) plus one byte was read


def test_a_50_mb_config_and_a_17_mib_ticket(tmp_path: Path) -> None:
    cfg = tmp_path / "tracker-bridge.yaml"
    with cfg.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    result, used = peak(lambda: run("check", "--config", str(cfg)))
    refused(result, cfg, "larger than 4 MiB")
    assert used < 64 * 1024 * 1024
    t = tmp_path / "t.json"
    t.write_bytes(b'{"tracker": "x", "description": "' + b"x" * (17 * 1024 * 1024) + b'"}')
    refused(run("evaluate", "--policy", str(CARE), str(t), "--now", NOW), t, "larger than 16 MiB")

    def read() -> None:
        with pytest.raises(ConfigError, match="larger than 16 MiB"):
            read_json_file(t, what="ticket", limit=MAX_TICKET_BYTES)

    _, used = peak(read)
    assert used < 64 * 1024 * 1024


def test_deep_nesting_builds_nothing_deep() -> None:
    def both() -> None:
        for parse in (lambda: parse_yaml("x: " + "[" * 1_000_000, "d.yaml"),
                      lambda: parse_json("[" * 1_000_000, "d.json")):
            with pytest.raises(ConfigError, match="nested more than 64 levels deep"):
                parse()

    _, used = peak(both)
    assert used < LIMIT


def test_many_small_values_stop_at_the_node_cap() -> None:
    text = "[" + "0," * 2_000_000 + "]"  # 4 MB: two million values

    def parse() -> None:  # a lower cap than the default 100,000 keeps the test quick
        with pytest.raises(ConfigError, match="line 1: \\[9999\\]: more than 10000 values"):
            parse_yaml(text, "wide.yaml", max_nodes=10_000)

    _, used = peak(parse)
    assert used < LIMIT
