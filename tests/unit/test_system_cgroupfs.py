"""Cgroup layouts, memory facts of v1 and v2 cgroups, own cgroup and effective limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.system import Hierarchy, effective_limit, parse_pressure, read_memory, read_pressure

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def trees(fixtures_dir: Path) -> Path:
    return fixtures_dir / "exporter"


@pytest.mark.parametrize(
    ("tree", "layout", "memory_on_unified"),
    [("v2", "unified", True), ("v1", "legacy", False), ("hybrid", "hybrid", False), ("container", "unified", True)],
)
def test_layout_is_detected(trees: Path, tree: str, layout: str, memory_on_unified: bool) -> None:
    hierarchy = Hierarchy.detect(trees / tree / "cgroup")
    assert hierarchy.layout == layout
    assert hierarchy.memory_on_unified is memory_on_unified


def test_v2_cgroup_facts(trees: Path) -> None:
    hierarchy = Hierarchy.detect(trees / "v2" / "cgroup")
    cgroup = hierarchy.locate("/system.slice/api.service")
    assert cgroup is not None
    memory = read_memory(cgroup)
    assert memory is not None
    assert (memory.version, memory.usage, memory.limit, memory.swap) == (2, 256 * MiB, 1024 * MiB, 8 * MiB)
    assert memory.stat["anon"] == 150 * MiB and memory.stat["inactive_file"] == 60 * MiB
    assert memory.stat["workingset_refault"] == 7 and memory.stat["pgmajfault"] == 42
    assert memory.events == {"oom": 2, "oom_kill": 1, "high": 5, "max": 7}
    assert memory.pressure == {"some": 0.5, "full": 0.125}
    assert memory.working_set == 196 * MiB


def test_v2_unlimited_cgroup_has_no_limit(trees: Path) -> None:
    cgroup = Hierarchy.detect(trees / "v2" / "cgroup").locate("/system.slice/db.service")
    memory = read_memory(cgroup)  # type: ignore[arg-type]
    assert memory is not None and memory.limit is None


def test_v1_cgroup_facts_use_the_hierarchical_totals(trees: Path) -> None:
    hierarchy = Hierarchy.detect(trees / "v1" / "cgroup")
    cgroup = hierarchy.locate("/system.slice/api.service")
    memory = read_memory(cgroup)  # type: ignore[arg-type]
    assert memory is not None
    assert (memory.version, memory.usage, memory.limit, memory.swap) == (1, 300 * MiB, 512 * MiB, 4 * MiB)
    assert memory.stat["file"] == 96 * MiB and memory.stat["workingset_refault"] == 3
    assert memory.events == {"oom_kill": 2, "max": 9}  # v1 has no "oom" or "high" counters
    assert memory.pressure is None  # no PSI on v1
    root = read_memory(hierarchy.locate("/"))  # type: ignore[arg-type]
    assert root is not None and root.limit is None  # 9223372036854771712 means unlimited


def test_hybrid_cgroup_reads_memory_from_v1_and_psi_from_the_unified_tree(trees: Path) -> None:
    hierarchy = Hierarchy.detect(trees / "hybrid" / "cgroup")
    memory = read_memory(hierarchy.locate("/system.slice/api.service"))  # type: ignore[arg-type]
    assert memory is not None and memory.version == 1
    assert memory.pressure == {"some": 0.03, "full": 0.007}
    assert memory.limit == 768 * MiB


def test_own_cgroup_follows_proc_self_cgroup(trees: Path) -> None:
    for tree, path in [
        ("v2", "/system.slice/memwarden-exporter.service"),
        ("v1", "/system.slice/memwarden-exporter.service"),
        ("hybrid", "/system.slice/memwarden-exporter.service"),
        ("container", "/kubepods.slice/pod-a/ctr"),
    ]:
        own = Hierarchy.detect(trees / tree / "cgroup").own_cgroup(str(trees / tree / "proc"))
        assert own is not None and own.path == path, tree


def test_effective_limit_is_the_tightest_on_the_way_to_the_root(trees: Path) -> None:
    hierarchy = Hierarchy.detect(trees / "container" / "cgroup")
    own = hierarchy.own_cgroup(str(trees / "container" / "proc"))
    assert own is not None
    memory = read_memory(own)
    assert memory is not None and memory.limit == 512 * MiB
    assert effective_limit(hierarchy, own) == 384 * MiB  # the pod's limit binds first
    v1 = Hierarchy.detect(trees / "v1" / "cgroup")
    assert effective_limit(v1, v1.locate("/system.slice/api.service")) == 512 * MiB  # type: ignore[arg-type]
    assert effective_limit(v1, v1.locate("/system.slice")) is None  # type: ignore[arg-type]


def test_a_vanished_cgroup_is_an_error_for_the_caller(tmp_path: Path, trees: Path) -> None:
    import shutil

    shutil.copytree(trees / "v2", tmp_path / "v2", symlinks=True)
    hierarchy = Hierarchy.detect(tmp_path / "v2" / "cgroup")
    cgroup = hierarchy.locate("/system.slice/api.service")
    shutil.rmtree(tmp_path / "v2" / "cgroup" / "system.slice" / "api.service")
    with pytest.raises(OSError):
        read_memory(cgroup)  # type: ignore[arg-type]


def test_pressure_parses_totals_in_seconds_and_reports_no_psi_as_none(tmp_path: Path, trees: Path) -> None:
    assert parse_pressure("some avg10=1.00 avg60=0 avg300=0 total=2500000\nfull avg10=0 total=1\n") == {
        "some": 2.5,
        "full": 0.000001,
    }
    assert read_pressure(str(trees / "v1" / "proc" / "pressure" / "memory")) is None
    with pytest.raises(OSError):
        read_pressure(str(trees / "unreadable" / "proc" / "pressure" / "memory"))


def test_cgroup_mounts_are_read_from_mountinfo() -> None:
    from memwarden.system.cgroupfs import cgroup_mounts

    mounts = cgroup_mounts(
        "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "31 25 0:27 /docker/a\\040b /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /proc rw - proc proc rw\n"
        "garbage line\n"
    )
    assert [(m.version, m.root, m.mount_point) for m in mounts] == [
        (2, "/", "/sys/fs/cgroup/unified"),
        (1, "/docker/a b", "/sys/fs/cgroup/memory"),
    ]
    assert "memory" in mounts[1].options


def test_own_location_strips_the_mount_root_and_falls_back_to_the_mount_point(tmp_path: Path) -> None:
    # a v1 memory tree that is a bind mount of /docker/abc, with a nested cgroup "worker" in it
    (tmp_path / "memory" / "worker").mkdir(parents=True)
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text("1\n")
    hierarchy = Hierarchy.detect(tmp_path)
    mountinfo = f"31 25 0:27 /docker/abc {tmp_path}/memory rw - cgroup cgroup rw,memory\n"

    def where(proc_cgroup: str, info: str | None = mountinfo) -> tuple[str, str] | None:
        location = hierarchy.own_location(proc_cgroup, info)
        return None if location is None else (location.name, location.path)

    assert where("4:memory:/docker/abc\n") == ("/docker/abc", "/")
    assert where("4:memory:/docker/abc/worker\n") == ("/docker/abc/worker", "/worker")
    # a nested cgroup we cannot see, or a path outside the mounted subtree: the mount point
    assert where("4:memory:/docker/abc/gone\n") == ("/docker/abc/gone", "/")
    assert where("4:memory:/elsewhere\n") == ("/elsewhere", "/")
    # a mount of the whole hierarchy (a host) and no mountinfo at all: paths are as named
    assert where("4:memory:/docker/abc\n", mountinfo.replace("/docker/abc", "/")) == ("/docker/abc", "/docker/abc")
    assert where("4:memory:/docker/abc\n", None) == ("/docker/abc", "/docker/abc")
