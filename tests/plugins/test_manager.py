"""The plugin manager: built-ins as plugins, third-party plugins through a real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from tracker_bridge.backend import Registry
from tracker_bridge.hookspecs import hookimpl
from tracker_bridge.manager import collect_registry, get_plugin_manager, list_plugins
from tracker_bridge.plugins.memory import MemoryBackend

CLI = [sys.executable, "-c", "from tracker_bridge.cli import main; main()"]

PLUGIN_SOURCE = '''
"""A throwaway third-party plugin, installed through an entry point by the tests."""
import click
from tracker_bridge import hookspecs
from tracker_bridge.plugins.memory import MemoryBackend

__version__ = "1.2.3"

class EchoBackend(MemoryBackend):
    name = "echo"

@hookspecs.hookimpl
def tracker_bridge_register(registry):
    registry.add_backend(EchoBackend)

@hookspecs.hookimpl
def tracker_bridge_register_commands(cli):
    @cli.command("echo-hello")
    def echo_hello():
        """Say hello from the echo plugin."""
        click.echo("hello from echo")
'''


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A minimal installed distribution: a module plus its .dist-info with an entry point."""
    (tmp_path / "tb_echo_plugin.py").write_text(PLUGIN_SOURCE)
    info = tmp_path / "tb_echo_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tb-echo-plugin\n"
                                   "Version: 1.2.3\n")
    (info / "entry_points.txt").write_text("[tracker_bridge]\necho = tb_echo_plugin\n")
    return tmp_path


def test_builtins_are_plugins() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    infos = {p.name: p for p in list_plugins(pm)}
    assert infos["tracker_bridge.plugins.memory"].origin == "built-in"
    assert infos["tracker_bridge.plugins.memory"].backends == ("memory",)
    assert collect_registry(pm).get("memory") is MemoryBackend


def test_entry_point_plugin_is_listed_and_usable(plugin_dir: Path, monkeypatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(plugin_dir))
    pm = get_plugin_manager(load_entrypoints=True)
    infos = {p.name: p for p in list_plugins(pm)}
    assert "echo" in infos
    assert infos["echo"].version == "1.2.3"
    assert infos["echo"].origin == "tb-echo-plugin (entry point)"
    assert infos["echo"].backends == ("echo",)
    # usable: a config naming the backend validates and the backend syncs
    from tracker_bridge.config import parse_config

    cfg = parse_config({"policy": "x.yaml", "trackers": [
        {"name": "e", "backend": "echo", "options": {"instance": "echo-test"}}]},
        base=tmp_path, pm=pm, load_policy=False)
    cls = collect_registry(pm).get("echo")
    assert cls is not None and cls.__module__ == "tb_echo_plugin"
    backend = cls.from_config(cfg.trackers[0])
    assert backend.fetch_changed(None).tickets == []
    # hermetic managers do not see it
    assert "echo" not in {p.name for p in list_plugins(get_plugin_manager(False))}


def test_plugins_command_lists_the_entry_point_plugin_and_its_command(plugin_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([*CLI, "plugins", "--json"],
                         capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows = {p["name"]: p for p in doc["plugins"]}
    assert rows["echo"]["version"] == "1.2.3"
    assert rows["tracker_bridge.plugins.memory"]["origin"] == "built-in"
    text = subprocess.run([*CLI, "plugins"],
                          capture_output=True, text=True, env=env, check=True).stdout
    assert "tb-echo-plugin" in text and "1.2.3" in text
    hello = subprocess.run([*CLI, "echo-hello"],
                           capture_output=True, text=True, env=env, check=False)
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello from echo"
    # and a plugin can be switched off
    env["TRACKER_BRIDGE_DISABLE_PLUGINS"] = "echo"
    doc = json.loads(subprocess.run(
        [*CLI, "plugins", "--json"],
        capture_output=True, text=True, env=env, check=True).stdout)
    assert "echo" not in {p["name"] for p in doc["plugins"]}


def test_a_backend_name_cannot_be_registered_twice() -> None:
    pm = get_plugin_manager(load_entrypoints=False)

    class Impostor(MemoryBackend):
        name = "memory"

    class Plugin:
        @hookimpl
        def tracker_bridge_register(self, registry: Registry) -> None:
            registry.add_backend(Impostor)

    pm.register(Plugin(), name="impostor")
    with pytest.raises(ValueError, match=r"registered twice.*tracker_bridge.plugins.memory.*"
                                         r"impostor"):
        collect_registry(pm)


def test_add_backend_refuses_what_is_not_a_backend() -> None:
    reg = Registry()
    with pytest.raises(TypeError):
        reg.add_backend(dict)  # type: ignore[arg-type]


def test_a_misspelt_hook_fails_at_start() -> None:
    class Typo:
        @hookimpl
        def tracker_bridge_registr(self, registry):  # the typo
            pass

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError, match="tracker_bridge_registr"):
        pm.check_pending()


def test_missing_optional_builtin_is_tolerated(monkeypatch) -> None:
    import tracker_bridge.manager as manager

    monkeypatch.setattr(manager, "BUILTIN_PLUGINS",
                        ("tracker_bridge.plugins.memory", "tracker_bridge.plugins.nonexistent"))
    pm = manager.get_plugin_manager(load_entrypoints=False)
    assert pm.has_plugin("tracker_bridge.plugins.memory")
    assert not pm.has_plugin("tracker_bridge.plugins.nonexistent")


def test_plugin_source_is_valid_python() -> None:
    compile(textwrap.dedent(PLUGIN_SOURCE), "plugin", "exec")
