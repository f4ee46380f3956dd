"""Real Trac environments for the example plugin's tests, and a person editing them.

``make_env`` runs ``trac-admin PATH initenv`` (Trac from PyPI, the same command an admin
runs) and declares the custom fields of README.md in its trac.ini. :class:`TracPerson` edits
tickets through Trac's own ticket model, as Trac's web pages do for a person: not through the
backend. The tests skip, saying why, when Trac or the plugin is not installed and ``$CI`` is
unset; in CI that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PLUGIN_DIR = HERE.parent
POLICY = PLUGIN_DIR / "policy.yaml"
INSTALL = "pip install -e examples/trac-plugin"

#: the [ticket-custom] section README.md asks an admin to add
CUSTOM_FIELDS = {
    "support_plan": "select",
    "support_plan.label": "Support plan",
    "support_plan.options": "|essentials|professional|premium",
    "sla_response_due": "text",
    "sla_response_due.label": "SLA response due",
    "sla_resolution_due": "text",
    "sla_resolution_due.label": "SLA resolution due",
}
#: the tracker section of the tests' config (what README.md shows a user)
FIELDS = {"priority": "priority", "plan": "support_plan", "component": "component"}
WRITE = {"response_due": "sla_response_due", "resolution_due": "sla_resolution_due",
         "labels": "keywords", "notes": "comment", "timezone": "UTC"}


def missing() -> str | None:
    """Why the Trac tests cannot run here, or None."""
    try:
        import trac
        import tracker_bridge_trac  # noqa: F401
    except ModuleNotFoundError as e:
        return f"{e.name} is not installed ({INSTALL} installs the plugin and Trac 1.6)"
    major_minor = tuple(int(x) for x in trac.__version__.split(".")[:2])
    if major_minor < (1, 6):
        return f"Trac {trac.__version__} is installed; the plugin needs 1.6 ({INSTALL})"
    return None


def require_trac(*, module: bool = False) -> None:
    """Skip (outside CI) or fail (CI set) when Trac or the plugin is missing; ``module``:
    called at a test module's top, for the whole module."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def make_env(path: Path, name: str = "clinic") -> Path:
    """A fresh Trac environment at ``path`` (SQLite), with the bridge's custom fields."""
    proc = subprocess.run(
        [sys.executable, "-m", "trac.admin.console", str(path), "initenv", name,
         "sqlite:db/trac.db"], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"trac-admin initenv failed:\n{proc.stdout}\n{proc.stderr}"
    from trac.env import Environment

    env = Environment(str(path))
    for key, value in CUSTOM_FIELDS.items():
        env.config.set("ticket-custom", key, value)
    env.config.save()
    env.shutdown()
    return path


def trac_backend(env_path: Path, base: Path, **extra: Any) -> Any:
    """The backend as the bridge builds it from a validated config. The config needs a
    ``policy`` key even when, as here, the policy is not loaded (``load_policy=False``), and
    a plugin manager that knows the backend: a hermetic one (built-ins only) with this plugin
    registered under its entry point's name."""
    import tracker_bridge_trac

    from tracker_bridge.config import parse_config
    from tracker_bridge.manager import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tracker_bridge_trac, name="trac")
    cfg = parse_config({"policy": "unused.yaml", "trackers": [tracker_section(env_path, **extra)]},
                       base=base, pm=pm, load_policy=False)
    from tracker_bridge_trac.backend import TracBackend

    return TracBackend.from_config(cfg.trackers[0])


def tracker_section(env_path: Path, **extra: Any) -> dict[str, Any]:
    return {"name": "clinic-trac", "backend": "trac", "plan": "essentials",
            "options": {"env": str(env_path), "overlap_seconds": 5},
            "fields": FIELDS, "write": WRITE, **extra}


class TracPerson:
    """Edits tickets as a person does in Trac's web pages (Trac's ticket model)."""

    def __init__(self, env_path: Path, author: str = "nurse") -> None:
        from trac.env import Environment

        self.env = Environment(str(env_path))
        self.author = author

    def _ticket(self, key: str) -> Any:
        from trac.ticket.model import Ticket

        return Ticket(self.env, int(key))

    def create_ticket(self, subject: str, **values: str) -> str:
        from trac.ticket.model import Ticket

        t = Ticket(self.env)
        t["summary"] = subject
        t["reporter"] = "customer"
        t["status"] = "new"
        t["priority"] = values.pop("priority", "major")
        for k, v in values.items():
            t[k] = v
        return str(t.insert())

    def edit(self, key: str, comment: str | None = None, **values: str) -> None:
        t = self._ticket(key)
        for k, v in values.items():
            t[k] = v
        t.save_changes(author=self.author, comment=comment)

    def add_comment(self, key: str, text: str) -> None:
        self.edit(key, text)

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self.edit(key, keywords=" ".join(labels))

    def change_field(self, key: str) -> str:
        t = self._ticket(key)
        self.edit(key, priority="critical" if t["priority"] != "critical" else "minor")
        return "priority"

    def ticket(self, key: str) -> dict[str, Any]:
        t = self._ticket(key)
        return {**t.values, "_changelog": t.get_changelog()}

    def close(self) -> None:
        self.env.shutdown()
