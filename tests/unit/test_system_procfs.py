"""Reading kernel files: kept descriptors that notice exited processes, and cheap key lookups."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from memwarden.system import FileReader
from memwarden.system.procfs import pick, rss_bytes


def test_a_kept_descriptor_reads_fresh_content() -> None:
    reader = FileReader()
    pid = os.getpid()
    before = rss_bytes("/proc", pid, reader.read)
    hoard = bytearray(64 * 1024 * 1024)  # zero-filled: every page is touched
    after = rss_bytes("/proc", pid, reader.read)
    assert reader.open_files == 1  # the same descriptor, read twice
    assert before is not None and after is not None and after - before >= 60 * 1024 * 1024
    del hoard


def test_a_kept_descriptor_of_an_exited_process_is_dropped() -> None:
    reader = FileReader()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert rss_bytes("/proc", sleeper.pid, reader.read) is not None
        assert reader.open_files == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    # the kept descriptor now fails (ESRCH); the reader closes it and the path is gone too
    assert rss_bytes("/proc", sleeper.pid, reader.read) is None
    assert reader.open_files == 0


def test_sweep_closes_what_a_scrape_no_longer_read_and_the_cap_holds(tmp_path: Path) -> None:
    files = []
    for index in range(5):
        path = tmp_path / f"f{index}"
        path.write_text(str(index))
        files.append(str(path))
    reader = FileReader(max_open=3)
    assert [reader.read(path) for path in files] == [b"0", b"1", b"2", b"3", b"4"]
    assert reader.open_files == 3
    reader.sweep()
    reader.read(files[4])
    reader.sweep()
    assert reader.open_files == 1
    reader.close()
    assert reader.open_files == 0


def test_pick_finds_keys_only_at_line_starts() -> None:
    raw = b"nr_free_pages 10\npgmajfault 7\nworkingset_refault_file 3\noom_kill 1\n"
    assert pick(raw, ("pgmajfault", "oom_kill", "refault_file", "missing")) == {"pgmajfault": 7, "oom_kill": 1}
    assert pick(b"MemTotal:  100 kB\nSwapCached: 5 kB\nCached: 9 kB\n", ("Cached", "MemTotal"), b":") == {
        "Cached": 9,
        "MemTotal": 100,
    }
