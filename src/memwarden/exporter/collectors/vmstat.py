"""vmstat: OOM kills, major faults, swap traffic and refaults (/proc/vmstat, or our cgroup's)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, Metric

from memwarden.system.procfs import pick

from .base import HostSource, single_sample_families

# metric -> (help text, /proc/vmstat keys summed, cgroup key: memory.stat, or "events:" memory.events)
VMSTAT_COUNTERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "memwarden_oom_kills_total": ("Processes killed by the OOM killer.", ("oom_kill",), "events:oom_kill"),
    "memwarden_major_page_faults_total": ("Page faults that needed disk I/O.", ("pgmajfault",), "pgmajfault"),
    "memwarden_swap_in_pages_total": ("Pages read in from swap.", ("pswpin",), "pswpin"),
    "memwarden_swap_out_pages_total": ("Pages written out to swap.", ("pswpout",), "pswpout"),
    "memwarden_workingset_refaults_total": (
        "Evicted pages faulted back in soon after (thrashing).",
        ("workingset_refault_anon", "workingset_refault_file"),
        "workingset_refault",
    ),
}


_KEYS = tuple(sorted({key for _, keys, _ in VMSTAT_COUNTERS.values() for key in keys} | {"workingset_refault"}))


def host_counters(vmstat: dict[str, int]) -> dict[str, int]:
    values: dict[str, int] = {}
    for name, (_, keys, _) in VMSTAT_COUNTERS.items():
        present = [vmstat[key] for key in keys if key in vmstat]
        if present:
            values[name] = sum(present)
        elif name == "memwarden_workingset_refaults_total" and "workingset_refault" in vmstat:
            values[name] = vmstat["workingset_refault"]  # kernels before 5.9 had one counter
    return values


def cgroup_counters(stat: dict[str, int], events: dict[str, int]) -> dict[str, int]:
    """The same counters from a cgroup's memory.stat and memory.events, where it has them."""
    values: dict[str, int] = {}
    for name, (_, _, key) in VMSTAT_COUNTERS.items():
        source, _, field = key.rpartition(":")
        table = events if source == "events" else stat
        if field in table:
            values[name] = table[field]
    return values


def counter_families(values: dict[str, int], labels: dict[str, str] | None = None) -> list[Metric]:
    metrics = ((name.removesuffix("_total"), doc, values.get(name)) for name, (doc, _, _) in VMSTAT_COUNTERS.items())
    return single_sample_families(CounterMetricFamily, metrics, labels)


class VmstatCollector(HostSource):
    """memwarden_oom_kills_total and friends, host-level; absent where the kernel lacks a counter."""

    name = "vmstat"

    def scrape(self, problems: list[str]) -> list[Metric]:
        state = self.cgroup_scope()
        if state is not None and state.memory is not None:
            values = cgroup_counters(state.memory.stat, state.memory.events)
        else:
            values = host_counters(pick(self.read(f"{self.proc_root}/vmstat"), _KEYS))
        return counter_families(values)
