"""meminfo: the host's memory gauges from /proc/meminfo (or the exporter's cgroup, see scope)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from memwarden.contract import MEMINFO, MEMINFO_COLLECTOR
from memwarden.system.procfs import Read, pick

from ..scope import ScopeState
from .base import HostSource, single_sample_families

# metric suffix (its name without `memwarden_`) -> /proc/meminfo field; names and help are the contract's.
MEMINFO_FIELDS: dict[str, str] = dict(
    zip(
        (metric.name.removeprefix("memwarden_") for metric in MEMINFO),
        (
            "MemTotal",
            "MemAvailable",
            "MemFree",
            "Cached",
            "Buffers",
            "Shmem",
            "SReclaimable",
            "AnonPages",
            "Committed_AS",
            "CommitLimit",
            "SwapTotal",
            "SwapFree",
        ),
        strict=True,
    )
)
_FIELDS = tuple(MEMINFO_FIELDS.values())


def _host(proc_root: str, read: Read) -> dict[str, int]:
    kib = pick(read(f"{proc_root}/meminfo"), _FIELDS, b":")
    return {suffix: kib[field] * 1024 for suffix, field in MEMINFO_FIELDS.items() if field in kib}


def _cgroup(state: ScopeState, proc_root: str, read: Read) -> dict[str, int]:
    """The same gauges for our own cgroup: its limit is its "total"; host-only notions stay absent."""
    memory = state.memory
    assert memory is not None
    total = state.limit if state.limit is not None else state.host_total
    values: dict[str, int] = {}
    if total is not None:
        values["memory_total_bytes"] = total
        # The kubelet's eviction signal: what is left before the working set reaches the limit.
        values["memory_available_bytes"] = max(0, total - memory.working_set)
        values["memory_free_bytes"] = max(0, total - memory.usage)
    for suffix, key in (
        ("memory_cached_bytes", "file"),
        ("memory_shared_bytes", "shmem"),
        ("memory_slab_reclaimable_bytes", "slab_reclaimable"),
        ("memory_anon_bytes", "anon"),
    ):
        if key in memory.stat:
            values[suffix] = memory.stat[key]
    if memory.version == 2 and memory.swap is not None:
        swap_limit = _swap_limit(state, proc_root, read)
        if swap_limit is not None:
            values["swap_total_bytes"] = swap_limit
            values["swap_free_bytes"] = max(0, swap_limit - memory.swap)
    return values


def _swap_limit(state: ScopeState, proc_root: str, read: Read) -> int | None:
    """The swap the cgroup may use: memory.swap.max, capped by the host's swap."""
    host_swap = _host(proc_root, read).get("swap_total_bytes")
    assert state.cgroup is not None and state.cgroup.memory is not None
    try:
        text = read(f"{state.cgroup.memory}/memory.swap.max").strip()
    except OSError:
        return None
    own = None if text == b"max" else int(text)
    candidates = [value for value in (own, host_swap) if value is not None]
    return min(candidates) if candidates else None


class MeminfoCollector(HostSource):
    """memwarden_memory_*_bytes and memwarden_swap_*_bytes, host-level (no `component` label)."""

    name = MEMINFO_COLLECTOR

    def scrape(self, problems: list[str]) -> list[Metric]:
        state = self.cgroup_scope()
        values = _cgroup(state, self.proc_root, self.read) if state is not None else _host(self.proc_root, self.read)
        metrics = ((m.name, m.help, values.get(m.name.removeprefix("memwarden_"))) for m in MEMINFO)
        return single_sample_families(GaugeMetricFamily, metrics)
