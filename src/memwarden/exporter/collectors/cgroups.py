"""cgroup: raw memory facts of a bounded set of cgroups, v1 or v2, as memwarden_cgroup_*.

Which cgroups: the top levels of the memory hierarchy (`depth`, default 1: system.slice,
user.slice, kubepods.slice, ...), the exporter's own cgroup, and every component's cgroup.
The `cgroup` label is the path below the cgroup root; the set is bounded by the depth and
the policy, never by what processes come and go.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from memwarden.contract import CGROUP_COLLECTOR
from memwarden.contract.metrics import (
    CGROUP_MEMORY_ACTIVE_FILE,
    CGROUP_MEMORY_ANON,
    CGROUP_MEMORY_EVENTS,
    CGROUP_MEMORY_FILE,
    CGROUP_MEMORY_INACTIVE_FILE,
    CGROUP_MEMORY_LIMIT,
    CGROUP_MEMORY_USAGE,
    CGROUP_MEMORY_WORKING_SET,
    CGROUP_PRESSURE_STALLED,
    CGROUP_PRESSURE_WAITING,
    CGROUP_SWAP,
)
from memwarden.contract.metrics import Metric as MetricName
from memwarden.system import Cgroup, CgroupMemory, Hierarchy, read_memory
from memwarden.system.cgroupfs import read_mountinfo
from memwarden.system.procfs import Read, read_bytes

from .base import Source

# Each gauge of the contract beside what it reads from a cgroup's memory files.
GAUGES: tuple[tuple[MetricName, Callable[[CgroupMemory], int | None]], ...] = (
    (CGROUP_MEMORY_USAGE, lambda m: m.usage),
    (CGROUP_MEMORY_LIMIT, lambda m: m.limit),
    (CGROUP_MEMORY_WORKING_SET, lambda m: m.working_set),
    (CGROUP_MEMORY_ANON, lambda m: m.stat.get("anon")),
    (CGROUP_MEMORY_FILE, lambda m: m.stat.get("file")),
    (CGROUP_MEMORY_ACTIVE_FILE, lambda m: m.stat.get("active_file")),
    (CGROUP_MEMORY_INACTIVE_FILE, lambda m: m.stat.get("inactive_file")),
    (CGROUP_SWAP, lambda m: m.swap),
)


def _children(directory: Path, depth: int) -> Iterable[str]:
    """Yield the relative paths of cgroups below `directory`, down to `depth` levels."""
    level: list[tuple[str, str | Path]] = [("", directory)]
    for _ in range(depth):
        below: list[tuple[str, str | Path]] = []
        for relative, path in level:
            try:
                with os.scandir(path) as entries:
                    names = sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))
            except OSError:
                continue
            for name in names:
                below.append((f"{relative}/{name}", os.path.join(path, name)))
        yield from (relative for relative, _ in below)
        level = below


class CgroupCollector(Source):
    """memwarden_cgroup_* for the top-level cgroups, our own and the components'."""

    name = CGROUP_COLLECTOR

    def __init__(
        self,
        *,
        proc_root: str = "/proc",
        hierarchy: Hierarchy,
        depth: int = 1,
        extra_paths: Callable[[], Iterable[str]] = tuple,
        read: Read = read_bytes,
    ) -> None:
        self.proc_root = proc_root
        self.read = read
        self.hierarchy = hierarchy
        self.depth = depth
        self.extra_paths = extra_paths  # the components' cgroup paths, known once they are resolved
        self._located: dict[str, Cgroup | None] = {}  # path -> dirs; dropped when a read finds it gone
        # /proc/self/cgroup text -> our memory cgroup's name and its path in our view; they
        # differ in a container whose cgroup tree is a bind mount of its own cgroup
        self._own: tuple[str, str | None, str | None] = ("", None, None)

    def paths(self) -> list[str]:
        """The cgroups to report this scrape, sorted and without duplicates."""
        tree = self.hierarchy.unified if self.hierarchy.memory_on_unified else self.hierarchy.memory_v1
        found: set[str] = set()
        if tree is not None and self.depth > 0:
            found.update(_children(tree, self.depth))
        own = self._own_name()
        if own is not None:
            found.add(own)
        found.update(self.extra_paths())
        found.discard("/")  # the root is the host: meminfo tells it better
        return sorted(found)

    def scrape(self, problems: list[str]) -> list[Metric]:
        gauges = [GaugeMetricFamily(metric.name, metric.help, labels=metric.labels) for metric, _ in GAUGES]
        events, waiting, stalled = (
            CounterMetricFamily(metric.family, metric.help, labels=metric.labels)
            for metric in (CGROUP_MEMORY_EVENTS, CGROUP_PRESSURE_WAITING, CGROUP_PRESSURE_STALLED)
        )
        paths = self.paths()
        for path in paths:
            if path not in self._located:
                _, own_name, own_path = self._own
                self._located[path] = self.hierarchy.locate(own_path if path == own_name and own_path else path)
            cgroup = self._located[path]
            if cgroup is None or cgroup.memory is None:
                continue  # gone since listed, or not in the memory hierarchy
            memory = _read(cgroup, problems, self.read)
            if memory is None:
                del self._located[path]  # look it up afresh next time
                continue
            for family, (_, value_of) in zip(gauges, GAUGES, strict=True):
                value = value_of(memory)
                if value is not None:
                    family.add_metric([path], value)
            for event, count in sorted(memory.events.items()):
                events.add_metric([path, event], count)
            if memory.pressure:
                if "some" in memory.pressure:
                    waiting.add_metric([path], memory.pressure["some"])
                if "full" in memory.pressure:
                    stalled.add_metric([path], memory.pressure["full"])
        for path in set(self._located) - set(paths):
            del self._located[path]
        return [family for family in (*gauges, events, waiting, stalled) if family.samples]

    def _own_name(self) -> str | None:
        try:
            text = self.read(f"{self.proc_root}/self/cgroup").decode("utf-8", "replace")
        except OSError:
            return None
        if text != self._own[0]:
            location = self.hierarchy.own_location(text, read_mountinfo(self.proc_root, self.read))
            if location is None:
                self._own = (text, None, None)
            else:
                self._own = (text, location.name, location.path)
            self._located.clear()  # a path may now mean another directory
        return self._own[1]


def _read(cgroup: Cgroup, problems: list[str], read: Read) -> CgroupMemory | None:
    try:
        return read_memory(cgroup, read)
    except FileNotFoundError:
        return None  # removed between listing and reading: normal churn
    except (OSError, ValueError) as error:
        problems.append(f"cgroup {cgroup.path}: {error}")
        return None
