"""Find the real Prometheus-family programs memwarden drives, and say how to get a missing one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Program:
    """A program by its names on PATH (Debian's first, then upstream's) and its package."""

    names: tuple[str, ...]
    debian_package: str
    env: str  # an environment variable that points at the binary, for non-Debian installs


PROGRAMS = {
    "prometheus": Program(("prometheus",), "prometheus", "MEMWARDEN_PROMETHEUS"),
    "promtool": Program(("promtool",), "prometheus", "MEMWARDEN_PROMTOOL"),
    "alertmanager": Program(("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager", "MEMWARDEN_ALERTMANAGER"),
    "amtool": Program(("amtool",), "prometheus-alertmanager", "MEMWARDEN_AMTOOL"),
    "node_exporter": Program(
        ("prometheus-node-exporter", "node_exporter"), "prometheus-node-exporter", "MEMWARDEN_NODE_EXPORTER"
    ),
    "process_exporter": Program(
        ("prometheus-process-exporter", "process-exporter"), "prometheus-process-exporter", "MEMWARDEN_PROCESS_EXPORTER"
    ),
    # VictoriaMetrics single-node and its rule engine: the engine-comparison test runs both.
    "victoria_metrics": Program(("victoria-metrics",), "victoria-metrics", "MEMWARDEN_VICTORIA_METRICS"),
    "vmalert": Program(("vmalert",), "victoria-metrics", "MEMWARDEN_VMALERT"),
}


class MissingProgram(Exception):
    """A required program is not installed; the message says how to install it."""


def find(kind: str) -> str | None:
    """Return the path of a program, or None when it is not installed."""
    program = PROGRAMS[kind]
    override = os.environ.get(program.env)
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in program.names:
        path = shutil.which(name)
        if path:
            return path
    return None


def require(kind: str) -> str:
    """Return the path of a program or raise MissingProgram with the command that installs it."""
    path = find(kind)
    if path is None:
        program = PROGRAMS[kind]
        raise MissingProgram(
            f"{program.names[0]} is not installed; install it with "
            f"`sudo apt-get install {program.debian_package}` (Debian/Ubuntu), "
            f"or point {program.env} at an upstream release binary"
        )
    return path
