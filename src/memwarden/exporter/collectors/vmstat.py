"""vmstat: OOM kills, major faults, swap traffic and refaults (/proc/vmstat, or our cgroup's)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, Metric

from memwarden.contract import (
    MAJOR_PAGE_FAULTS,
    OOM_KILLS,
    SWAP_IN_PAGES,
    SWAP_OUT_PAGES,
    VMSTAT_COLLECTOR,
    WORKINGSET_REFAULTS,
)
from memwarden.contract import (
    Metric as ContractMetric,
)
from memwarden.system.procfs import pick

from .base import HostSource, single_sample_families

# metric -> (/proc/vmstat keys summed, cgroup key: memory.stat, or "events:" memory.events)
VMSTAT_COUNTERS: dict[ContractMetric, tuple[tuple[str, ...], str]] = {
    OOM_KILLS: (("oom_kill",), "events:oom_kill"),
    MAJOR_PAGE_FAULTS: (("pgmajfault",), "pgmajfault"),
    SWAP_IN_PAGES: (("pswpin",), "pswpin"),
    SWAP_OUT_PAGES: (("pswpout",), "pswpout"),
    WORKINGSET_REFAULTS: (("workingset_refault_anon", "workingset_refault_file"), "workingset_refault"),
}


_KEYS = tuple(sorted({key for keys, _ in VMSTAT_COUNTERS.values() for key in keys} | {"workingset_refault"}))


def host_counters(vmstat: dict[str, int]) -> dict[str, int]:
    """Counter values by exposed name (`memwarden_oom_kills_total`, …) from /proc/vmstat's keys."""
    values: dict[str, int] = {}
    for metric, (keys, _) in VMSTAT_COUNTERS.items():
        name = metric.name
        present = [vmstat[key] for key in keys if key in vmstat]
        if present:
            values[name] = sum(present)
        elif metric is WORKINGSET_REFAULTS and "workingset_refault" in vmstat:
            values[name] = vmstat["workingset_refault"]  # kernels before 5.9 had one counter
    return values


def cgroup_counters(stat: dict[str, int], events: dict[str, int]) -> dict[str, int]:
    """The same counters from a cgroup's memory.stat and memory.events, where it has them."""
    values: dict[str, int] = {}
    for metric, (_, key) in VMSTAT_COUNTERS.items():
        source, _, field = key.rpartition(":")
        table = events if source == "events" else stat
        if field in table:
            values[metric.name] = table[field]
    return values


def counter_families(values: dict[str, int], labels: dict[str, str] | None = None) -> list[Metric]:
    metrics = ((metric.family, metric.help, values.get(metric.name)) for metric in VMSTAT_COUNTERS)
    return single_sample_families(CounterMetricFamily, metrics, labels)


class VmstatCollector(HostSource):
    """memwarden_oom_kills_total and friends, host-level; absent where the kernel lacks a counter."""

    name = VMSTAT_COLLECTOR

    def scrape(self, problems: list[str]) -> list[Metric]:
        state = self.cgroup_scope()
        if state is not None and state.memory is not None:
            values = cgroup_counters(state.memory.stat, state.memory.events)
        else:
            values = host_counters(pick(self.read(f"{self.proc_root}/vmstat"), _KEYS))
        return counter_families(values)
