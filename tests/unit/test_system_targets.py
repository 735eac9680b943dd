"""Finding a component's processes and cgroup on fake /proc and cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.policy import Component
from memwarden.system import Resolver, resolve, working_set_bytes

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def trees(fixtures_dir: Path) -> Path:
    return fixtures_dir / "exporter"


def component(name: str, budget: str = "1GiB", **match: str) -> Component:
    return Component(name=name, match=match, budget=budget)


def roots(tree: Path) -> dict[str, str]:
    return {"proc_root": str(tree / "proc"), "cgroup_root": str(tree / "cgroup")}


def test_cmdline_matches_processes_but_never_the_caller_or_the_vanished(trees: Path) -> None:
    target = resolve(component("workers", cmdline=r"worker\.py"), **roots(trees / "v2"))
    # 4242 is proc/self and its arguments match; 302 exits before statm is read but is
    # still listed; 303 has no cmdline at all.
    assert target.pids == (300, 301, 302)
    assert target.cgroup is None and target.kind == "cmdline"
    # 302 has no statm any more: it is left out of the sum, not an error.
    assert working_set_bytes(target, proc_root=str(trees / "v2" / "proc")) == (2560 + 1280) * 4096


def test_cmdline_searches_the_arguments_joined_with_spaces(trees: Path) -> None:
    target = resolve(component("queue-a", cmdline=r"worker\.py --queue a$"), **roots(trees / "v2"))
    assert target.pids == (300,)


def test_kernel_threads_never_match_even_an_empty_pattern_match(trees: Path) -> None:
    target = resolve(component("all", cmdline=r".*"), **roots(trees / "v2"))
    assert 2 not in target.pids and 4242 not in target.pids and 1 in target.pids


def test_pidfile_takes_the_process_and_all_its_descendants(trees: Path) -> None:
    target = resolve(component("nginx", pidfile=str(trees / "v2" / "run" / "nginx.pid")), **roots(trees / "v2"))
    assert target.pids == (400, 401, 402, 403)
    assert working_set_bytes(target, proc_root=str(trees / "v2" / "proc")) == (1000 + 2000 + 2000 + 500) * 4096


@pytest.mark.parametrize("pidfile", ["stale.pid", "garbage.pid", "missing.pid"])
def test_a_stale_garbled_or_missing_pidfile_means_no_processes(trees: Path, pidfile: str) -> None:
    target = resolve(component("x", pidfile=str(trees / "v2" / "run" / pidfile)), **roots(trees / "v2"))
    assert target.pids == () and not target.found
    assert working_set_bytes(target, proc_root=str(trees / "v2" / "proc")) == 0


def test_cgroup_match_on_v2_takes_the_unified_dir_and_every_child_cgroups_processes(trees: Path) -> None:
    tree = trees / "v2"
    target = resolve(component("db", cgroup="/system.slice/db.service"), **roots(tree))
    assert target.cgroup == tree / "cgroup" / "system.slice" / "db.service"
    assert target.cgroup_version == 2 and target.unified == target.cgroup
    assert target.pids == (600, 601)
    # working set = memory.current - inactive_file
    assert working_set_bytes(target) == 400 * MiB - 120 * MiB


def test_cgroup_match_lists_exited_pids_of_cgroup_procs_but_they_add_nothing(trees: Path) -> None:
    target = resolve(component("api", cgroup="system.slice/api.service/"), **roots(trees / "v2"))
    assert target.cgroup_path == "/system.slice/api.service"
    full = str(trees / "v2" / "cgroup" / "system.slice" / "api.service")
    assert resolve(component("api", cgroup=full), **roots(trees / "v2")).cgroup_path == "/system.slice/api.service"
    assert target.pids == (500, 501, 502)


def test_systemd_unit_is_found_in_system_slice_and_by_search_elsewhere(trees: Path) -> None:
    tree = trees / "v2"
    api = resolve(component("api", systemd_unit="api"), **roots(tree))
    assert api.cgroup == tree / "cgroup" / "system.slice" / "api.service"
    editor = resolve(component("editor", systemd_unit="editor.service"), **roots(tree))
    assert editor.cgroup_path == "/user.slice/user-1000.slice/user@1000.service/app.slice/editor.service"
    assert editor.pids == (700,)
    gone = resolve(component("gone", systemd_unit="gone.service"), **roots(tree))
    assert not gone.found and working_set_bytes(gone) is None


def test_on_cgroup_v1_the_memory_controller_dir_and_the_systemd_tree_are_used(trees: Path) -> None:
    tree = trees / "v1"
    target = resolve(component("api", systemd_unit="api.service"), **roots(tree))
    assert target.cgroup == tree / "cgroup" / "memory" / "system.slice" / "api.service"
    assert target.cgroup_version == 1 and target.unified is None
    assert target.pids == (500,)
    assert working_set_bytes(target) == 300 * MiB - 60 * MiB


def test_on_a_hybrid_host_memory_is_v1_and_the_unified_dir_is_kept_for_psi_and_freezing(trees: Path) -> None:
    tree = trees / "hybrid"
    target = resolve(component("api", cgroup="/system.slice/api.service"), **roots(tree))
    assert target.cgroup == tree / "cgroup" / "memory" / "system.slice" / "api.service"
    assert target.cgroup_version == 1
    assert target.unified == tree / "cgroup" / "unified" / "system.slice" / "api.service"
    assert target.pids == (500,)


def test_pss_is_opt_in_and_read_from_smaps_rollup(trees: Path) -> None:
    target = resolve(component("workers", cmdline=r"worker\.py"), **roots(trees / "v2"))
    proc = str(trees / "v2" / "proc")
    assert working_set_bytes(target, proc_root=proc, pss=True) == (2560 * 4 // 2 + 1280 * 4 // 2) * 1024


def test_resolver_reuses_command_lines_until_a_pid_is_reused(
    tmp_path: Path, trees: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from memwarden.system import procfs

    tree = tmp_path / "tree"
    shutil.copytree(trees / "v2", tree, symlinks=True)
    resolver = Resolver([component("workers", cmdline=r"worker\.py")], **roots(tree))
    assert resolver.resolve_all()["workers"].pids == (300, 301, 302)
    reads: list[int] = []
    real_cmdline = procfs.cmdline
    monkeypatch.setattr(procfs, "cmdline", lambda root, pid: reads.append(pid) or real_cmdline(root, pid))
    assert resolver.resolve_all()["workers"].pids == (300, 301, 302)
    assert reads == [303]  # only the pid whose command line could not be read before
    # pid 301 exits and the pid is taken by an unrelated process (a new /proc inode).
    shutil.copytree(tree / "proc" / "1", tree / "proc" / "301.new")
    shutil.rmtree(tree / "proc" / "301")
    (tree / "proc" / "301.new").rename(tree / "proc" / "301")
    assert resolver.resolve_all()["workers"].pids == (300, 302)


def test_a_cached_verdict_is_checked_again_so_a_retitled_process_is_seen(tmp_path: Path, trees: Path) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(trees / "v2", tree, symlinks=True)
    now = [100_000.0]  # seconds since boot; the fixture's processes started 10 s after boot
    resolver = Resolver([component("workers", cmdline=r"worker\.py")], clock=lambda: now[0], **roots(tree))
    assert resolver.resolve_all()["workers"].pids == (300, 301, 302)
    # pid 1 retitles itself (setproctitle rewrites argv in place: pid, inode and exe stay)
    (tree / "proc" / "1" / "cmdline").write_text("python3\0worker.py\0")
    now[0] += 30
    assert resolver.resolve_all()["workers"].pids == (300, 301, 302)  # an old process: not every scrape
    now[0] += 100  # past the 60-120 s re-check of old processes
    assert resolver.resolve_all()["workers"].pids == (1, 300, 301, 302)


def test_a_young_process_is_checked_every_second(tmp_path: Path, trees: Path) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(trees / "v2", tree, symlinks=True)
    now = [15.0]  # 5 s after the fixture's processes started
    resolver = Resolver([component("workers", cmdline=r"worker\.py")], clock=lambda: now[0], **roots(tree))
    assert resolver.resolve_all()["workers"].pids == (300, 301, 302)
    (tree / "proc" / "300" / "cmdline").write_text("/usr/sbin/nginx\0")  # it exec()s
    now[0] += 1.5
    assert resolver.resolve_all()["workers"].pids == (301, 302)


@pytest.mark.slow  # a real process that execs; the re-check timing is tested on a fake tree with a fake clock, quick
def test_a_real_process_that_execs_into_a_match_is_found(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import uuid

    from support.servers import wait_until

    prefix = f"mw{uuid.uuid4().hex[:8]}"
    # the marker is built at run time, so the shell's own command line does not contain it
    script = 'read _; exec "$PY" -c "import time; time.sleep(30)" "${P}WORKER"'
    child = subprocess.Popen(["bash", "-c", script], stdin=subprocess.PIPE, env={**os.environ, "PY": sys.executable, "P": prefix})
    try:
        resolver = Resolver([component("late", cmdline=f"{prefix}WORKER")])
        assert resolver.resolve_all()["late"].pids == ()  # seen before its exec
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()
        wait_until(lambda: f"{prefix}WORKER".encode() in Path(f"/proc/{child.pid}/cmdline").read_bytes(), timeout=10)
        wait_until(lambda: resolver.resolve_all()["late"].pids == (child.pid,), timeout=10)
    finally:
        child.kill()
        child.wait()


def test_pidfile_finds_real_children_and_grandchildren(tmp_path: Path) -> None:
    import subprocess

    import psutil

    from support.servers import wait_until

    root = subprocess.Popen(["sh", "-c", 'sleep 30 & sh -c "sleep 30 & wait" & wait'])
    try:
        wait_until(lambda: len(psutil.Process(root.pid).children(recursive=True)) == 3, timeout=10)
        pidfile = tmp_path / "service.pid"
        pidfile.write_text(f"{root.pid}\n")
        resolver = Resolver([component("svc", pidfile=str(pidfile))])
        family = sorted([root.pid, *(p.pid for p in psutil.Process(root.pid).children(recursive=True))])
        assert list(resolver.resolve_all()["svc"].pids) == family
        grandchild = next(p for p in psutil.Process(root.pid).children(recursive=True) if p.ppid() != root.pid)
        grandchild.kill()
        grandchild.wait(5)
        wait_until(lambda: grandchild.pid not in resolver.resolve_all()["svc"].pids, timeout=10)
        assert root.pid in resolver.resolve_all()["svc"].pids
    finally:
        for process in psutil.Process(root.pid).children(recursive=True):
            process.kill()
        root.kill()
        root.wait()


def test_pidfile_walks_the_children_files_of_every_thread(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    # 10 has two threads: 11 is the main thread's child, 12 the other thread's; 14 is 11's child;
    # 13 is unrelated. No stat files: the subtree must come from the children files alone.
    tree = {10: {10: "11 ", 15: "12 "}, 11: {11: "14 "}, 12: {12: ""}, 13: {13: ""}, 14: {14: ""}}
    for pid, threads in tree.items():
        for tid, children in threads.items():
            (proc / str(pid) / "task" / str(tid)).mkdir(parents=True)
            (proc / str(pid) / "task" / str(tid) / "children").write_text(children)
    (tmp_path / "svc.pid").write_text("10\n")
    resolver = Resolver([component("svc", pidfile=str(tmp_path / "svc.pid"))], proc_root=str(proc), exclude_pids=())
    assert resolver.resolve_all()["svc"].pids == (10, 11, 12, 14)


def test_pidfile_finds_a_child_forked_by_another_thread(tmp_path: Path) -> None:
    import subprocess
    import sys

    import psutil

    from support.servers import wait_until

    # the child's parent is the forking thread, so it is listed in that thread's children file only
    code = (
        "import subprocess, threading, time\n"
        "threading.Thread(target=lambda: subprocess.Popen(['sleep', '30']).wait(), daemon=True).start()\n"
        "time.sleep(30)\n"
    )
    root = subprocess.Popen([sys.executable, "-c", code])
    try:
        wait_until(lambda: len(psutil.Process(root.pid).children()) == 1, timeout=10)
        (tmp_path / "svc.pid").write_text(f"{root.pid}\n")
        resolver = Resolver([component("svc", pidfile=str(tmp_path / "svc.pid"))])
        child = psutil.Process(root.pid).children()[0].pid
        assert resolver.resolve_all()["svc"].pids == tuple(sorted((root.pid, child)))
    finally:
        for process in psutil.Process(root.pid).children(recursive=True):
            process.kill()
        root.kill()
        root.wait()
