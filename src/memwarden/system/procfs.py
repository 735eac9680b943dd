"""Small, fast readers of /proc files: whole files, process lists and per-process memory.

Reads go through `os.open`/`os.read` rather than `open()`: on procfs files of a few hundred
bytes that is ~40% cheaper, and the components collector reads one file per process per scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CHUNK = 65536


def read_bytes(path: str) -> bytes:
    """Return a whole file; procfs and cgroupfs files report size 0, so read until EOF."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK // 2:
            # seq_file fills the buffer as far as it can, so a short first read is the whole file
            return data
        parts = [data]
        while chunk := os.read(fd, _CHUNK):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8", "replace")


def parse_keyed(text: str) -> dict[str, int]:
    """Parse `key value [unit]` lines (memory.stat, vmstat, memory.events); skip odd lines."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            try:
                values[parts[0].rstrip(":")] = int(parts[1])
            except ValueError:
                continue
    return values


def process_entries(proc_root: str) -> Iterator[tuple[int, int]]:
    """Yield (pid, inode) of every process under `proc_root`.

    The inode of /proc/<pid> comes free with the directory listing and changes when a pid
    is reused by a new process, so it makes a cheap cache key for facts that do not change
    during a process's life (its command line).
    """
    with os.scandir(proc_root) as entries:
        for entry in entries:
            name = entry.name
            if name.isdigit():
                yield int(name), entry.inode()


def own_pid(proc_root: str) -> int:
    """Return this process's pid as seen in `proc_root` (another pid namespace when mounted in)."""
    try:
        return int(os.readlink(os.path.join(proc_root, "self")))
    except (OSError, ValueError):
        return os.getpid()


def cmdline(proc_root: str, pid: int) -> str | None:
    """Return the command line joined with spaces, "" for kernel threads, None when gone."""
    try:
        raw = read_bytes(f"{proc_root}/{pid}/cmdline")
    except OSError:
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def parent_pid(proc_root: str, pid: int) -> int | None:
    """Return the parent pid from /proc/<pid>/stat, or None when the process is gone."""
    try:
        raw = read_bytes(f"{proc_root}/{pid}/stat")
    except OSError:
        return None
    # The command name in parentheses may contain spaces and ')'; fields follow the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def rss_bytes(proc_root: str, pid: int) -> int | None:
    """Return resident set size from /proc/<pid>/statm (anon + file + shmem), None when gone."""
    try:
        fd = os.open(f"{proc_root}/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return int(os.read(fd, 512).split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None
    finally:
        os.close(fd)


def _kib_field(path: str, key: bytes) -> int | None:
    try:
        raw = read_bytes(path)
    except OSError:
        return None
    start = raw.find(key)
    if start < 0:
        return None
    start += len(key)
    line = raw[start : raw.find(b"\n", start)]
    try:
        return int(line.split()[0]) * 1024
    except (IndexError, ValueError):
        return None


def pss_bytes(proc_root: str, pid: int) -> int | None:
    """Return proportional set size from smaps_rollup (~50-150 µs: the kernel walks every mapping)."""
    return _kib_field(f"{proc_root}/{pid}/smaps_rollup", b"\nPss:")


def swap_bytes(proc_root: str, pid: int) -> int | None:
    """Return the process's swapped-out memory (VmSwap of /proc/<pid>/status)."""
    return _kib_field(f"{proc_root}/{pid}/status", b"\nVmSwap:")
