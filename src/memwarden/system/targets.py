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
simply left out. cmdline_matches.py re-checks command lines that exec or setproctitle
change; process_tree.py walks a pidfile's descendants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cmdline_pattern import compile_cmdline
from . import procfs
from .cgroup_memory import read_memory
from .cgroupfs import Cgroup, Hierarchy
from .cmdline_matches import CmdlineMatcher, boot_clock
from .process_tree import PidfileTrees
from .spec import ComponentSpec
from .units import UnitLocator

if TYPE_CHECKING:
    from memwarden.policy import Component

    AnyComponent = Component | ComponentSpec

DEFAULT_PROC_ROOT = "/proc"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"


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

    A scrape lists /proc once (when a component matches by cmdline) and reads the command
    lines of new processes and of those due a re-check only (CmdlineMatcher); pidfile
    components are walked from their pidfile (PidfileTrees); cgroup and systemd_unit ones
    are located in the cgroup hierarchy.
    """

    def __init__(
        self,
        components: Sequence[AnyComponent],
        *,
        proc_root: str = DEFAULT_PROC_ROOT,
        cgroup_root: str = DEFAULT_CGROUP_ROOT,
        exclude_pids: Iterable[int] | None = None,
        clock: Callable[[], float] = boot_clock,
        read: procfs.Read = procfs.read_bytes,
    ) -> None:
        self.components = [ComponentSpec.of(component) for component in components]
        self.proc_root = proc_root
        self.hierarchy = Hierarchy.detect(cgroup_root)
        self._exclude = set(exclude_pids) if exclude_pids is not None else {procfs.own_pid(proc_root)}
        patterns = [
            (component.name, compile_cmdline(component.value)) for component in self.components if component.kind == "cmdline"
        ]
        self._cmdlines = CmdlineMatcher(patterns, proc_root=proc_root, exclude=self._exclude, clock=clock)
        self._pidfiles = PidfileTrees(proc_root, read)  # read: the exporter passes a FileReader's
        self._units = UnitLocator(self.hierarchy)

    def resolve_all(self) -> dict[str, ComponentTarget]:
        """Return every component's target, keyed by component name, in policy order."""
        entries: list[tuple[int, int]] | None = None  # one /proc listing, for cmdlines and the parent map
        if self._cmdlines.patterns:
            entries = list(procfs.process_entries(self.proc_root))
        by_cmdline = self._cmdlines.scan(entries) if entries is not None else {}
        targets: dict[str, ComponentTarget] = {}
        for component in self.components:
            kind = component.kind
            if kind == "cmdline":
                targets[component.name] = ComponentTarget(
                    component.name, kind, tuple(by_cmdline.get(component.name, ())), None, None
                )
            elif kind == "pidfile":
                pids = self._pidfiles.pids(component.value, entries)
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
