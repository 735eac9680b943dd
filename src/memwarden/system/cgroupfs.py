"""The cgroup filesystem: which hierarchy holds memory, where a cgroup lives, what it uses.

Three layouts exist in the wild and all are handled:
  - unified (v2 only): /sys/fs/cgroup is the v2 tree, memory is one of its controllers;
  - legacy (v1 only): /sys/fs/cgroup/memory is the memory controller's own tree;
  - hybrid: v1 controllers (memory among them) plus a v2 tree at /sys/fs/cgroup/unified
    that systemd manages and that carries PSI (memory.pressure) but no memory accounting.

A container without its own cgroup namespace (Docker's default on v1 and hybrid hosts,
Kubernetes on v1) sees its full path in /proc/self/cgroup ("memory:/docker/<id>") while
its /sys/fs/cgroup/memory is a bind mount of that very cgroup. /proc/self/mountinfo tells
which cgroup each mount shows (its root field, "/docker/<id>"), so our own cgroup is found
the way cAdvisor and the JVM find it: strip the mount's root from the path and look below
the mount point, or take the mount point itself (see `Hierarchy.own_location`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .procfs import Read, read_bytes, read_text

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
        root = str(self.root).rstrip("/")
        if path.startswith(root + "/"):
            path = path[len(root) :]  # given as a full filesystem path
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
            text = read_text(f"{proc_root}/self/cgroup")
        except OSError:
            return None
        location = self.own_location(text, read_mountinfo(proc_root))
        return self.locate(location.path) if location is not None else None

    def own_location(self, proc_cgroup: str, mountinfo: str | None) -> OwnLocation | None:
        """Return where the memory cgroup named by a /proc/self/cgroup text is in our trees.

        `mountinfo` is /proc/self/mountinfo (None when unreadable: paths are taken as they are).
        """
        name = self.memory_path_of(proc_cgroup)
        if name is None:
            return None
        tree = self.unified if self.memory_on_unified else self.memory_v1
        mount = _tree_mount(tree, cgroup_mounts(mountinfo or ""), 2 if self.memory_on_unified else 1)
        if tree is None or mount is None or mount.root == "/":
            return OwnLocation(name, name)  # the tree shows the whole hierarchy: the path is as named
        root = mount.root
        if name == root or name.startswith(root + "/"):
            below = normalise(name[len(root) :])
            if (tree / below.lstrip("/")).is_dir():
                return OwnLocation(name, below)
        elif (tree / name.lstrip("/")).is_dir():
            return OwnLocation(name, name)
        # Moved out of the mounted subtree, or a nested cgroup not visible: the mount point is
        # the closest cgroup we can read (as the JVM and cAdvisor do).
        return OwnLocation(name, "/")

    def memory_path_of(self, proc_cgroup: str) -> str | None:
        """Return the memory cgroup path named by a /proc/<pid>/cgroup text."""
        unified_path = memory_path = None
        for line in proc_cgroup.splitlines():
            hierarchy_id, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hierarchy_id == "0" and controllers == "":
                unified_path = path
            elif "memory" in controllers.split(","):
                memory_path = path
        chosen = unified_path if self.memory_on_unified else memory_path or unified_path
        if chosen is None or chosen.startswith("/.."):
            return None  # outside our cgroup namespace's view: nothing readable
        return chosen

    def limit_files(self, cgroup: Cgroup) -> list[str]:
        """Return the limit files of `cgroup` and its ancestors in its memory tree."""
        name = "memory.max" if cgroup.version == 2 else "memory.limit_in_bytes"
        files: list[str] = []
        path = cgroup.path
        current: Cgroup | None = cgroup
        while current is not None and current.memory is not None and current.version == cgroup.version:
            files.append(f"{current.memory}/{name}")
            if path == "/":
                break
            path = normalise(os.path.dirname(path))
            current = self.locate(path)
        return files


@dataclass(frozen=True)
class OwnLocation:
    """Our memory cgroup: as the kernel names it, and its path below our tree's mount point.

    The two differ in a container whose cgroup tree is a bind mount of its own cgroup.
    """

    name: str  # the path in /proc/self/cgroup ("/docker/<id>")
    path: str  # where it is in our view, for `Hierarchy.locate` ("/" for the bind mount's root)


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem mount of /proc/self/mountinfo."""

    root: str  # the cgroup shown at the mount point: "/" on a host, "/docker/<id>" in a container
    mount_point: str
    version: int  # 1 (cgroup) or 2 (cgroup2)
    options: frozenset[str]  # v1 super options: the controllers ("memory"), "name=systemd"


def read_mountinfo(proc_root: str, read: Read = read_bytes) -> str | None:
    """Return /proc/self/mountinfo, None when it cannot be read."""
    try:
        return read(f"{proc_root}/self/mountinfo").decode("utf-8", "replace")
    except OSError:
        return None


def cgroup_mounts(mountinfo: str) -> list[CgroupMount]:
    """Return the cgroup and cgroup2 mounts of a /proc/<pid>/mountinfo text, in its order."""
    mounts: list[CgroupMount] = []
    for line in mountinfo.splitlines():
        # "36 25 0:31 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory"
        before, separator, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not separator or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(
            CgroupMount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                version=2 if tail[0] == "cgroup2" else 1,
                options=frozenset(tail[2].split(",")),
            )
        )
    return mounts


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes of space, tab, newline and backslash ("\\040")."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _tree_mount(tree: Path | None, mounts: list[CgroupMount], version: int) -> CgroupMount | None:
    """The mount that shows `tree`: the last one mounted there, else the last of its kind.

    The last, because a bind mount stacked on a mount point hides the mounts below it and
    mountinfo lists it after them. "Of its kind" serves trees read below another root (test
    fixtures, a host's /sys mounted elsewhere): the mount points then differ from our paths.
    """
    if tree is None:
        return None
    kind = [m for m in mounts if m.version == version and (version == 2 or "memory" in m.options)]
    there = [m for m in kind if m.mount_point == str(tree)]
    candidates = there or kind
    return candidates[-1] if candidates else None


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
