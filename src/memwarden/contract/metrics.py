"""The metric contract: each series memwarden publishes and the rules, dashboards and tests read.

Base units, `_total` on counters, prefix `memwarden_` (docs/design.md). A `Metric` holds the
name as it is exposed and queried; `family` is the name client_python's counter families
take (they add `_total` themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    """One published series: its exposed name, help text, type and labels."""

    name: str
    help: str
    type: Literal["gauge", "counter"] = "gauge"
    labels: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        """The name to give a client_python metric family (counters without `_total`)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


def _gauge(name: str, help_: str, labels: tuple[str, ...] = ()) -> Metric:
    return Metric(f"memwarden_{name}", help_, "gauge", labels)


def _counter(name: str, help_: str, labels: tuple[str, ...] = ()) -> Metric:
    return Metric(f"memwarden_{name}_total", help_, "counter", labels)


# Host memory (meminfo collector; no labels). Order is the exposition's.
MEMORY_TOTAL = _gauge("memory_total_bytes", "Usable RAM (MemTotal).")
MEMORY_AVAILABLE = _gauge("memory_available_bytes", "Memory available for new work without swapping (MemAvailable).")
MEMINFO: tuple[Metric, ...] = (
    MEMORY_TOTAL,
    MEMORY_AVAILABLE,
    _gauge("memory_free_bytes", "Memory not used at all (MemFree)."),
    _gauge("memory_cached_bytes", "Page cache, without buffers (Cached)."),
    _gauge("memory_buffers_bytes", "Block device buffers (Buffers)."),
    _gauge("memory_shared_bytes", "Shared memory and tmpfs (Shmem)."),
    _gauge("memory_slab_reclaimable_bytes", "Kernel slab that can be reclaimed (SReclaimable)."),
    _gauge("memory_anon_bytes", "Anonymous memory of processes (AnonPages)."),
    _gauge("memory_committed_bytes", "Memory promised to processes (Committed_AS)."),
    _gauge("memory_commit_limit_bytes", "Limit of committed memory under strict overcommit (CommitLimit)."),
    SWAP_TOTAL := _gauge("swap_total_bytes", "Swap space (SwapTotal)."),
    SWAP_FREE := _gauge("swap_free_bytes", "Unused swap space (SwapFree)."),
)

# PSI (pressure collector), host-level and with `component`.
PRESSURE_WAITING = _counter("pressure_waiting_seconds", "Time some tasks were stalled waiting for memory (PSI some).")
PRESSURE_STALLED = _counter("pressure_stalled_seconds", "Time all non-idle tasks were stalled on memory at once (PSI full).")

# Kernel counters (vmstat collector), host-level and with `component`.
OOM_KILLS = _counter("oom_kills", "Processes killed by the OOM killer.")
MAJOR_PAGE_FAULTS = _counter("major_page_faults", "Page faults that needed disk I/O.")
SWAP_IN_PAGES = _counter("swap_in_pages", "Pages read in from swap.")
SWAP_OUT_PAGES = _counter("swap_out_pages", "Pages written out to swap.")
WORKINGSET_REFAULTS = _counter("workingset_refaults", "Evicted pages faulted back in soon after (thrashing).")

# Per component (components collector).
COMPONENT_MEMORY = _gauge(
    "component_memory_bytes",
    "Working set of the component: cgroup usage minus inactive file cache, or its processes' RSS (PSS when set).",
    ("component",),
)
COMPONENT_LIMIT = _gauge(
    "component_limit_bytes",
    "The component's budget: the policy's bytes, or its cgroup's limit for `budget: cgroup`; absent when unlimited.",
    ("component",),
)
COMPONENT_SWAP = _gauge("component_swap_bytes", "Swap used by the component.", ("component",))
COMPONENT_PROCESSES = _gauge("component_processes", "Live processes of the component.", ("component",))

# The exporter about itself.
COLLECTOR_SUCCESS = _gauge(
    "collector_success", "1 when the collector's last scrape read its source without error, else 0.", ("collector",)
)
COLLECTOR_DURATION = _gauge("collector_duration_seconds", "How long the collector's last scrape took.", ("collector",))
BUILD_INFO = _gauge("build_info", "Version of the memwarden exporter; always 1.", ("version",))
MEMORY_SCOPE_INFO = _gauge(
    "memory_scope_info",
    "Whose memory the host-level series describe: scope=host (/proc/meminfo) or scope=cgroup "
    "(the exporter's memory-limited cgroup, named by `cgroup`); always 1.",
    ("scope", "cgroup"),
)

# Cgroups of the tree (cgroup collector): a bounded set of cgroups, labelled by their path.
_CG = ("cgroup",)
CGROUP_MEMORY_USAGE = _gauge("cgroup_memory_usage_bytes", "Memory charged to the cgroup (memory.current / usage_in_bytes).", _CG)
CGROUP_MEMORY_LIMIT = _gauge(
    "cgroup_memory_limit_bytes", "The cgroup's own memory limit (memory.max / limit_in_bytes); absent when unlimited.", _CG
)
CGROUP_MEMORY_WORKING_SET = _gauge(
    "cgroup_memory_working_set_bytes", "Usage minus inactive file cache, as cAdvisor counts it.", _CG
)
CGROUP_MEMORY_ANON = _gauge("cgroup_memory_anon_bytes", "Anonymous memory (memory.stat anon / total_rss).", _CG)
CGROUP_MEMORY_FILE = _gauge("cgroup_memory_file_bytes", "Page cache (memory.stat file / total_cache).", _CG)
CGROUP_MEMORY_ACTIVE_FILE = _gauge("cgroup_memory_active_file_bytes", "Recently used page cache (active_file).", _CG)
CGROUP_MEMORY_INACTIVE_FILE = _gauge("cgroup_memory_inactive_file_bytes", "Page cache reclaimed first (inactive_file).", _CG)
CGROUP_SWAP = _gauge("cgroup_swap_bytes", "Swap used by the cgroup, where swap is accounted.", _CG)
CGROUP_MEMORY_EVENTS = _counter(
    "cgroup_memory_events", "Memory events of the cgroup (memory.events; v1: oom_kill, max=failcnt).", ("cgroup", "event")
)
CGROUP_PRESSURE_WAITING = _counter(
    "cgroup_pressure_waiting_seconds", "Time some tasks of the cgroup waited for memory (PSI some).", _CG
)
CGROUP_PRESSURE_STALLED = _counter(
    "cgroup_pressure_stalled_seconds", "Time all tasks of the cgroup stalled on memory (PSI full).", _CG
)

# The responder (dashboards and the stack's status read it).
RESPONSES_TOTAL = _counter(
    "responses",
    "Responses decided, by action kind and result (ok, failed, timeout, dry_run, refused, "
    "no_target, cooldown, hourly_cap, concurrency; thaw and unthrottle for undos).",
    ("action", "result"),
)

# The exporter's collectors: the `collector` label of COLLECTOR_SUCCESS.
MEMINFO_COLLECTOR = "meminfo"
PRESSURE_COLLECTOR = "pressure"
VMSTAT_COLLECTOR = "vmstat"
CGROUP_COLLECTOR = "cgroup"
COMPONENTS_COLLECTOR = "components"
COLLECTORS = (MEMINFO_COLLECTOR, PRESSURE_COLLECTOR, VMSTAT_COLLECTOR, CGROUP_COLLECTOR, COMPONENTS_COLLECTOR)
# The collectors whose failure MemorySourceCollectorFailed reports, per source profile. node_exporter's `pressure` collector reports success 0 on a kernel
# without PSI (no data counts as failure there), so watching it would page on every such
# host; memwarden's own pressure collector treats "no PSI" as no data, not as an error.
WATCHED_COLLECTORS: dict[str, tuple[str, ...]] = {
    "memwarden": COLLECTORS,
    "node_exporter": (MEMINFO_COLLECTOR, VMSTAT_COLLECTOR),
}
# The collectors the dashboards show: the watched ones and, for node_exporter, `pressure`
# too — on a host with PSI its panel is worth having; on one without, a red cell there is
# information, where an alert would be a false page.
SHOWN_COLLECTORS: dict[str, tuple[str, ...]] = {
    "memwarden": COLLECTORS,
    "node_exporter": (MEMINFO_COLLECTOR, VMSTAT_COLLECTOR, PRESSURE_COLLECTOR),
}
