"""Container awareness: whose memory the host-level series describe.

Inside a memory-limited container /proc/meminfo still describes the whole host: a 512 MiB
container on a 64 GiB host would read 63 GiB "available" and never warn before its own
OOM kill. So when the exporter runs in a container (its own PID or cgroup namespace) whose
cgroup (or an ancestor) is limited below the host's MemTotal, the host-level series switch
to that cgroup's figures ("cgroup scope"); what the cgroup cannot tell is left absent
rather than filled from the host. `memwarden_memory_scope_info{scope, cgroup}` says which
is in use. On the host itself (the initial namespaces) a limit on the exporter's own unit,
such as systemd's MemoryMax=, does not make its host series describe that unit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from memwarden.system import Cgroup, CgroupMemory, Hierarchy, read_memory
from memwarden.system.cgroup_memory import tightest_limit
from memwarden.system.cgroupfs import read_mountinfo
from memwarden.system.procfs import Read, read_bytes

ScopeMode = Literal["auto", "host", "cgroup"]
SCOPE_MODES: tuple[str, ...] = ("auto", "host", "cgroup")


@dataclass(frozen=True)
class ScopeState:
    """The decision for one scrape; `memory` is set in cgroup scope only."""

    scope: Literal["host", "cgroup"]
    cgroup: Cgroup | None = None
    memory: CgroupMemory | None = None
    limit: int | None = None  # the tightest limit on the cgroup, when there is one
    host_total: int | None = None  # MemTotal of the host, in bytes
    name: str = ""  # the cgroup as /proc/self/cgroup names it ("" in host scope)


HOST = ScopeState("host")
# The kernel's fixed inode numbers of the initial PID and cgroup namespaces
# (PROC_PID_INIT_INO, PROC_CGROUP_INIT_INO): any other number means a container.
_INITIAL_NAMESPACES = {"pid": 0xEFFFFFFC, "cgroup": 0xEFFFFFFB}


def in_container(proc_root: str) -> bool | None:
    """True in a non-initial PID or cgroup namespace, False in the host's, None when unknown."""
    answers = []
    for kind, initial in _INITIAL_NAMESPACES.items():
        try:
            link = os.readlink(f"{proc_root}/self/ns/{kind}")  # "pid:[4026531836]"
            answers.append(int(link[link.index("[") + 1 : link.index("]")]) != initial)
        except (OSError, ValueError):
            continue
    if any(answers):
        return True
    return False if answers else None


def host_mem_total(proc_root: str, read: Read = read_bytes) -> int | None:
    """Return MemTotal in bytes (the first line of /proc/meminfo)."""
    head = read(f"{proc_root}/meminfo")[:128]
    for line in head.splitlines():
        if line.startswith(b"MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


class MemoryScope:
    """Decides once per scrape whether host series come from /proc or from our own cgroup."""

    def __init__(self, mode: ScopeMode, *, proc_root: str, hierarchy: Hierarchy, read: Read = read_bytes) -> None:
        if mode not in SCOPE_MODES:
            raise ValueError(f"memory scope {mode!r}: use one of {', '.join(SCOPE_MODES)}")
        self.mode = mode
        self.proc_root = proc_root
        self.hierarchy = hierarchy
        self.read = read
        self._generation: int | None = None  # None: no exporter drives scrapes, decide on every call
        self._decided: tuple[int, ScopeState] | None = None
        # Our cgroup, its name and its limit files, kept while /proc/self/cgroup reads the same.
        self._own: tuple[str, Cgroup | None, str, list[str]] | None = None

    def begin_scrape(self) -> None:
        """Start a scrape: the next `state()` decides afresh, later calls reuse that decision."""
        self._generation = (self._generation or 0) + 1

    def state(self) -> ScopeState:
        """Return this scrape's decision; raises OSError when our cgroup cannot be read."""
        if self._generation is not None and self._decided is not None and self._decided[0] == self._generation:
            return self._decided[1]
        state = self._decide()
        if self._generation is not None:
            self._decided = (self._generation, state)
        return state

    def _decide(self) -> ScopeState:
        if self.mode == "host":
            return HOST
        own, name, limit_files = self._own_cgroup()
        if own is None or own.memory is None:
            if self.mode == "cgroup":
                raise OSError("--memory.scope=cgroup: the exporter's own memory cgroup was not found")
            return HOST
        limit = tightest_limit(limit_files, self.read)
        total = host_mem_total(self.proc_root, self.read)
        limited = limit is not None and (total is None or limit < total)
        if self.mode == "auto" and not (limited and in_container(self.proc_root) is not False):
            return HOST
        memory = read_memory(own, self.read)
        if memory is None:
            return HOST
        return ScopeState("cgroup", own, memory, limit, total, name)

    def _own_cgroup(self) -> tuple[Cgroup | None, str, list[str]]:
        try:
            text = self.read(f"{self.proc_root}/self/cgroup").decode("utf-8", "replace")
        except OSError:
            return None, "", []
        if self._own is None or self._own[0] != text:
            # mountinfo is read again only when we change cgroups: mounts move far more rarely
            location = self.hierarchy.own_location(text, read_mountinfo(self.proc_root, self.read))
            own = self.hierarchy.locate(location.path) if location is not None else None
            files = self.hierarchy.limit_files(own) if own is not None and own.memory is not None else []
            self._own = (text, own, location.name if location is not None else "", files)
        return self._own[1], self._own[2], self._own[3]
