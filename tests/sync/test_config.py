"""The config file: every error with its path, secrets never inline, never echoed."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tracker_bridge.config import default_config_path, load_config, parse_interval
from tracker_bridge.errors import EXIT_BAD_INPUT, ConfigError
from tracker_bridge.plugins.memory import MemoryOptions

from .conftest import POLICY, tracker_entry

REPO = Path(__file__).resolve().parents[2]


def problems_of(write_config, pm, trackers=None, **top) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(trackers, **top), pm=pm)
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value.problems


def _path(where: str) -> str:
    return re.sub(r"^line \d+: ", "", where)


def paths(problems) -> list[str]:
    """The paths of the problems, without the line number each one starts with."""
    return [_path(p) for p, _ in problems]


def test_a_valid_config_loads_with_paths_relative_to_its_folder(write_config, pm,
                                                               tmp_path: Path) -> None:
    cfg = load_config(write_config(poll_interval="90s"), pm=pm)
    assert cfg.policy == tmp_path / "policy.yaml"
    assert cfg.state == tmp_path / "state.sqlite"
    assert cfg.poll_interval == timedelta(seconds=90)
    assert cfg.policy_obj.name == "test-desk"
    t = cfg.tracker("desk")
    assert isinstance(t.validated_options, MemoryOptions)
    assert t.write.timezone == "UTC"
    assert t.secret is None


def test_the_example_config_is_valid(monkeypatch, pm) -> None:
    monkeypatch.setenv("REDMINE_API_KEY", "0123456789abcdef")
    cfg = load_config(REPO / "examples" / "tracker-bridge.yaml", pm=pm)
    assert cfg.trackers and cfg.trackers[0].secret is not None


def test_unknown_keys_are_errors_with_their_path(write_config, pm) -> None:
    probs = problems_of(write_config, pm, [tracker_entry(colour="blue",
                                                         write={"labels": "x", "lables": "y"})],
                        polll_interval="60s")
    assert set(paths(probs)) == {"polll_interval", "trackers[0].colour",
                                 "trackers[0].write.lables"}
    assert all("unknown key" in m for _, m in probs)


def test_errors_carry_their_line_in_the_file(tmp_path: Path, pm) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy: policy.yaml\n"
                   "trackers:\n"
                   "  - name: desk\n"
                   "    backend: memory\n"
                   "    write:\n"
                   "      timezone: Nowhere/Land\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, pm=pm)
    assert info.value.problems[0][0] == "line 6: trackers[0].write.timezone"
    assert f"{cfg}: line 6: trackers[0].write.timezone: 'Nowhere/Land'" in str(info.value)


def test_every_error_is_reported_not_just_the_first(write_config, pm) -> None:
    probs = problems_of(write_config, pm, [
        tracker_entry(write={"timezone": "Mars/Olympus"}),
        tracker_entry("b c", statuses={"paused": ["x"]}),
    ], poll_interval="soon")
    p = {_path(k): v for k, v in probs}
    assert "Mars/Olympus" in p["trackers[0].write.timezone"]
    assert "trackers[1].name" in p
    assert "trackers[1].statuses.paused" in p
    assert "not a duration" in p["poll_interval"]


def test_an_unknown_backend_names_the_installed_ones(write_config, pm) -> None:
    probs = problems_of(write_config, pm, [tracker_entry(backend="jirra")])
    assert paths(probs) == ["trackers[0].backend"]
    assert "'jirra'" in probs[0][1] and "memory" in probs[0][1]


def test_backend_options_are_validated_by_the_backend(write_config, pm) -> None:
    probs = problems_of(write_config, pm, [tracker_entry(options={"instnce": "x"})])
    assert paths(probs) == ["trackers[0].options.instnce"]


def test_duplicate_tracker_names(write_config, pm) -> None:
    probs = problems_of(write_config, pm, [tracker_entry("a"), tracker_entry("b"),
                                           tracker_entry("a")])
    assert paths(probs) == ["trackers[2].name"]
    assert probs[0][0].startswith("line ")  # the line of the second name, not "(top level)"
    assert "'a' is used twice (first at trackers[0])" in probs[0][1]


def test_duplicate_tracker_names_give_the_line_in_the_file(tmp_path: Path, pm) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy: policy.yaml\n"
                   "trackers:\n"
                   "  - {name: desk, backend: memory}\n"
                   "  - {name: other, backend: memory}\n"
                   "  - name: desk\n"
                   "    backend: memory\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, pm=pm)
    assert f"{cfg}: line 5: trackers[2].name: tracker name 'desk' is used twice" in str(info.value)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("policy: a.yaml\npolicy: b.yaml\n", "line 2: policy", "duplicate key (first at line 1)"),
        ("policy: p.yaml\ntrackers:\n  - name: x\n    backend: memory\n    name: y\n",
         "line 5: trackers[0].name", "duplicate key (first at line 3)"),
        ("base: &b {backend: memory}\npolicy: p.yaml\n", "line 1: base", "anchors and aliases"),
        ("policy: p.yaml\n" + "x: " + "[" * 100 + "]" * 100 + "\n", "line 2: x", "nested more than 64"),
        ("policy: p.yaml\npoll_interval: 1e400\n", "line 2: poll_interval", "at most 365d"),
        ("policy: p.yaml\npoll_interval: .nan\n", "line 2: poll_interval", "longer than zero"),
        # found by tests/fuzz: a list here was an AttributeError traceback
        ("policy: p.yaml\npoll_interval: [1]\n", "line 2: poll_interval", "is not a duration"),
        ("policy: p.yaml\npoll_interval: 1" + "0" * 400 + "\n", "line 2: poll_interval", "at most 365d"),
    ],
)
def test_careless_config_files_are_refused_with_line_and_path(tmp_path: Path, pm, text: str,
                                                              where: str, message: str) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(cfg, pm=pm)
    assert info.value.source == str(cfg)
    assert info.value.problems[0][0].startswith(where), info.value.problems
    assert message in info.value.problems[0][1]


def test_config_files_too_large_or_not_text_are_refused(tmp_path: Path, pm) -> None:
    cfg = tmp_path / "c.yaml"
    with cfg.open("wb") as fh:
        fh.truncate(5 * 1024 * 1024)  # sparse: 5 MiB of NULs
    with pytest.raises(ConfigError) as info:
        load_config(cfg, pm=pm)
    assert "larger than 4 MiB" in str(info.value) and str(cfg) in str(info.value)
    cfg.write_bytes(b"policy: p.yaml\nname: caf\xe9\n")  # Latin-1
    with pytest.raises(ConfigError) as info:
        load_config(cfg, pm=pm)
    assert info.value.problems == [
        ("line 2", "not UTF-8 text: byte 0xe9 at byte offset 24 (save the file as UTF-8)")]


def test_a_secret_file_is_read_with_a_cap_and_never_shown(write_config, pm, tmp_path: Path) -> None:
    (tmp_path / "big.key").write_bytes(b"zqxj" * (17 * 1024))
    (tmp_path / "latin.key").write_bytes(b"zqxj\xe9")
    for name, message in (("big.key", "larger than 64 KiB"), ("latin.key", "not UTF-8 text")):
        probs = problems_of(write_config, pm, [tracker_entry(credentials={"file": name})])
        assert paths(probs) == ["trackers[0].credentials"]
        assert message in probs[0][1] and "zqxj" not in probs[0][1]


@pytest.mark.parametrize("where", ["tracker", "options", "credentials"])
def test_an_inline_secret_is_refused_and_never_echoed(write_config, pm, where) -> None:
    secret = "9f8e7d6c5b4a-inline-secret"
    if where == "tracker":
        entry, path = tracker_entry(api_key=secret), "trackers[0].api_key"
    elif where == "options":
        entry, path = tracker_entry(options={"password": secret}), "trackers[0].options.password"
    else:
        entry, path = tracker_entry(credentials=secret), "trackers[0].credentials"
    with pytest.raises(ConfigError) as info:
        load_config(write_config([entry]), pm=pm)
    assert paths(info.value.problems) == [path]
    message = str(info.value)
    assert "{env: NAME}" in message and "{file: PATH}" in message
    assert secret not in message


def test_credentials_from_env(write_config, pm, monkeypatch) -> None:
    monkeypatch.setenv("TB_KEY", " abc123 \n")
    cfg = load_config(write_config([tracker_entry(credentials={"env": "TB_KEY"})]), pm=pm)
    assert cfg.trackers[0].secret.get_secret_value() == "abc123"
    assert "abc123" not in repr(cfg) and "abc123" not in str(cfg.model_dump())
    monkeypatch.delenv("TB_KEY")
    probs = problems_of(write_config, pm, [tracker_entry(credentials={"env": "TB_KEY"})])
    assert [(_path(w), m) for w, m in probs] == [
        ("trackers[0].credentials", "environment variable TB_KEY is not set")]


def test_credentials_from_a_file_relative_to_the_config(write_config, pm,
                                                        tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("filesecret\n")
    cfg = load_config(write_config([tracker_entry(credentials={"file": "key.txt"})]), pm=pm)
    assert cfg.trackers[0].secret.get_secret_value() == "filesecret"
    (tmp_path / "key.txt").write_text("\n")
    probs = problems_of(write_config, pm, [tracker_entry(credentials={"file": "key.txt"})])
    assert paths(probs) == ["trackers[0].credentials"] and "empty" in probs[0][1]
    probs = problems_of(write_config, pm, [tracker_entry(credentials={"file": "nope.txt"})])
    assert "cannot read" in probs[0][1]


def test_credentials_need_exactly_one_source(write_config, pm) -> None:
    probs = problems_of(write_config, pm, [tracker_entry(credentials={"env": "A", "file": "b"})])
    assert paths(probs) == ["trackers[0].credentials"]
    assert "exactly one" in probs[0][1]


def test_policy_errors_name_the_policy_file(write_config, pm, tmp_path: Path) -> None:
    path = write_config()
    (tmp_path / "policy.yaml").write_text(POLICY.replace("response: 1h,", "response: 1x,"))
    with pytest.raises(ConfigError) as info:
        load_config(path, pm=pm)
    assert info.value.source.endswith("policy.yaml")
    assert "classes.high.response" in str(info.value)


def test_a_missing_policy_file(write_config, pm, tmp_path: Path) -> None:
    path = write_config(policy="missing.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path, pm=pm)
    assert info.value.problems[0][0] == "policy" and "missing.yaml" in info.value.problems[0][1]


def test_yaml_syntax_errors_give_the_line(tmp_path: Path, pm) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("policy: p.yaml\ntrackers: [\n  {name: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(p, pm=pm)
    assert "line" in info.value.problems[0][0]


def test_a_missing_config_file_says_how_to_give_one(tmp_path: Path, pm) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", pm=pm)
    assert "--config" in str(info.value)


def test_default_config_path_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRACKER_BRIDGE_CONFIG", raising=False)
    assert default_config_path() == Path("tracker-bridge.yaml")
    monkeypatch.setenv("TRACKER_BRIDGE_CONFIG", str(tmp_path / "x.yaml"))
    assert default_config_path() == tmp_path / "x.yaml"


def test_tracker_lookup_by_name(write_config, pm) -> None:
    cfg = load_config(write_config(), pm=pm)
    with pytest.raises(ConfigError, match="no tracker named 'nope'"):
        cfg.tracker("nope")


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h30m", 5400),
                                               ("1.5h", 5400), (45, 45), ("90", 90)])
def test_poll_intervals(text, seconds) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "-5s", "5 parsecs", "m5", True])
def test_bad_poll_intervals(text) -> None:
    with pytest.raises(ValueError):
        parse_interval(text)


def test_plan_for_project(write_config, pm) -> None:
    cfg = load_config(write_config([tracker_entry(plan="essentials",
                                                  project_plans={"icu": "premium"})]), pm=pm)
    t = cfg.trackers[0]
    assert t.plan_for("icu") == "premium" and t.plan_for("ward") == "essentials"
    assert yaml.safe_dump  # the config shape round-trips through YAML in write_config
