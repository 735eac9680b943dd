"""Run every source on each scrape, report how each did, and build the exporter's registry.

No default process/gc/platform collectors: they cost ~0.2 ms a scrape. The few process
facts operators watch an exporter by (CPU, RSS, start time) come from one read of
/proc/self/stat instead, through the same kept descriptor as every other read, where
client_python's ProcessCollector opens /proc/self/stat and /proc/self/limits and lists
/proc/self/fd (up to 512 kept descriptors here) on every scrape.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric

from memwarden import __version__
from memwarden.contract import (
    BUILD_INFO,
    COLLECTOR_DURATION,
    COLLECTOR_SUCCESS,
    MEMORY_SCOPE_INFO,
)
from memwarden.contract import Metric as MetricName
from memwarden.system import ComponentSpec, FileReader, Hierarchy, Resolver
from memwarden.system.procfs import PAGE_SIZE, read_bytes, stat_fields

from .collectors import (
    CgroupCollector,
    ComponentsCollector,
    MeminfoCollector,
    PressureCollector,
    Source,
    VmstatCollector,
)
from .scope import MemoryScope, ScopeMode

log = logging.getLogger("memwarden.exporter")

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ExporterCollector:
    """The one collector the registry holds: all sources, guarded and timed, plus self metrics."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        scope: MemoryScope | None = None,
        proc_root: str = "/proc",
        timer: Callable[[], float] = time.perf_counter,
        reader: FileReader | None = None,
    ) -> None:
        self.sources = list(sources)
        self.scope = scope
        self.reader = reader
        self.proc_root = proc_root
        self.timer = timer
        self._boot_time = _boot_time(proc_root)
        self._reported: dict[str, str] = {}  # collector -> last problem logged, so a broken source logs once

    def collect(self) -> Iterator[Metric]:
        if self.scope is not None:
            self.scope.begin_scrape()
        families: dict[str, Metric] = {}
        success = GaugeMetricFamily(COLLECTOR_SUCCESS.name, COLLECTOR_SUCCESS.help, labels=COLLECTOR_SUCCESS.labels)
        duration = GaugeMetricFamily(COLLECTOR_DURATION.name, COLLECTOR_DURATION.help, labels=COLLECTOR_DURATION.labels)
        for source in self.sources:
            problems: list[str] = []
            started = self.timer()
            try:
                produced = source.scrape(problems)
            except Exception as error:  # a failing source never fails the scrape
                produced = []
                problems.append(f"{type(error).__name__}: {error}" if not isinstance(error, OSError) else str(error))
            elapsed = self.timer() - started
            for family in produced:
                same = families.get(family.name)
                if same is None:
                    families[family.name] = family
                else:
                    same.samples.extend(family.samples)  # host and per-component samples of one metric
            success.add_metric([source.name], 0 if problems else 1)
            duration.add_metric([source.name], elapsed)
            self._log(source.name, problems)
        yield from families.values()
        yield success
        yield duration
        yield from self._self_metrics()
        if self.reader is not None:
            self.reader.sweep()  # close what this scrape no longer read: exited processes, gone cgroups

    def _log(self, name: str, problems: list[str]) -> None:
        text = "; ".join(problems)
        if text != self._reported.get(name, ""):
            if text:
                log.warning("collector %s failed: %s", name, text)
            else:
                log.info("collector %s recovered", name)
            self._reported[name] = text

    def _self_metrics(self) -> Iterator[Metric]:
        yield _info(BUILD_INFO, version=__version__)
        if self.scope is not None:
            try:
                state = self.scope.state()
            except OSError:
                state = None
            if state is not None:
                yield _info(MEMORY_SCOPE_INFO, scope=state.scope, cgroup=state.name if state.scope == "cgroup" else "")
        fields = stat_fields(self.proc_root, "self", self.reader.read if self.reader is not None else read_bytes)
        if fields is None:
            return
        try:
            cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
            started = int(fields[19]) / _CLOCK_TICKS
            rss = int(fields[21]) * PAGE_SIZE
        except (IndexError, ValueError):
            return
        yield CounterMetricFamily("process_cpu_seconds", "User and system CPU time spent in seconds.", value=cpu)
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", value=rss)
        if self._boot_time is not None:
            yield GaugeMetricFamily(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                value=self._boot_time + started,
            )


def _info(what: MetricName, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(what.name, what.help, labels=list(labels))
    family.add_metric(list(labels.values()), 1)
    return family


def _boot_time(proc_root: str) -> float | None:
    try:
        for line in read_bytes(f"{proc_root}/stat").splitlines():
            if line.startswith(b"btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def build_sources(
    components: Sequence[Any],
    *,
    proc_root: str = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    scope_mode: ScopeMode = "auto",
    cgroup_depth: int = 1,
    reader: FileReader | None = None,
) -> tuple[list[Source], MemoryScope]:
    """Return the sources in scrape order, and the scope they share.

    `components` are policy Components or ComponentSpecs; `reader` (kept descriptors) is
    what makes a scrape cheap, tests may leave it out.
    """
    read = reader.read if reader is not None else read_bytes
    specs = [ComponentSpec.of(component) for component in components]
    hierarchy = Hierarchy.detect(cgroup_root)
    scope = MemoryScope(scope_mode, proc_root=proc_root, hierarchy=hierarchy, read=read)
    resolver = Resolver(specs, proc_root=proc_root, cgroup_root=cgroup_root, read=read)
    component_source = ComponentsCollector(specs, proc_root=proc_root, resolver=resolver, read=read)
    sources: list[Source] = [
        MeminfoCollector(proc_root=proc_root, scope=scope, read=read),
        PressureCollector(proc_root=proc_root, scope=scope, read=read),
        VmstatCollector(proc_root=proc_root, scope=scope, read=read),
        # components before cgroup: the cgroup collector reports the cgroups components resolved to
        component_source,
        CgroupCollector(
            proc_root=proc_root,
            hierarchy=hierarchy,
            depth=cgroup_depth,
            extra_paths=lambda: component_source.cgroup_paths,
            read=read,
        ),
    ]
    return sources, scope


def build_registry(
    components: Sequence[Any] = (),
    *,
    proc_root: str = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    scope_mode: ScopeMode = "auto",
    cgroup_depth: int = 1,
    timer: Callable[[], float] = time.perf_counter,
    max_open_files: int = 512,
) -> CollectorRegistry:
    """Return a registry with every memwarden source and nothing else.

    `max_open_files` bounds the descriptors kept open between scrapes (one per component
    process, a few per cgroup); beyond it files are opened and closed on each read.
    """
    reader = FileReader(max_open=max_open_files)
    sources, scope = build_sources(
        components,
        proc_root=proc_root,
        cgroup_root=cgroup_root,
        scope_mode=scope_mode,
        cgroup_depth=cgroup_depth,
        reader=reader,
    )
    registry = CollectorRegistry(auto_describe=False)
    collector = ExporterCollector(sources, scope=scope, proc_root=proc_root, timer=timer, reader=reader)
    registry.register(collector)
    return registry
