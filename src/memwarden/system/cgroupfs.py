"""The cgroup filesystem: which hierarchy holds memory, where a cgroup lives, what it uses.

Three layouts exist in the wild and all are handled:
  - unified (v2 only): /sys/fs/cgroup is the v2 tree, memory is one of its controllers;
  - legacy (v1 only): /sys/fs/cgroup/memory is the memory controller's own tree;
  - hybrid: v1 controllers (memory among them) plus a v2 tree at /sys/fs/cgroup/unified
    that systemd manages and that carries PSI (memory.pressure) but no memory accounting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .procfs import parse_keyed, read_text
from .psi import read_pressure

# v1 writes "unlimited" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages);
# anything this large is no limit at all.
UNLIMITED_FROM = 1 << 60


@dataclass(frozen=True)
class Hierarchy:
    """Where the cgroup trees of this host are mounted below `root`."""

    root: Path
    unified: Path | None  # the v2 tree (pure v2 or hybrid)
    memory_v1: Path | None  # the v1 memory controller's tree
    systemd_v1: Path | None  # v1 name=systemd tree (legacy layout: where units live)
    memory_on_unified: bool  # v2 has the memory controller

    @classmethod
    def detect(cls, cgroup_root: str | Path) -> Hierarchy:
        root = Path(cgroup_root)
        unified = None
        for candidate in (root, root / "unified"):
            if (candidate / "cgroup.controllers").exists():
                unified = candidate
                break
        memory_on_unified = False
        if unified is not None:
            try:
                memory_on_unified = "memory" in read_text(str(unified / "cgroup.controllers")).split()
            except OSError:
                pass
        memory_v1 = root / "memory"
        systemd_v1 = root / "systemd"
        return cls(
            root=root,
            unified=unified,
            memory_v1=memory_v1 if (memory_v1 / "memory.usage_in_bytes").exists() else None,
            systemd_v1=systemd_v1 if systemd_v1.is_dir() else None,
            memory_on_unified=memory_on_unified,
        )

    @property
    def layout(self) -> str:
        if self.unified is not None and self.unified == self.root:
            return "unified"
        return "hybrid" if self.unified is not None else "legacy"

    @property
    def unit_tree(self) -> Path | None:
        """The tree where systemd places units and scopes."""
        return self.unified or self.systemd_v1 or self.memory_v1

    def locate(self, path: str) -> Cgroup | None:
        """Return the directories of the cgroup at `path` (below the root), or None if it does not exist."""
        relative = normalise(path)
        below = relative.lstrip("/")
        unified = self.unified / below if self.unified is not None else None
        if unified is not None and not unified.is_dir():
            unified = None
        memory: Path | None = None
        version: int | None = None
        if self.memory_on_unified and unified is not None:
            memory, version = unified, 2
        elif self.memory_v1 is not None and (self.memory_v1 / below).is_dir():
            memory, version = self.memory_v1 / below, 1
        legacy_tree = None
        if self.systemd_v1 is not None and (self.systemd_v1 / below).is_dir():
            legacy_tree = self.systemd_v1 / below
        if memory is None and unified is None and legacy_tree is None:
            return None
        return Cgroup(path=relative, memory=memory, version=version, unified=unified, legacy_tree=legacy_tree)

    def own_cgroup(self, proc_root: str) -> Cgroup | None:
        """Return the cgroup holding this process's memory (the container's, when in one)."""
        try:
            lines = read_text(f"{proc_root}/self/cgroup").splitlines()
        except OSError:
            return None
        unified_path = memory_path = None
        for line in lines:
            hierarchy_id, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hierarchy_id == "0" and controllers == "":
                unified_path = path
            elif "memory" in controllers.split(","):
                memory_path = path
        chosen = unified_path if self.memory_on_unified else memory_path or unified_path
        if chosen is None or chosen.startswith("/.."):
            return None  # outside our cgroup namespace's view: nothing readable
        return self.locate(chosen)


def normalise(path: str) -> str:
    """Return `path` as "/a/b" (no trailing slash, "/" for the root)."""
    parts = [part for part in path.strip().split("/") if part and part != "."]
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class Cgroup:
    """One cgroup: its path below the root and its directories in each tree that has it."""

    path: str
    memory: Path | None  # the directory with memory accounting files
    version: int | None  # 2 or 1: which interface `memory` speaks
    unified: Path | None  # its v2 directory (pure v2 or hybrid): PSI, cgroup.freeze, cgroup.kill
    legacy_tree: Path | None = None  # its v1 name=systemd directory (legacy layout)

    def process_tree(self) -> Path | None:
        """The directory whose cgroup.procs (recursively) lists the cgroup's processes."""
        return self.unified or self.legacy_tree or self.memory

    def pids(self) -> list[int]:
        """Return the pids in this cgroup and all cgroups below it."""
        top = self.process_tree()
        if top is None:
            return []
        pids: set[int] = set()
        for directory, _, _ in os.walk(top):
            try:
                text = read_text(os.path.join(directory, "cgroup.procs"))
            except OSError:
                continue  # a child cgroup removed during the walk
            pids.update(int(token) for token in text.split() if token.isdigit())
        return sorted(pids)


@dataclass(frozen=True)
class CgroupMemory:
    """The memory facts of one cgroup, in bytes and counts, the same for v1 and v2."""

    version: int
    usage: int
    limit: int | None  # its own limit; None: unlimited
    swap: int | None  # None: no swap accounting
    stat: dict[str, int] = field(default_factory=dict)  # anon, file, active_file, inactive_file, ...
    events: dict[str, int] = field(default_factory=dict)  # oom, oom_kill, high, max (as available)
    pressure: dict[str, float] | None = None  # PSI totals in seconds ("some", "full")
    inherited_limit: int | None = None  # v1: the tightest limit of it and its ancestors

    @property
    def working_set(self) -> int:
        """Usage minus inactive file cache, as cAdvisor and the kubelet count it."""
        return max(0, self.usage - self.stat.get("inactive_file", 0))


# memory.stat keys published, and their v1 (hierarchical) spellings.
_V1_STAT = {
    "anon": "total_rss",
    "file": "total_cache",
    "active_file": "total_active_file",
    "inactive_file": "total_inactive_file",
    "shmem": "total_shmem",
    "pgmajfault": "total_pgmajfault",
}
_V2_STAT = ("anon", "file", "active_file", "inactive_file", "shmem", "slab_reclaimable", "pgmajfault", "pswpin", "pswpout")


def _read_int(path: Path) -> int | None:
    """Return an integer file's value; None for "max" (v2's spelling of unlimited)."""
    text = read_text(str(path)).strip()
    return None if text == "max" else int(text)


def _limit(value: int | None) -> int | None:
    return None if value is None or value >= UNLIMITED_FROM else value


def _optional(read, *args):  # noqa: ANN001, ANN202 - tiny local helper
    try:
        return read(*args)
    except FileNotFoundError:
        return None


def read_memory(cgroup: Cgroup) -> CgroupMemory | None:
    """Read a cgroup's memory facts; None when it has no memory accounting.

    Raises OSError when the cgroup disappears or a file cannot be read.
    """
    if cgroup.memory is None or cgroup.version is None:
        return None
    pressure = None
    if cgroup.unified is not None:
        pressure = read_pressure(str(cgroup.unified / "memory.pressure"))
    if cgroup.version == 2:
        return _read_v2(cgroup.memory, pressure)
    return _read_v1(cgroup.memory, pressure)


def _read_v2(directory: Path, pressure: dict[str, float] | None) -> CgroupMemory:
    raw = parse_keyed(read_text(str(directory / "memory.stat")))
    stat = {key: raw[key] for key in _V2_STAT if key in raw}
    refaults = [raw[key] for key in ("workingset_refault_anon", "workingset_refault_file") if key in raw]
    if refaults or "workingset_refault" in raw:
        stat["workingset_refault"] = sum(refaults) if refaults else raw["workingset_refault"]
    events = _optional(lambda: parse_keyed(read_text(str(directory / "memory.events"))))
    usage = _optional(_read_int, directory / "memory.current")
    if usage is None:
        # The root of a v2 tree has no memory.current; sum what memory.stat accounts.
        usage = raw.get("anon", 0) + raw.get("file", 0) + raw.get("kernel", raw.get("slab", 0))
    return CgroupMemory(
        version=2,
        usage=usage,
        limit=_limit(_optional(_read_int, directory / "memory.max")),
        swap=_optional(_read_int, directory / "memory.swap.current"),
        stat=stat,
        events={key: value for key, value in (events or {}).items() if key in ("oom", "oom_kill", "high", "max")},
        pressure=pressure,
    )


def _read_v1(directory: Path, pressure: dict[str, float] | None) -> CgroupMemory:
    raw = parse_keyed(read_text(str(directory / "memory.stat")))
    stat = {key: raw[v1] for key, v1 in _V1_STAT.items() if v1 in raw}
    refaults = [raw[key] for key in ("total_workingset_refault_anon", "total_workingset_refault_file") if key in raw]
    if refaults or "total_workingset_refault" in raw:
        stat["workingset_refault"] = sum(refaults) if refaults else raw["total_workingset_refault"]
    events: dict[str, int] = {}
    oom_control = _optional(lambda: parse_keyed(read_text(str(directory / "memory.oom_control"))))
    if oom_control and "oom_kill" in oom_control:
        events["oom_kill"] = oom_control["oom_kill"]
    failcnt = _optional(_read_int, directory / "memory.failcnt")
    if failcnt is not None:
        events["max"] = failcnt  # times usage hit the limit: v2's "max" event
    limit = _limit(_optional(_read_int, directory / "memory.limit_in_bytes"))
    return CgroupMemory(
        version=1,
        usage=_read_int(directory / "memory.usage_in_bytes") or 0,
        limit=limit,
        # hierarchical_memory_limit is the tightest limit of this cgroup and its ancestors.
        inherited_limit=_limit(raw.get("hierarchical_memory_limit", limit)),
        swap=raw.get("total_swap"),
        stat=stat,
        events=events,
        pressure=pressure,
    )


def effective_limit(hierarchy: Hierarchy, cgroup: Cgroup, memory: CgroupMemory) -> int | None:
    """Return the tightest memory limit on `cgroup` and its ancestors (v1 reports it directly)."""
    if memory.version == 1:
        return memory.inherited_limit
    limits = [memory.limit] if memory.limit is not None else []
    path = cgroup.path
    while path != "/":
        path = normalise(os.path.dirname(path))
        parent = hierarchy.locate(path)
        if parent is None or parent.memory is None:
            break
        try:
            value = _limit(_optional(_read_int, parent.memory / "memory.max"))
        except (OSError, ValueError):
            value = None
        if value is not None:
            limits.append(value)
    return min(limits) if limits else None
