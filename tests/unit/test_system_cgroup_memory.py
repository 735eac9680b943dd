"""Memory facts of v1 and v2 cgroups (hierarchical totals, hybrid PSI) and effective limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.system import Hierarchy, effective_limit, read_memory

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def trees(fixtures_dir: Path) -> Path:
    return fixtures_dir / "exporter"


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
