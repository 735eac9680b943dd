"""Where systemd puts a unit's cgroup: its usual places first, then a bounded walk of the unit tree.

system.slice/<unit>, system-<template>.slice/<unit>@<instance>, a slice's nested parents
(a-b-c.slice lives at a.slice/a-b.slice/a-b-c.slice), or anywhere in the unit tree (user
sessions, machine.slice).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .cgroupfs import Hierarchy, normalise

_UNIT_SEARCH_DEPTH = 8
_UNIT_RETRY_SECONDS = 10.0  # how long a unit that was not found is not searched for again


def unit_name(unit: str) -> str:
    """Return the full unit name: a name without a type suffix is a service."""
    return unit if re.search(r"\.(service|scope|slice|socket|mount|swap)$", unit) else f"{unit}.service"


def unit_candidates(unit: str) -> list[str]:
    """Return the cgroup paths where systemd usually places `unit`, most likely first."""
    if unit.endswith(".slice"):
        # a-b-c.slice lives at a.slice/a-b.slice/a-b-c.slice; -.slice is the root
        stem = unit[: -len(".slice")]
        if stem == "-":
            return ["/"]
        pieces = stem.split("-")
        return ["/" + "/".join("-".join(pieces[: index + 1]) + ".slice" for index in range(len(pieces)))]
    candidates = [f"/system.slice/{unit}"]
    if "@" in unit:
        template = unit.split("@", 1)[0].replace("-", "\\x2d")  # systemd's escape of '-' in a slice name
        candidates.append(f"/system.slice/system-{template}.slice/{unit}")
    return candidates


class UnitLocator:
    """Finds units' cgroups and remembers them; a unit not found is searched for again after a while."""

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        self._units: dict[str, tuple[str | None, float]] = {}  # unit -> (cgroup path, when looked up)

    def path(self, unit: str) -> str | None:
        """The unit's cgroup path below the root, or None while it is not found."""
        full = unit_name(unit)
        tree = self.hierarchy.unit_tree
        if tree is None:
            return None
        cached = self._units.get(full)
        if cached is not None:
            path, when = cached
            if path is not None and (tree / path.lstrip("/")).is_dir():
                return path
            if path is None and time.monotonic() - when < _UNIT_RETRY_SECONDS:
                return None
        path = next((c for c in unit_candidates(full) if (tree / c.lstrip("/")).is_dir()), None)
        if path is None:
            path = search_unit(tree, full)
        self._units[full] = (path, time.monotonic())
        return path


def search_unit(tree: Path, unit: str) -> str | None:
    """Walk the unit tree (breadth first, bounded depth) for a directory named `unit`."""
    level = [tree]
    for _ in range(_UNIT_SEARCH_DEPTH):
        below: list[Path] = []
        for directory in level:
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name == unit:
                                return normalise(str(Path(entry.path).relative_to(tree)))
                            below.append(Path(entry.path))
            except OSError:
                continue
        if not below:
            break
        level = below
    return None
