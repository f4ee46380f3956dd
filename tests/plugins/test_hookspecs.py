"""Every hook is documented: a docstring, a `:param x:` for each parameter, a `:return:`."""

from __future__ import annotations

import inspect
import types

import pluggy
import pytest

from tracker_bridge import hookspecs
from tracker_bridge.manager import get_plugin_manager


def spec_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    return {name: fn for name, fn in vars(module).items()
            if inspect.isfunction(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")}


def documentation_problems(module: types.ModuleType) -> list[str]:
    problems = []
    for name, fn in spec_functions(module).items():
        if not name.startswith("tracker_bridge_"):
            problems.append(f"{name}: hook names start with tracker_bridge_")
        doc = inspect.getdoc(fn) or ""
        if not doc.strip():
            problems.append(f"{name}: no docstring")
            continue
        sig = inspect.signature(fn)
        for param in sig.parameters.values():
            if f":param {param.name}:" not in doc:
                problems.append(f"{name}: parameter {param.name} is not documented")
            if param.annotation is inspect.Parameter.empty:
                problems.append(f"{name}: parameter {param.name} has no type")
        if ":return:" not in doc:
            problems.append(f"{name}: the return value is not documented")
        if sig.return_annotation is inspect.Signature.empty:
            problems.append(f"{name}: no return type")
    return problems


def test_every_hook_is_documented() -> None:
    assert len(spec_functions(hookspecs)) >= 4
    assert documentation_problems(hookspecs) == []


def test_every_hook_of_the_manager_is_in_hookspecs() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    names = {n for n in dir(pm.hook) if n.startswith("tracker_bridge_")}
    assert names == set(spec_functions(hookspecs))
    assert "tracker_bridge_register" in names


def test_the_documentation_check_catches_an_undocumented_hook() -> None:
    fake = types.ModuleType("fake_specs")
    marker = pluggy.HookspecMarker(hookspecs.PROJECT)

    @marker
    def tracker_bridge_nothing(ticket: str) -> None:
        pass

    @marker
    def tracker_bridge_half(ticket: str, verdict: str) -> str:
        """Half documented.

        :param ticket: the ticket
        """

    fake.tracker_bridge_nothing = tracker_bridge_nothing
    fake.tracker_bridge_half = tracker_bridge_half
    problems = documentation_problems(fake)
    assert "tracker_bridge_nothing: no docstring" in problems
    assert "tracker_bridge_half: parameter verdict is not documented" in problems
    assert "tracker_bridge_half: the return value is not documented" in problems


def test_docs_plugins_md_names_every_hook() -> None:
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
    if not doc.exists():
        pytest.fail("docs/plugins.md is missing")
    text = doc.read_text(encoding="utf-8")
    for name, fn in spec_functions(hookspecs).items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"{name}({params})" in text, f"docs/plugins.md has no heading for {name}"
