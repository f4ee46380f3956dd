"""What the plugins may import, read from their source (no plugin is run here).

- ``tracker_bridge/backend.py``, the plugin contract, imports only ``tracker_bridge.core`` and
  ``tracker_bridge.errors`` (anything else only for type hints, under ``TYPE_CHECKING``);
- a plugin never imports the config, the sync layer, the store, the daemon or the CLI, nor
  another plugin (``plugins/_http.py`` is the built-ins' shared helper);
- a tracker's ``mapping.py`` (and ``adf.py``) does no I/O: no HTTP library, no clock.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tracker_bridge

PACKAGE = Path(tracker_bridge.__file__).resolve().parent
PLUGINS = PACKAGE / "plugins"
TRACKERS = ("redmine", "jira", "bugzilla")
#: tracker_bridge modules a plugin must not import at run time
FORBIDDEN = ("tracker_bridge.config", "tracker_bridge.sync", "tracker_bridge.store",
             "tracker_bridge.daemon", "tracker_bridge.cli", "tracker_bridge.cli_common",
             "tracker_bridge.cli_trackers", "tracker_bridge.manager",
             "tracker_bridge.policyfile")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def runtime_imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def plugin_files() -> list[Path]:
    return sorted(PLUGINS.rglob("*.py"))


def _is(mod: str, target: str) -> bool:
    return mod == target or mod.startswith(target + ".")


def test_the_backend_contract_imports_only_core_and_errors() -> None:
    ours = {m for m in runtime_imports(PACKAGE / "backend.py") if _is(m, "tracker_bridge")}
    bad = {m for m in ours
           if not (_is(m, "tracker_bridge.core") or _is(m, "tracker_bridge.errors"))}
    assert not bad, bad


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_a_plugin_imports_no_config_sync_cli_or_other_plugin(path: Path) -> None:
    imports = runtime_imports(path)
    assert not {m for m in imports for f in FORBIDDEN if _is(m, f)}
    own = module_name(path).split(".")[:3]  # tracker_bridge.plugins.<plugin>
    for m in imports:
        if _is(m, "tracker_bridge.plugins") and m != "tracker_bridge.plugins":
            other = m.split(".")[:3]
            assert other == own or other[2] == "_http", f"{path.name} imports {m}"


@pytest.mark.parametrize("tracker", TRACKERS)
def test_each_tracker_is_a_package_of_client_mapping_and_backend(tracker: str) -> None:
    pkg = PLUGINS / tracker
    assert {"__init__.py", "client.py", "mapping.py", "backend.py"} <= {
        p.name for p in pkg.glob("*.py")}
    assert not (PLUGINS / f"{tracker}.py").exists()


@pytest.mark.parametrize("path", [p for t in TRACKERS for p in (PLUGINS / t).glob("*.py")
                                  if p.name in ("mapping.py", "adf.py")],
                         ids=lambda p: str(p.relative_to(PLUGINS)))
def test_a_mapping_does_no_io(path: Path) -> None:
    imports = runtime_imports(path)
    for lib in ("requests", "redminelib", "urllib3", "http", "socket", "time", "os"):
        assert not {m for m in imports if _is(m, lib)}, f"{path.name} imports {lib}"
    assert not {m for m in imports if m.endswith(".client")}, f"{path.name} imports a client"
    source = path.read_text(encoding="utf-8")
    for call in ("datetime.now(", ".today(", "time.time(", "monotonic("):
        assert call not in source, f"{path.name} reads the clock ({call})"


@pytest.mark.parametrize("tracker", TRACKERS)
def test_the_plugin_module_the_manager_registers_is_the_package(tracker: str) -> None:
    import importlib

    from tracker_bridge.manager import BUILTIN_PLUGINS

    name = f"tracker_bridge.plugins.{tracker}"
    assert name in BUILTIN_PLUGINS
    module = importlib.import_module(name)
    assert callable(module.tracker_bridge_register)
    assert hasattr(module.tracker_bridge_register, "tracker_bridge_impl")
