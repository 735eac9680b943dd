"""Find a policy component's processes and cgroup: shared by the exporter and the responder.

How each `match` resolves:
  - cmdline: the regular expression is *searched* in the command line, its NUL-separated
    arguments joined with single spaces. Kernel threads (empty command line) and the
    calling process itself never match.
  - pidfile: the pid written in the file (first token), plus all its descendants — a
    pidfile names a service's main process, and its workers are its children.
    A missing, empty or stale pidfile means no processes; that is not an error.
  - cgroup: a path below the cgroup root ("/system.slice/api.service"); its processes are
    those of the cgroup and every cgroup below it.
  - systemd_unit: the unit's cgroup ("api" means "api.service"), looked up where systemd
    places units (system.slice/<unit>, system-<template>.slice/<unit>@<instance>, or anywhere
    in the unit tree, e.g. user sessions), then treated like `cgroup`.

Processes that start or exit while we look are normal: a pid that vanishes mid-read is
simply left out.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memwarden.policy import Component

from . import procfs
from .cgroupfs import Cgroup, Hierarchy, normalise, read_memory

DEFAULT_PROC_ROOT = "/proc"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
_UNIT_SEARCH_DEPTH = 8
_UNIT_RETRY_SECONDS = 10.0  # how long a unit that was not found is not searched for again


@dataclass(frozen=True)
class ComponentTarget:
    """What a component is right now: its live processes and, when it has one, its cgroup."""

    name: str
    kind: str  # how it was matched: cmdline, pidfile, cgroup or systemd_unit
    pids: tuple[int, ...]  # live processes, sorted
    cgroup: Path | None  # the memory-accounting dir: v2 dir, or the v1 memory controller's dir
    cgroup_version: int | None  # 2 or 1, the interface `cgroup` speaks
    cgroup_path: str | None = None  # the cgroup's path below the root ("/system.slice/api.service")
    unified: Path | None = None  # its v2 dir when one exists (v2 or hybrid): cgroup.freeze, cgroup.kill, memory.pressure

    @property
    def found(self) -> bool:
        """True when there is something to measure or act on."""
        return bool(self.pids) or self.cgroup is not None


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


class Resolver:
    """Resolves many components with one look at /proc; keep one across scrapes.

    It caches each process's command line (and which components it matches) by pid and
    the inode of /proc/<pid>, which changes when a pid is reused, so a scrape reads only
    the command lines of processes it has not seen before.
    """

    def __init__(
        self,
        components: Sequence[Component],
        *,
        proc_root: str = DEFAULT_PROC_ROOT,
        cgroup_root: str = DEFAULT_CGROUP_ROOT,
        exclude_pids: Iterable[int] | None = None,
    ) -> None:
        self.components = list(components)
        self.proc_root = proc_root
        self.hierarchy = Hierarchy.detect(cgroup_root)
        self._exclude = set(exclude_pids) if exclude_pids is not None else {procfs.own_pid(proc_root)}
        self._patterns = [
            (component.name, re.compile(component.match.cmdline))
            for component in self.components
            if component.match.cmdline
        ]
        self._matches: dict[int, tuple[int, tuple[str, ...]]] = {}  # pid -> (inode, component names)
        self._units: dict[str, tuple[str | None, float]] = {}  # unit -> (cgroup path, when looked up)

    def resolve_all(self) -> dict[str, ComponentTarget]:
        """Return every component's target, keyed by component name, in policy order."""
        by_cmdline = self._scan_cmdlines() if self._patterns else {}
        parents = None
        targets: dict[str, ComponentTarget] = {}
        for component in self.components:
            kind = component.match.kind() or "cmdline"
            if kind == "cmdline":
                targets[component.name] = ComponentTarget(
                    component.name, kind, tuple(by_cmdline.get(component.name, ())), None, None
                )
            elif kind == "pidfile":
                if parents is None:
                    parents = self._parents()
                pids = self._pidfile_tree(component.match.pidfile or "", parents)
                targets[component.name] = ComponentTarget(component.name, kind, pids, None, None)
            else:
                path = component.match.cgroup if kind == "cgroup" else self._unit_path(component.match.systemd_unit or "")
                cgroup = self.hierarchy.locate(path) if path is not None else None
                targets[component.name] = _cgroup_target(component.name, kind, cgroup)
        return targets

    def resolve(self, component: Component) -> ComponentTarget:
        """Return one component's target (it need not be one of `components`)."""
        if component not in self.components:
            return Resolver(
                [component], proc_root=self.proc_root, cgroup_root=str(self.hierarchy.root), exclude_pids=self._exclude
            ).resolve_all()[component.name]
        return self.resolve_all()[component.name]

    def _scan_cmdlines(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        seen: dict[int, tuple[int, tuple[str, ...]]] = {}
        cache = self._matches
        for pid, inode in procfs.process_entries(self.proc_root):
            cached = cache.get(pid)
            if cached is not None and cached[0] == inode:
                names = cached[1]
            else:
                line = procfs.cmdline(self.proc_root, pid)
                if line is None:
                    continue  # exited between the listing and the read
                names = tuple(name for name, pattern in self._patterns if line and pattern.search(line))
            seen[pid] = (inode, names)
            if names and pid not in self._exclude:
                for name in names:
                    found.setdefault(name, []).append(pid)
        self._matches = seen  # forget processes that have gone
        for pids in found.values():
            pids.sort()
        return found

    def _parents(self) -> dict[int, list[int]]:
        children: dict[int, list[int]] = {}
        for pid, _ in procfs.process_entries(self.proc_root):
            parent = procfs.parent_pid(self.proc_root, pid)
            if parent is not None:
                children.setdefault(parent, []).append(pid)
        return children

    def _pidfile_tree(self, pidfile: str, children: dict[int, list[int]]) -> tuple[int, ...]:
        try:
            token = procfs.read_text(pidfile).split()[0]
            root = int(token)
        except (OSError, IndexError, ValueError):
            return ()
        if root <= 0 or not os.path.isdir(f"{self.proc_root}/{root}"):
            return ()
        tree, queue = {root}, [root]
        while queue:
            for child in children.get(queue.pop(), ()):
                if child not in tree:
                    tree.add(child)
                    queue.append(child)
        return tuple(sorted(tree))

    def _unit_path(self, unit: str) -> str | None:
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
            path = _search_unit(tree, full)
        self._units[full] = (path, time.monotonic())
        return path


def _search_unit(tree: Path, unit: str) -> str | None:
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


def _cgroup_target(name: str, kind: str, cgroup: Cgroup | None) -> ComponentTarget:
    if cgroup is None:
        return ComponentTarget(name, kind, (), None, None)
    return ComponentTarget(
        name,
        kind,
        tuple(cgroup.pids()),
        cgroup.memory,
        cgroup.version,
        cgroup_path=cgroup.path,
        unified=cgroup.unified,
    )


def resolve(
    component: Component, *, proc_root: str = DEFAULT_PROC_ROOT, cgroup_root: str = DEFAULT_CGROUP_ROOT
) -> ComponentTarget:
    """Return one component's live processes and cgroup (a fresh look, no caching)."""
    return Resolver([component], proc_root=proc_root, cgroup_root=cgroup_root).resolve_all()[component.name]


def process_memory_bytes(proc_root: str, pids: Iterable[int], *, pss: bool = False) -> tuple[int, int]:
    """Return (bytes, processes counted): the RSS (or PSS) sum of those pids still alive."""
    read = procfs.pss_bytes if pss else procfs.rss_bytes
    total = counted = 0
    for pid in pids:
        value = read(proc_root, pid)
        if value is None and pss:
            value = procfs.rss_bytes(proc_root, pid)  # no smaps_rollup (kernel < 4.14)
        if value is not None:
            total += value
            counted += 1
    return total, counted


def working_set_bytes(
    target: ComponentTarget,
    *,
    proc_root: str = DEFAULT_PROC_ROOT,
    pss: bool = False,
) -> int | None:
    """Return the working set the exporter publishes as memwarden_component_memory_bytes.

    With a memory-accounting cgroup: usage minus inactive file cache (as cAdvisor counts it).
    Otherwise: the RSS (or, with `pss`, PSS) sum of the target's processes — 0 when a
    process-matched component has no processes. None when a cgroup-matched component has
    no cgroup and no processes (there is nothing to measure).
    """
    if target.cgroup is not None and target.cgroup_version is not None:
        cgroup = Cgroup(
            path=target.cgroup_path or "/",
            memory=target.cgroup,
            version=target.cgroup_version,
            unified=None,
        )
        try:
            memory = read_memory(cgroup)
        except (OSError, ValueError):
            memory = None
        if memory is not None:
            return memory.working_set
    if target.kind in ("cgroup", "systemd_unit") and not target.pids:
        return None
    return process_memory_bytes(proc_root, target.pids, pss=pss)[0]
