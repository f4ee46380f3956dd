"""What every benchmark prints first: the machine, the Python, the packages measured.

Shared by core_bench.py, redaction_bench.py and sync_bench.py (each runs as a script, so this
folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_machine(packages: Sequence[str] = ()) -> list[str]:
    """The lines: machine (CPU, cores, load), python, and the versions of ``packages``."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    lines = [
        f"machine: {cpu_model()}; {os.cpu_count()} cores ({usable} usable); load average {load}",
        f"python: {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.platform()}",
    ]
    if packages:
        lines.append("packages: " + ", ".join(f"{d} {version_of(d)}" for d in packages))
    return lines
