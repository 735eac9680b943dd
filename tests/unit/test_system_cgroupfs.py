"""Cgroup layouts, where our own cgroup is, mounts, and PSI parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.system import Hierarchy, parse_pressure, read_pressure


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


def test_own_cgroup_follows_proc_self_cgroup(trees: Path) -> None:
    for tree, path in [
        ("v2", "/system.slice/memwarden-exporter.service"),
        ("v1", "/system.slice/memwarden-exporter.service"),
        ("hybrid", "/system.slice/memwarden-exporter.service"),
        ("container", "/kubepods.slice/pod-a/ctr"),
    ]:
        own = Hierarchy.detect(trees / tree / "cgroup").own_cgroup(str(trees / tree / "proc"))
        assert own is not None and own.path == path, tree


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
