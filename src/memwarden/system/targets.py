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
    places units (`units`), then treated like `cgroup`.

Processes that start or exit while we look are normal: a pid that vanishes mid-read is
simply left out.

A process's command line can change without its pid changing: exec() (a wrapper script
that execs the real program) and setproctitle (nginx, postgres, gunicorn workers retitle
themselves after start-up). So a cached verdict is checked again: every second while the
process is young (under a minute old, when both usually happen), then every one to two
minutes, spread by pid so that a host's thousand processes do not come due together.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cmdline_pattern import compile_cmdline
from . import procfs
from .cgroup_memory import read_memory
from .cgroupfs import Cgroup, Hierarchy
from .spec import ComponentSpec
from .units import UnitLocator

if TYPE_CHECKING:
    from memwarden.policy import Component

    AnyComponent = Component | ComponentSpec

DEFAULT_PROC_ROOT = "/proc"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
_YOUNG_SECONDS = 60.0  # a process younger than this may still exec or retitle itself
_YOUNG_RECHECK_SECONDS = 1.0  # how often a young process's command line is read again
_OLD_RECHECK_SECONDS = 60.0  # ... and an older one's: after 60-120 s, spread by pid
_NEVER = float("inf")


def _boot_clock() -> float:
    """Seconds since boot: the clock of /proc/<pid>/stat's start time."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class _Seen:
    """What the resolver remembers of one process between scrapes."""

    inode: int  # of /proc/<pid>: changes when the pid is reused
    names: tuple[str, ...]  # the cmdline components it matches
    started: float | None  # seconds since boot; None when unknown (taken as old)
    recheck_at: float  # when to read its command line again (boot clock)


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

    def cgroup_dirs(self) -> Cgroup | None:
        """The memory cgroup as a `Cgroup`, for `read_memory` and `effective_limit`."""
        if self.cgroup is None or self.cgroup_version is None:
            return None
        return Cgroup(self.cgroup_path or "/", self.cgroup, self.cgroup_version, self.unified)


class Resolver:
    """Resolves many components with one look at /proc; keep one across scrapes.

    It caches which components each process matches by pid and the inode of /proc/<pid>,
    which changes when a pid is reused, so a scrape reads the command lines of new processes
    and of those due a re-check (see the module's notes on exec and setproctitle) only.
    For pidfile components it walks the pidfile's subtree through /proc/<pid>/task/*/children
    or, on kernels without those files, a parent map that reads the stat of new pids only.
    """

    def __init__(
        self,
        components: Sequence[AnyComponent],
        *,
        proc_root: str = DEFAULT_PROC_ROOT,
        cgroup_root: str = DEFAULT_CGROUP_ROOT,
        exclude_pids: Iterable[int] | None = None,
        clock: Callable[[], float] = _boot_clock,
        read: procfs.Read = procfs.read_bytes,
    ) -> None:
        self.components = [ComponentSpec.of(component) for component in components]
        self.proc_root = proc_root
        self.hierarchy = Hierarchy.detect(cgroup_root)
        self._exclude = set(exclude_pids) if exclude_pids is not None else {procfs.own_pid(proc_root)}
        self._patterns = [
            (component.name, compile_cmdline(component.value)) for component in self.components if component.kind == "cmdline"
        ]
        self._clock = clock
        self._read = read  # for files re-read every scrape (children); the exporter passes a FileReader's
        self._matches: dict[int, _Seen] = {}
        self._parents_of: dict[int, tuple[int, int]] = {}  # pid -> (inode, ppid), without children files
        self._children_files: bool | None = None  # does this kernel have /proc/<pid>/task/*/children?
        self._units = UnitLocator(self.hierarchy)

    def resolve_all(self) -> dict[str, ComponentTarget]:
        """Return every component's target, keyed by component name, in policy order."""
        entries: list[tuple[int, int]] | None = None  # one /proc listing, for cmdlines and the parent map
        if self._patterns:
            entries = list(procfs.process_entries(self.proc_root))
        by_cmdline = self._scan_cmdlines(entries) if entries is not None else {}
        targets: dict[str, ComponentTarget] = {}
        for component in self.components:
            kind = component.kind
            if kind == "cmdline":
                targets[component.name] = ComponentTarget(
                    component.name, kind, tuple(by_cmdline.get(component.name, ())), None, None
                )
            elif kind == "pidfile":
                pids = self._pidfile_tree(component.value, entries)
                targets[component.name] = ComponentTarget(component.name, kind, pids, None, None)
            else:
                path = component.value if kind == "cgroup" else self._units.path(component.value)
                cgroup = self.hierarchy.locate(path) if path is not None else None
                targets[component.name] = _cgroup_target(component.name, kind, cgroup)
        return targets

    def resolve(self, component: AnyComponent) -> ComponentTarget:
        """Return one component's target (it need not be one of `components`)."""
        spec = ComponentSpec.of(component)
        if spec not in self.components:
            return Resolver(
                [spec], proc_root=self.proc_root, cgroup_root=str(self.hierarchy.root), exclude_pids=self._exclude
            ).resolve_all()[spec.name]
        return self.resolve_all()[spec.name]

    def _scan_cmdlines(self, entries: list[tuple[int, int]]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        seen: dict[int, _Seen] = {}
        cache = self._matches
        now = self._clock()
        for pid, inode in entries:
            cached = cache.get(pid)
            if cached is not None and cached.inode == inode and now < cached.recheck_at:
                known = cached
            else:
                line = procfs.cmdline(self.proc_root, pid)
                if line is None:
                    continue  # exited between the listing and the read
                known = self._judge(pid, inode, line, cached if cached is not None and cached.inode == inode else None, now)
            seen[pid] = known
            if known.names and pid not in self._exclude:
                for name in known.names:
                    found.setdefault(name, []).append(pid)
        self._matches = seen  # forget processes that have gone
        for pids in found.values():
            pids.sort()
        return found

    def _judge(self, pid: int, inode: int, line: str, before: _Seen | None, now: float) -> _Seen:
        """Match a command line just read, and decide when to read it again."""
        names = tuple(name for name, pattern in self._patterns if line and pattern.search(line))
        if before is not None:
            started = before.started
        else:
            birth = procfs.start_time(self.proc_root, pid)  # once per process
            if birth is not None and birth[1]:
                return _Seen(inode, names, birth[0], _NEVER)  # a kernel thread never execs
            started = birth[0] if birth is not None else None
        if started is not None and now - started < _YOUNG_SECONDS:
            recheck_at = now + _YOUNG_RECHECK_SECONDS
        else:
            recheck_at = now + _OLD_RECHECK_SECONDS * (1 + (pid % 64) / 64)
        return _Seen(inode, names, started, recheck_at)

    def _pidfile_tree(self, pidfile: str, entries: list[tuple[int, int]] | None) -> tuple[int, ...]:
        try:
            # non-blocking and regular files only: a FIFO named as the pidfile must not hang a scrape
            token = procfs.read_small_file(pidfile, 64).split()[0]
            root = int(token)
        except (OSError, IndexError, ValueError):
            return ()
        if root <= 0 or not os.path.isdir(f"{self.proc_root}/{root}"):
            return ()
        if self._children_files is not False:
            tree = self._subtree(root)
            if tree is not None:
                self._children_files = True
                return tree
            self._children_files = False
        if entries is None:
            entries = list(procfs.process_entries(self.proc_root))
        children = self._parent_map(entries)
        found, queue = {root}, [root]
        while queue:
            for child in children.get(queue.pop(), ()):
                if child not in found:
                    found.add(child)
                    queue.append(child)
        return tuple(sorted(found))

    def _subtree(self, root: int) -> tuple[int, ...] | None:
        """The pidfile's process and its descendants through the children files; None without them."""
        tree, queue = {root}, [root]
        while queue:
            below = procfs.children(self.proc_root, queue.pop(), self._read)
            if below is None:
                return None
            for child in below:
                if child not in tree:
                    tree.add(child)
                    queue.append(child)
        return tuple(sorted(tree))

    def _parent_map(self, entries: list[tuple[int, int]]) -> dict[int, list[int]]:
        """pid -> children from the stat of each process, read once per process (keyed like the cmdline cache).

        A parent is cached for the process's life: a reparented orphan keeps its first parent,
        whose pid has gone from the listing, so it falls out of the tree as it should.
        """
        cache, known = self._parents_of, {}
        children: dict[int, list[int]] = {}
        for pid, inode in entries:
            cached = cache.get(pid)
            if cached is not None and cached[0] == inode:
                parent = cached[1]
            else:
                read = procfs.parent_pid(self.proc_root, pid)
                if read is None:
                    continue  # gone
                parent = read
            known[pid] = (inode, parent)
            children.setdefault(parent, []).append(pid)
        self._parents_of = known
        return children


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
    component: AnyComponent, *, proc_root: str = DEFAULT_PROC_ROOT, cgroup_root: str = DEFAULT_CGROUP_ROOT
) -> ComponentTarget:
    """Return one component's live processes and cgroup (a fresh look, no caching)."""
    spec = ComponentSpec.of(component)
    return Resolver([spec], proc_root=proc_root, cgroup_root=cgroup_root).resolve_all()[spec.name]


def process_memory_bytes(
    proc_root: str, pids: Iterable[int], *, pss: bool = False, read: procfs.Read = procfs.read_bytes
) -> tuple[int, int]:
    """Return (bytes, processes counted): the RSS (or PSS) sum of those pids still alive."""
    measure = procfs.pss_bytes if pss else procfs.rss_bytes
    total = counted = 0
    for pid in pids:
        value = measure(proc_root, pid, read)
        if value is None and pss:
            value = procfs.rss_bytes(proc_root, pid, read)  # no smaps_rollup (kernel < 4.14)
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
    cgroup = target.cgroup_dirs()
    if cgroup is not None:
        try:
            memory = read_memory(cgroup)
        except (OSError, ValueError):
            memory = None  # gone or unreadable: fall back to its processes
        if memory is not None:
            return memory.working_set
    if target.kind in ("cgroup", "systemd_unit") and not target.pids:
        return None
    return process_memory_bytes(proc_root, target.pids, pss=pss)[0]
