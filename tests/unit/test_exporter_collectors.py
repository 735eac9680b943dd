"""Each collector on the fake trees: values, absences, failures and odd processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from memwarden.contract import metrics as c
from memwarden.exporter.collectors import (
    CgroupCollector,
    ComponentsCollector,
    MeminfoCollector,
    PressureCollector,
    VmstatCollector,
)
from memwarden.exporter.registry import build_registry
from memwarden.system import ComponentSpec, Hierarchy

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def trees(fixtures_dir: Path) -> Path:
    return fixtures_dir / "exporter"


def registry_of(collector: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return registry


def names(registry: CollectorRegistry) -> set[str]:
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_meminfo_publishes_every_gauge_of_the_contract_in_bytes(trees: Path) -> None:
    registry = registry_of(MeminfoCollector(proc_root=str(trees / "v2" / "proc")))
    value = registry.get_sample_value
    assert value(c.MEMORY_TOTAL.name) == 24684092 * 1024
    assert value(c.MEMORY_AVAILABLE.name) == 24337268 * 1024
    assert value(c.SWAP_TOTAL.name) == 2097152 * 1024
    assert value(c.SWAP_FREE.name) == 2000000 * 1024
    assert names(registry) == {
        f"memwarden_{suffix}"
        for suffix in (
            "memory_total_bytes", "memory_available_bytes", "memory_free_bytes", "memory_cached_bytes",
            "memory_buffers_bytes", "memory_shared_bytes", "memory_slab_reclaimable_bytes", "memory_anon_bytes",
            "memory_committed_bytes", "memory_commit_limit_bytes", "swap_total_bytes", "swap_free_bytes",
        )
    }  # fmt: skip


def test_pressure_is_counted_in_seconds_and_absent_on_a_kernel_without_psi(trees: Path) -> None:
    v2 = registry_of(PressureCollector(proc_root=str(trees / "v2" / "proc")))
    assert v2.get_sample_value(c.PRESSURE_WAITING.name) == 1.5
    assert v2.get_sample_value(c.PRESSURE_STALLED.name) == 0.25
    v1 = registry_of(PressureCollector(proc_root=str(trees / "v1" / "proc")))
    assert names(v1) == set()  # absent, not zero


def test_vmstat_counters_and_an_old_kernel_without_oom_kill(trees: Path) -> None:
    v2 = registry_of(VmstatCollector(proc_root=str(trees / "v2" / "proc")))
    assert v2.get_sample_value(c.OOM_KILLS.name) == 3
    assert v2.get_sample_value(c.MAJOR_PAGE_FAULTS.name) == 12345
    assert v2.get_sample_value(c.SWAP_IN_PAGES.name) == 100
    assert v2.get_sample_value(c.SWAP_OUT_PAGES.name) == 200
    assert v2.get_sample_value(c.WORKINGSET_REFAULTS.name) == 30  # anon + file
    v1 = registry_of(VmstatCollector(proc_root=str(trees / "v1" / "proc")))
    assert v1.get_sample_value(c.OOM_KILLS.name) is None
    assert v1.get_sample_value(c.WORKINGSET_REFAULTS.name) == 55  # the single pre-5.9 counter


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ("v2", {"/init.scope", "/system.slice", "/system.slice/memwarden-exporter.service", "/user.slice"}),
        ("v1", {"/system.slice", "/system.slice/memwarden-exporter.service"}),
        ("hybrid", {"/system.slice", "/system.slice/memwarden-exporter.service"}),
    ],
)
def test_cgroup_collector_reports_the_top_level_and_its_own_cgroup(trees: Path, tree: str, expected: set[str]) -> None:
    collector = CgroupCollector(proc_root=str(trees / tree / "proc"), hierarchy=Hierarchy.detect(trees / tree / "cgroup"))
    assert set(collector.paths()) == expected


def test_cgroup_collector_facts_on_v2(trees: Path) -> None:
    collector = CgroupCollector(
        proc_root=str(trees / "v2" / "proc"),
        hierarchy=Hierarchy.detect(trees / "v2" / "cgroup"),
        extra_paths=lambda: ["/system.slice/api.service"],
    )
    value = registry_of(collector).get_sample_value
    api = {"cgroup": "/system.slice/api.service"}
    assert value(c.CGROUP_MEMORY_USAGE.name, api) == 256 * MiB
    assert value(c.CGROUP_MEMORY_LIMIT.name, api) == 1024 * MiB
    assert value(c.CGROUP_MEMORY_WORKING_SET.name, api) == 196 * MiB
    assert value(c.CGROUP_MEMORY_ANON.name, api) == 150 * MiB
    assert value(c.CGROUP_MEMORY_FILE.name, api) == 100 * MiB
    assert value(c.CGROUP_MEMORY_ACTIVE_FILE.name, api) == 40 * MiB
    assert value(c.CGROUP_MEMORY_INACTIVE_FILE.name, api) == 60 * MiB
    assert value(c.CGROUP_SWAP.name, api) == 8 * MiB
    for event, count in {"oom": 2, "oom_kill": 1, "high": 5, "max": 7}.items():
        assert value(c.CGROUP_MEMORY_EVENTS.name, {**api, "event": event}) == count
    assert value(c.CGROUP_PRESSURE_WAITING.name, api) == 0.5
    assert value(c.CGROUP_PRESSURE_STALLED.name, api) == 0.125
    # unlimited cgroups have no limit series
    assert value(c.CGROUP_MEMORY_LIMIT.name, {"cgroup": "/system.slice"}) is None


def test_cgroup_collector_on_v1_and_hybrid(trees: Path) -> None:
    for tree, psi in (("v1", None), ("hybrid", 0.03)):
        collector = CgroupCollector(
            proc_root=str(trees / tree / "proc"),
            hierarchy=Hierarchy.detect(trees / tree / "cgroup"),
            extra_paths=lambda: ["/system.slice/api.service"],
        )
        value = registry_of(collector).get_sample_value
        api = {"cgroup": "/system.slice/api.service"}
        assert value(c.CGROUP_MEMORY_USAGE.name, api) is not None, tree
        assert value(c.CGROUP_MEMORY_EVENTS.name, {**api, "event": "oom"}) is None  # v1 has no such count
        assert value(c.CGROUP_PRESSURE_WAITING.name, api) == psi, tree
    value = registry_of(
        CgroupCollector(
            proc_root=str(trees / "v1" / "proc"),
            hierarchy=Hierarchy.detect(trees / "v1" / "cgroup"),
            extra_paths=lambda: ["/system.slice/api.service"],
        )
    ).get_sample_value
    assert value(c.CGROUP_MEMORY_LIMIT.name, {"cgroup": "/system.slice/api.service"}) == 512 * MiB
    assert value(c.CGROUP_MEMORY_EVENTS.name, {"cgroup": "/system.slice/api.service", "event": "max"}) == 9


def v2_components(trees: Path) -> list[ComponentSpec]:
    return [
        ComponentSpec("workers", "cmdline", r"worker\.py", 64 * MiB),
        ComponentSpec("nginx", "pidfile", str(trees / "v2" / "run" / "nginx.pid"), 32 * MiB, pss=True),
        ComponentSpec("api", "systemd_unit", "api", "cgroup"),
        ComponentSpec("db", "cgroup", "/system.slice/db.service", "cgroup"),
        ComponentSpec("stopped", "systemd_unit", "stopped.service", "cgroup"),
        ComponentSpec("absent", "cmdline", "no-such-program", 10 * MiB),
    ]


def test_components_by_every_kind_of_match(trees: Path) -> None:
    collector = ComponentsCollector(
        v2_components(trees), proc_root=str(trees / "v2" / "proc"), cgroup_root=str(trees / "v2" / "cgroup")
    )
    value = registry_of(collector).get_sample_value

    def of(name: str, component: str) -> float | None:
        return value(name, {"component": component})

    # processes: RSS sum of the live ones; the exporter itself and the exited 302 do not count
    assert of(c.COMPONENT_MEMORY.name, "workers") == (2560 + 1280) * 4096
    assert of(c.COMPONENT_PROCESSES.name, "workers") == 2
    assert of(c.COMPONENT_SWAP.name, "workers") == 1024 * 1024  # VmSwap, the host has swap
    assert of(c.COMPONENT_LIMIT.name, "workers") == 64 * MiB
    # pidfile with PSS: master and every descendant
    assert of(c.COMPONENT_MEMORY.name, "nginx") == (1000 + 2000 + 2000 + 500) * 4 // 2 * 1024
    assert of(c.COMPONENT_PROCESSES.name, "nginx") == 4
    # cgroup: working set, cgroup swap, the cgroup's own limit for budget: cgroup, PSI and counters
    assert of(c.COMPONENT_MEMORY.name, "api") == 196 * MiB
    assert of(c.COMPONENT_LIMIT.name, "api") == 1024 * MiB
    assert of(c.COMPONENT_SWAP.name, "api") == 8 * MiB
    assert of(c.PRESSURE_WAITING.name, "api") == 0.5
    assert of(c.PRESSURE_STALLED.name, "api") == 0.125
    assert of(c.OOM_KILLS.name, "api") == 1
    assert of(c.MAJOR_PAGE_FAULTS.name, "api") == 42
    assert of(c.WORKINGSET_REFAULTS.name, "api") == 7
    # an unlimited cgroup with budget: cgroup has no limit series
    assert of(c.COMPONENT_MEMORY.name, "db") == 280 * MiB
    assert of(c.COMPONENT_LIMIT.name, "db") is None
    assert of(c.COMPONENT_PROCESSES.name, "db") == 2
    # a unit that is not running: no memory series, zero processes
    assert of(c.COMPONENT_MEMORY.name, "stopped") is None
    assert of(c.COMPONENT_PROCESSES.name, "stopped") == 0
    # processes that match nothing use nothing
    assert of(c.COMPONENT_MEMORY.name, "absent") == 0
    assert of(c.COMPONENT_PROCESSES.name, "absent") == 0
    # no per-component counters for plain processes: a sum over processes is no counter
    assert of(c.OOM_KILLS.name, "workers") is None


def test_component_swap_is_not_read_per_process_when_the_host_has_no_swap(trees: Path) -> None:
    collector = ComponentsCollector(
        [ComponentSpec("api", "cmdline", "/usr/bin/api", 10 * MiB)],
        proc_root=str(trees / "v1" / "proc"),
        cgroup_root=str(trees / "v1" / "cgroup"),
    )
    assert registry_of(collector).get_sample_value(c.COMPONENT_SWAP.name, {"component": "api"}) == 0


def test_v1_component_by_unit_uses_the_memory_controller(trees: Path) -> None:
    collector = ComponentsCollector(
        [ComponentSpec("api", "systemd_unit", "api.service", "cgroup")],
        proc_root=str(trees / "v1" / "proc"),
        cgroup_root=str(trees / "v1" / "cgroup"),
    )
    value = registry_of(collector).get_sample_value
    assert value(c.COMPONENT_MEMORY.name, {"component": "api"}) == 240 * MiB
    assert value(c.COMPONENT_LIMIT.name, {"component": "api"}) == 512 * MiB
    assert value(c.COMPONENT_SWAP.name, {"component": "api"}) == 4 * MiB
    assert value(c.OOM_KILLS.name, {"component": "api"}) == 2
    assert value(c.PRESSURE_WAITING.name, {"component": "api"}) is None  # no PSI on v1


def success(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["collector"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == c.COLLECTOR_SUCCESS.name
    }


def test_every_collector_succeeds_on_a_healthy_tree_and_host_series_have_no_component_label(trees: Path) -> None:
    registry = build_registry(
        v2_components(trees), proc_root=str(trees / "v2" / "proc"), cgroup_root=str(trees / "v2" / "cgroup")
    )
    assert success(registry) == {"meminfo": 1, "pressure": 1, "vmstat": 1, "components": 1, "cgroup": 1}
    families = {family.name: family for family in registry.collect()}
    oom = families["memwarden_oom_kills"]
    assert [sample.labels for sample in oom.samples] == [{}, {"component": "api"}, {"component": "db"}]
    assert registry.get_sample_value(c.BUILD_INFO.name, {"version": __import__("memwarden").__version__}) == 1


def test_unreadable_sources_fail_alone_and_never_the_scrape(trees: Path) -> None:
    tree = trees / "unreadable"
    registry = build_registry(
        [ComponentSpec("api", "cgroup", "/system.slice/api.service", "cgroup"),
         ComponentSpec("db", "cgroup", "/system.slice/db.service", "cgroup")],
        proc_root=str(tree / "proc"),
        cgroup_root=str(tree / "cgroup"),
    )  # fmt: skip
    assert success(registry) == {"meminfo": 0, "pressure": 0, "vmstat": 0, "components": 0, "cgroup": 0}
    value = registry.get_sample_value
    assert value(c.MEMORY_TOTAL.name) is None
    assert value(c.PRESSURE_WAITING.name) is None
    # api's memory.stat cannot be read; db is still published
    assert value(c.COMPONENT_MEMORY.name, {"component": "api"}) is None
    assert value(c.COMPONENT_MEMORY.name, {"component": "db"}) == 80 * MiB
    assert value(c.CGROUP_MEMORY_USAGE.name, {"cgroup": "/system.slice/db.service"}) == 100 * MiB
    assert value(c.COLLECTOR_DURATION.name, {"collector": "meminfo"}) is not None


def test_a_hybrid_unit_without_v1_memory_accounting_keeps_its_unified_psi(trees: Path) -> None:
    tree = trees / "hybrid"
    value = build_registry(
        [ComponentSpec("cache", "systemd_unit", "cache", 1 << 30)],
        proc_root=str(tree / "proc"),
        cgroup_root=str(tree / "cgroup"),
    ).get_sample_value
    labels = {"component": "cache"}
    assert value(c.COMPONENT_MEMORY.name, labels) == 3000 * 4096  # its process's RSS
    assert value(c.COMPONENT_PROCESSES.name, labels) == 1
    assert value(c.PRESSURE_WAITING.name, labels) == 0.02
    assert value(c.PRESSURE_STALLED.name, labels) == 0.005
    assert value(c.OOM_KILLS.name, labels) is None  # no counters without memory accounting
    assert value(c.COLLECTOR_SUCCESS.name, {"collector": "components"}) == 1
