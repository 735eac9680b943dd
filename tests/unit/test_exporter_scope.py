"""Container awareness: inside a memory-limited cgroup, host series describe that cgroup."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.contract import metrics as c
from memwarden.exporter.registry import build_registry

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def container(fixtures_dir: Path) -> dict[str, str]:
    tree = fixtures_dir / "exporter" / "container"
    return {"proc_root": str(tree / "proc"), "cgroup_root": str(tree / "cgroup")}


def test_inside_a_limited_cgroup_the_host_series_describe_the_cgroup(container: dict[str, str]) -> None:
    value = build_registry(**container).get_sample_value
    # the pod's 384 MiB binds before the container's 512 MiB; the host has 32 GiB
    assert value(c.MEMORY_TOTAL.name) == 384 * MiB
    # available = limit - working set (usage 300 MiB - inactive file 35 MiB), as the kubelet counts it
    assert value(c.MEMORY_AVAILABLE.name) == (384 - 265) * MiB
    assert value("memwarden_memory_free_bytes") == (384 - 300) * MiB
    assert value("memwarden_memory_cached_bytes") == 55 * MiB
    assert value("memwarden_memory_anon_bytes") == 240 * MiB
    assert value("memwarden_memory_shared_bytes") == 2 * MiB
    assert value("memwarden_memory_slab_reclaimable_bytes") == 3 * MiB
    # host-wide notions the cgroup cannot tell are absent, not the host's
    for absent in ("memwarden_memory_buffers_bytes", "memwarden_memory_committed_bytes", "memwarden_memory_commit_limit_bytes"):
        assert value(absent) is None, absent
    # PSI and counters are the cgroup's (the host's PSI is 80 s, the host saw 11 OOM kills)
    assert value(c.PRESSURE_WAITING.name) == 2.0
    assert value(c.PRESSURE_STALLED.name) == 0.5
    assert value(c.OOM_KILLS.name) == 1
    assert value(c.MAJOR_PAGE_FAULTS.name) == 17
    assert value(c.WORKINGSET_REFAULTS.name) == 4
    assert value(c.SWAP_IN_PAGES.name) is None  # this kernel's memory.stat has no pswpin
    # the host has no swap, so the container has none either
    assert value(c.SWAP_TOTAL.name) == 0
    assert value(c.MEMORY_SCOPE_INFO.name, {"scope": "cgroup", "cgroup": "/kubepods.slice/pod-a/ctr"}) == 1


def test_memory_scope_host_reports_the_host_even_in_a_container(container: dict[str, str]) -> None:
    value = build_registry(scope_mode="host", **container).get_sample_value
    assert value(c.MEMORY_TOTAL.name) == 32 * 1024 * MiB
    assert value(c.OOM_KILLS.name) == 11
    assert value(c.PRESSURE_WAITING.name) == 80.0
    assert value(c.MEMORY_SCOPE_INFO.name, {"scope": "host", "cgroup": ""}) == 1


def test_an_unlimited_cgroup_is_host_scope_unless_cgroup_scope_is_forced(fixtures_dir: Path) -> None:
    tree = fixtures_dir / "exporter" / "v2"
    roots = {"proc_root": str(tree / "proc"), "cgroup_root": str(tree / "cgroup")}
    auto = build_registry(**roots).get_sample_value
    assert auto(c.MEMORY_SCOPE_INFO.name, {"scope": "host", "cgroup": ""}) == 1
    assert auto(c.MEMORY_TOTAL.name) == 24684092 * 1024
    forced = build_registry(scope_mode="cgroup", **roots).get_sample_value
    cgroup = "/system.slice/memwarden-exporter.service"
    assert forced(c.MEMORY_SCOPE_INFO.name, {"scope": "cgroup", "cgroup": cgroup}) == 1
    # no limit anywhere: the cgroup may use all of the host, so that is its total
    assert forced(c.MEMORY_TOTAL.name) == 24684092 * 1024
    assert forced(c.MEMORY_AVAILABLE.name) == 24684092 * 1024 - 25 * MiB


def test_a_limit_on_the_exporters_own_unit_on_the_host_keeps_host_scope(fixtures_dir: Path) -> None:
    tree = fixtures_dir / "exporter" / "host-unit-limited"
    value = build_registry(proc_root=str(tree / "proc"), cgroup_root=str(tree / "cgroup")).get_sample_value
    # MemoryMax=256M on memwarden-exporter.service must not turn the host's series into the unit's
    assert value(c.MEMORY_SCOPE_INFO.name, {"scope": "host", "cgroup": ""}) == 1
    assert value(c.MEMORY_TOTAL.name) == 24684092 * 1024
    assert value(c.CGROUP_MEMORY_LIMIT.name, {"cgroup": "/system.slice/memwarden-exporter.service"}) == 256 * MiB


@pytest.mark.parametrize(
    ("tree", "cgroup"),
    [("docker-v1", "/docker/3f2a9c0e5b71"), ("docker-v2", "/system.slice/docker-3f2a9c0e5b71.scope")],
)
def test_a_container_without_a_cgroup_namespace_finds_its_bind_mounted_cgroup(fixtures_dir: Path, tree: str, cgroup: str) -> None:
    # /proc/self/cgroup names the host path; the tree at the mount point is that very cgroup
    root = fixtures_dir / "exporter" / tree
    roots = {"proc_root": str(root / "proc"), "cgroup_root": str(root / "cgroup")}
    for mode in ("auto", "cgroup"):
        value = build_registry(scope_mode=mode, **roots).get_sample_value  # type: ignore[arg-type]
        assert value(c.COLLECTOR_SUCCESS.name, {"collector": "meminfo"}) == 1, mode
        assert value(c.MEMORY_SCOPE_INFO.name, {"scope": "cgroup", "cgroup": cgroup}) == 1, mode
        assert value(c.MEMORY_TOTAL.name) == 256 * MiB, mode
        assert value(c.MEMORY_AVAILABLE.name) == (256 - 180) * MiB, mode  # usage 200 - inactive 20
        # the cgroup collector reports it too, by the name the kernel gives it
        assert value(c.CGROUP_MEMORY_USAGE.name, {"cgroup": cgroup}) == 200 * MiB, mode
        assert value(c.OOM_KILLS.name) == 1, mode
