"""components: memory of each policy component, found by cmdline, pidfile, cgroup or unit.

A component with a memory cgroup is measured by the cgroup (working set = usage minus
inactive file cache, swap, PSI, OOM kills and the other counters of memory.stat/events).
A component of plain processes is measured by their RSS sum (PSS when the component sets
`pss: true`), swap from VmSwap; it has no counters: a sum over processes that come and go
is not a counter. A cgroup without memory accounting (a unit on a hybrid host without v1
MemoryAccounting=) is measured by its processes but keeps its PSI from the unified tree.

Processes are read from /proc directly, not through psutil: a scrape reads one or two files
per process of every component, and memwarden.system reads them through descriptors kept
open between scrapes (FileReader) with os.read, where psutil opens, reads and closes each
file and builds a Process per pid on every call. That per-scrape cost is what
benchmarks/exporter.py prints beside node_exporter and process-exporter.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from memwarden.contract import (
    COMPONENT_LIMIT,
    COMPONENT_MEMORY,
    COMPONENT_PROCESSES,
    COMPONENT_SWAP,
    COMPONENTS_COLLECTOR,
    PROCESS_MATCH_KINDS,
)
from memwarden.system import (
    ComponentSpec,
    ComponentTarget,
    Hierarchy,
    Resolver,
    process_memory_bytes,
    read_memory,
)
from memwarden.system.cgroup_memory import CgroupMemory, tightest_limit
from memwarden.system.procfs import Read, read_bytes, swap_bytes
from memwarden.system.psi import read_pressure

from .base import Source
from .pressure import pressure_families
from .vmstat import cgroup_counters, counter_families


def host_has_swap(proc_root: str, read: Read = read_bytes) -> bool:
    """True when any swap device is on (/proc/swaps has more than its header)."""
    try:
        return read(f"{proc_root}/swaps").count(b"\n") > 1
    except OSError:
        return True  # cannot tell: read each process's VmSwap


class ComponentsCollector(Source):
    """memwarden_component_* and per-component PSI and counters (label `component`)."""

    name = COMPONENTS_COLLECTOR

    def __init__(
        self,
        components: Sequence[ComponentSpec],
        *,
        proc_root: str = "/proc",
        cgroup_root: str = "/sys/fs/cgroup",
        resolver: Resolver | None = None,
        read: Read = read_bytes,
    ) -> None:
        self.components = [ComponentSpec.of(component) for component in components]
        self.proc_root = proc_root
        self.read = read
        self._limit_files: dict[str, list[str]] = {}  # cgroup path -> its and its ancestors' limit files
        self.resolver = resolver or Resolver(self.components, proc_root=proc_root, cgroup_root=cgroup_root)
        self.hierarchy: Hierarchy = self.resolver.hierarchy
        self.cgroup_paths: tuple[str, ...] = ()  # of the last scrape, for the cgroup collector

    def scrape(self, problems: list[str]) -> list[Metric]:
        targets = self.resolver.resolve_all()
        self.cgroup_paths = tuple(t.cgroup_path for t in targets.values() if t.cgroup_path and t.cgroup)
        swap_on = None
        memory_f, limit_f, swap_f, processes_f = (
            GaugeMetricFamily(m.name, m.help, labels=m.labels)
            for m in (COMPONENT_MEMORY, COMPONENT_LIMIT, COMPONENT_SWAP, COMPONENT_PROCESSES)
        )
        extra: list[Metric] = []
        for component in self.components:
            target = targets[component.name]
            labels = [component.name]
            failures = len(problems)
            memory = self._cgroup_memory(target, problems)
            if len(problems) > failures:
                # Its cgroup exists but cannot be read: publish no figure rather than a different one.
                processes_f.add_metric(labels, len(target.pids))
            elif memory is not None:
                memory_f.add_metric(labels, memory.working_set)
                processes_f.add_metric(labels, len(target.pids))
                if memory.swap is not None:
                    swap_f.add_metric(labels, memory.swap)
                extra += pressure_families(memory.pressure or {}, {"component": component.name})
                extra += counter_families(cgroup_counters(memory.stat, memory.events), {"component": component.name})
            elif target.pids or target.kind in PROCESS_MATCH_KINDS:
                used, alive = process_memory_bytes(self.proc_root, target.pids, pss=component.pss, read=self.read)
                memory_f.add_metric(labels, used)
                processes_f.add_metric(labels, alive)
                if swap_on is None:
                    swap_on = host_has_swap(self.proc_root, self.read)
                swap_f.add_metric(labels, self._process_swap(target) if swap_on else 0)
                extra += self._unified_pressure(target, problems)
            else:
                processes_f.add_metric(labels, 0)  # its cgroup does not exist (unit stopped)
            limit = self._limit(component, target)
            if limit is not None:
                limit_f.add_metric(labels, limit)
        return [family for family in (memory_f, limit_f, swap_f, processes_f) if family.samples] + _merge(extra)

    def _cgroup_memory(self, target: ComponentTarget, problems: list[str]) -> CgroupMemory | None:
        cgroup = target.cgroup_dirs()
        if cgroup is None:
            return None
        try:
            return read_memory(cgroup, self.read)
        except FileNotFoundError:
            return None  # the cgroup went away since it was found (unit stopped)
        except (OSError, ValueError) as error:
            problems.append(f"component {target.name}: cgroup {target.cgroup_path}: {error}")
            return None

    def _unified_pressure(self, target: ComponentTarget, problems: list[str]) -> list[Metric]:
        """PSI of a cgroup that has no memory accounting of its own: a unit on a hybrid host
        without v1 MemoryAccounting= still has memory.pressure in the unified tree."""
        if target.unified is None or target.cgroup is not None:
            return []
        try:
            pressure = read_pressure(f"{target.unified}/memory.pressure", self.read)
        except FileNotFoundError:
            return []  # the unit stopped since it was found
        except (OSError, ValueError) as error:
            problems.append(f"component {target.name}: {target.unified}/memory.pressure: {error}")
            return []
        return pressure_families(pressure or {}, {"component": target.name})

    def _process_swap(self, target: ComponentTarget) -> int:
        return sum(value for pid in target.pids if (value := swap_bytes(self.proc_root, pid, self.read)) is not None)

    def _limit(self, component: ComponentSpec, target: ComponentTarget) -> int | None:
        if isinstance(component.budget, int):
            return component.budget
        cgroup = target.cgroup_dirs()
        if cgroup is None:
            return None
        files = self._limit_files.get(cgroup.path)
        if files is None:
            files = self._limit_files[cgroup.path] = self.hierarchy.limit_files(cgroup)
        return tightest_limit(files, self.read)


def _merge(families: list[Metric]) -> list[Metric]:
    """Fold same-named families (one per component) into one family each."""
    merged: dict[str, Metric] = {}
    for family in families:
        if family.name in merged:
            merged[family.name].samples.extend(family.samples)
        else:
            merged[family.name] = family
    return list(merged.values())
