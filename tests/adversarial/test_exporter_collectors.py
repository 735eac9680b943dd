"""The exporter on large components and hostile files: full counts, no hang, bounded matching."""

from __future__ import annotations

import os
import threading

import pytest

from memwarden.contract import metrics as c
from memwarden.exporter.registry import build_registry
from memwarden.system import ComponentSpec, process_memory_bytes
from support.crowd import Crowd, cgroup_in, unified_root

CROWD = 1500


def _sample(registry, name, component):
    return registry.get_sample_value(name, {"component": component})


@pytest.mark.slow
def test_a_cgroup_of_1500_processes_is_counted_whole_with_all_its_memory():
    tree = unified_root()
    if tree is None:
        pytest.skip("no writable cgroup v2 tree")
    with cgroup_in(tree) as (path, _), Crowd(CROWD, [tree / path.lstrip("/")]) as crowd:
        registry = build_registry([ComponentSpec("crowd", "cgroup", path, budget="1GiB")])
        everyone = [crowd.parent.pid, *crowd.children()]
        assert _sample(registry, c.COMPONENT_PROCESSES.name, "crowd") == CROWD + 1
        # On a hybrid host the v2 tree has no memory controller: the exporter sums the RSS.
        if not (tree / path.lstrip("/") / "memory.current").exists():
            expected, _ = process_memory_bytes("/proc", everyone)
            assert _sample(registry, c.COMPONENT_MEMORY.name, "crowd") == pytest.approx(expected, rel=0.05)


@pytest.mark.slow
def test_1500_children_of_a_pidfile_parent_are_all_counted(tmp_path):
    with Crowd(CROWD) as crowd:
        pidfile = tmp_path / "crowd.pid"
        pidfile.write_text(f"{crowd.parent.pid}\n")
        registry = build_registry([ComponentSpec("crowd", "pidfile", str(pidfile), budget="1GiB")])
        assert _sample(registry, c.COMPONENT_PROCESSES.name, "crowd") == CROWD + 1
        registry = build_registry([ComponentSpec("crowd", "cmdline", crowd.marker, budget="1GiB")])
        assert _sample(registry, c.COMPONENT_PROCESSES.name, "crowd") == CROWD


def test_a_pidfile_that_is_a_fifo_does_not_hang_a_scrape(tmp_path):
    fifo = tmp_path / "app.pid"
    os.mkfifo(fifo)
    registry = build_registry([ComponentSpec("app", "pidfile", str(fifo), budget="1GiB")])
    done = threading.Event()
    result: list[float | None] = []

    def scrape() -> None:
        result.append(_sample(registry, c.COMPONENT_PROCESSES.name, "app"))
        done.set()

    threading.Thread(target=scrape, daemon=True).start()
    if not done.wait(5):
        # unblock the stuck open() so the thread can end, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("a scrape blocked on a FIFO named as the pidfile")
    assert result == [0.0]
