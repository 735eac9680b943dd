"""What one cgroup's memory is: usage, limit, swap, stat, events and PSI, the same for v1 and v2.

`cgroupfs` finds the cgroup (which hierarchy, where it lives); this reads its files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cgroupfs import UNLIMITED_FROM, Cgroup, Hierarchy
from .procfs import Read, pick, read_bytes
from .psi import read_pressure


@dataclass(frozen=True)
class CgroupMemory:
    """The memory facts of one cgroup, in bytes and counts, the same for v1 and v2."""

    version: int
    usage: int
    limit: int | None  # its own limit; None: unlimited
    swap: int | None  # None: no swap accounting
    stat: dict[str, int] = field(default_factory=dict)  # anon, file, active_file, inactive_file, ...
    events: dict[str, int] = field(default_factory=dict)  # oom, oom_kill, high, max (as available)
    pressure: dict[str, float] | None = None  # PSI totals in seconds ("some", "full")

    @property
    def working_set(self) -> int:
        """Usage minus inactive file cache, as cAdvisor and the kubelet count it."""
        return max(0, self.usage - self.stat.get("inactive_file", 0))


# memory.stat keys published, and their v1 (hierarchical) spellings.
_V1_STAT = {
    "anon": "total_rss",
    "file": "total_cache",
    "active_file": "total_active_file",
    "inactive_file": "total_inactive_file",
    "shmem": "total_shmem",
    "pgmajfault": "total_pgmajfault",
    "swap": "total_swap",
    "workingset_refault_anon": "total_workingset_refault_anon",
    "workingset_refault_file": "total_workingset_refault_file",
    "workingset_refault": "total_workingset_refault",
}
_V1_KEYS = tuple(_V1_STAT.values())
_V2_KEYS = (
    "anon", "file", "active_file", "inactive_file", "shmem", "slab_reclaimable", "pgmajfault",
    "pswpin", "pswpout", "workingset_refault_anon", "workingset_refault_file", "workingset_refault",
    "kernel", "slab",
)  # fmt: skip
_V2_EVENTS = ("oom", "oom_kill", "high", "max")


def _read_int(path: str, read: Read = read_bytes) -> int | None:
    """Return an integer file's value; None for "max" (v2's spelling of unlimited)."""
    text = read(path).strip()
    return None if text == b"max" else int(text)


def _limit(value: int | None) -> int | None:
    return None if value is None or value >= UNLIMITED_FROM else value


def _optional_int(path: str, read: Read = read_bytes) -> int | None:
    """Like `_read_int`, but None for a file this kernel does not have."""
    try:
        return _read_int(path, read)
    except FileNotFoundError:
        return None


def _fold_refaults(stat: dict[str, int]) -> None:
    """One refault counter: kernels since 5.9 split it into anon and file."""
    split = [stat.pop(key) for key in ("workingset_refault_anon", "workingset_refault_file") if key in stat]
    if split:
        stat["workingset_refault"] = sum(split)


def read_memory(cgroup: Cgroup, read: Read = read_bytes) -> CgroupMemory | None:
    """Read a cgroup's memory facts; None when it has no memory accounting.

    Raises OSError when the cgroup disappears or a file cannot be read.
    `read` reads a file (default: open, read, close; the exporter passes a FileReader).
    """
    if cgroup.memory is None or cgroup.version is None:
        return None
    pressure = None
    if cgroup.unified is not None:
        pressure = read_pressure(f"{cgroup.unified}/memory.pressure", read)
    if cgroup.version == 2:
        return _read_v2(str(cgroup.memory), pressure, read)
    return _read_v1(str(cgroup.memory), pressure, read)


def _read_v2(directory: str, pressure: dict[str, float] | None, read: Read) -> CgroupMemory:
    stat = pick(read(f"{directory}/memory.stat"), _V2_KEYS)
    kernel = stat.pop("kernel", None)
    slab = stat.pop("slab", None)
    _fold_refaults(stat)
    try:
        events = pick(read(f"{directory}/memory.events"), _V2_EVENTS)
    except FileNotFoundError:
        events = {}
    usage = _optional_int(f"{directory}/memory.current", read)
    if usage is None:
        # The root of a v2 tree has no memory.current; sum what memory.stat accounts.
        usage = stat.get("anon", 0) + stat.get("file", 0) + (kernel if kernel is not None else slab or 0)
    return CgroupMemory(
        version=2,
        usage=usage,
        limit=_limit(_optional_int(f"{directory}/memory.max", read)),
        swap=_optional_int(f"{directory}/memory.swap.current", read),
        stat=stat,
        events=events,
        pressure=pressure,
    )


def _read_v1(directory: str, pressure: dict[str, float] | None, read: Read) -> CgroupMemory:
    raw = pick(read(f"{directory}/memory.stat"), _V1_KEYS)
    stat = {key: raw[v1] for key, v1 in _V1_STAT.items() if v1 in raw}
    swap = stat.pop("swap", None)
    _fold_refaults(stat)
    events: dict[str, int] = {}
    try:
        events.update(pick(read(f"{directory}/memory.oom_control"), ("oom_kill",)))
    except FileNotFoundError:
        pass
    failcnt = _optional_int(f"{directory}/memory.failcnt", read)
    if failcnt is not None:
        events["max"] = failcnt  # times usage hit the limit: v2's "max" event
    return CgroupMemory(
        version=1,
        usage=_read_int(f"{directory}/memory.usage_in_bytes", read) or 0,
        limit=_limit(_optional_int(f"{directory}/memory.limit_in_bytes", read)),
        swap=swap,
        stat=stat,
        events=events,
        pressure=pressure,
    )


def tightest_limit(files: list[str], read: Read = read_bytes) -> int | None:
    """Return the smallest limit in those files (see `Hierarchy.limit_files`); None when none is set."""
    limits: list[int] = []
    for path in files:
        try:
            value = _limit(_optional_int(path, read))
        except (OSError, ValueError):
            value = None  # an ancestor outside our view or being removed
        if value is not None:
            limits.append(value)
    return min(limits) if limits else None


def effective_limit(hierarchy: Hierarchy, cgroup: Cgroup) -> int | None:
    """Return the tightest memory limit on `cgroup` and its ancestors; None when none is set."""
    return tightest_limit(hierarchy.limit_files(cgroup))
