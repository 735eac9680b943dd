"""The responder's view of this host: components' processes and memory, and who is protected.

Finding a component is memwarden.system's job (shared with the exporter); this module adds
what only acting needs: which processes must never be touched, process identity (so a
reused pid is never signalled by mistake) and the largest process for earlyoom-style kills.

Not psutil, though it reads the same files: a process is named by its pid and its start
time in clock ticks (exact, from /proc/<pid>/stat), and a signal goes through a pidfd
opened before that check (actions/base.signal_process), where psutil's send_signal checks
a float create_time and then calls os.kill, the window the pidfd closes; and psutil reads
one process-wide PROCFS_PATH, where each Host takes its own proc root (tests point one at
a fake tree) and actions read from worker threads, so no global could be switched per call.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from memwarden.policy import Component, Policy
from memwarden.policy.responses import BUILTIN_PROTECTED_PROCESSES
from memwarden.system import (
    DEFAULT_CGROUP_ROOT,
    DEFAULT_PROC_ROOT,
    ComponentTarget,
    procfs,
    resolve,
    working_set_bytes,
)

COMM_LENGTH = 15  # the kernel cuts /proc/PID/comm to 15 characters
PF_KTHREAD = 0x00200000  # the kernel's per-task flag for its own threads (/proc/PID/stat field 9)

T = TypeVar("T")
# What one action looked up once and reuses for each of its pids (see Host.one_action).
# A ContextVar: each action runs in its own task, and asyncio.to_thread carries it along.
_ACTION_LOOKUPS: ContextVar[dict[str, object] | None] = ContextVar("memwarden_action_lookups", default=None)


@dataclass(frozen=True)
class ProcessIdentity:
    """A pid plus its start time: two processes never share both, even when a pid is reused."""

    pid: int
    start_time: int


def identity(proc_root: str, pid: int) -> ProcessIdentity | None:
    fields = procfs.stat_fields(proc_root, pid)
    if fields is None or len(fields) < 20:
        return None
    return ProcessIdentity(pid, int(fields[19]))


def is_alive(proc_root: str, process: ProcessIdentity) -> bool:
    """Return whether the very same process still runs (a zombie has finished running)."""
    fields = procfs.stat_fields(proc_root, process.pid)
    if fields is None or len(fields) < 20:
        return False
    return int(fields[19]) == process.start_time and fields[0] not in (b"Z", b"X")


def is_kernel_thread(proc_root: str, pid: int) -> bool:
    """Return whether pid is a kernel thread, by the kernel's own flag (a process may blank its cmdline)."""
    fields = procfs.stat_fields(proc_root, pid)
    try:
        return fields is not None and bool(int(fields[6]) & PF_KTHREAD)
    except (IndexError, ValueError):
        return False


def process_state(proc_root: str, pid: int) -> str | None:
    fields = procfs.stat_fields(proc_root, pid)
    return fields[0].decode() if fields else None


def process_names(proc_root: str, pid: int) -> tuple[str, str] | None:
    """Return (comm, basename of argv[0]); argv[0] is "" for kernel threads. None when gone."""
    try:
        raw = procfs.read_bytes(f"{proc_root}/{pid}/cmdline")
        comm = procfs.read_text(f"{proc_root}/{pid}/comm").strip()
    except OSError:
        return None
    argv0 = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    return comm, os.path.basename(argv0)


def _name_matches(names: tuple[str, str], protected: Iterable[str]) -> str | None:
    comm, argv0 = names
    for name in protected:
        if argv0 == name or comm == name or (len(name) > COMM_LENGTH and comm == name[:COMM_LENGTH]):
            return name
    return None


def _oom_exempt(proc_root: str, pid: int) -> bool:
    try:
        return procfs.read_bytes(f"{proc_root}/{pid}/oom_score_adj").strip() == b"-1000"
    except OSError:
        return False


def _once_per_action(key: str, look_up: Callable[[], T]) -> T:
    """Return `look_up()`, computed only once within the current `Host.one_action` (always outside one)."""
    lookups = _ACTION_LOOKUPS.get()
    if lookups is None:
        return look_up()
    if key not in lookups:
        lookups[key] = look_up()
    return lookups[key]  # type: ignore[return-value]


class Host:
    """Reads what actions need from /proc and /sys/fs/cgroup (roots injectable for tests)."""

    def __init__(
        self,
        policy: Policy,
        *,
        proc_root: str = DEFAULT_PROC_ROOT,
        cgroup_root: str = DEFAULT_CGROUP_ROOT,
        systemctl: str | None = None,
    ) -> None:
        self.policy = policy
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root
        # systemctl only when systemd runs this host; set-property against no systemd just fails.
        if systemctl is None and os.path.isdir("/run/systemd/system"):
            systemctl = shutil.which("systemctl")
        self.systemctl = systemctl
        self.protected_names = tuple(BUILTIN_PROTECTED_PROCESSES) + tuple(policy.responses.protected_processes)

    def component(self, name: str | None) -> Component | None:
        return self.policy.component(name) if name else None

    def resolve(self, component: Component) -> ComponentTarget:
        return resolve(component, proc_root=self.proc_root, cgroup_root=self.cgroup_root)

    def working_set(self, component: Component) -> int | None:
        """Return the component's working set now, as the exporter counts it."""
        try:
            return working_set_bytes(self.resolve(component), proc_root=self.proc_root, pss=component.pss)
        except OSError:
            return None

    def rss(self, pid: int) -> int | None:
        return procfs.rss_bytes(self.proc_root, pid)

    def protected(self, *, components: bool = True) -> dict[int, str]:
        """Return every pid that must never be signalled, frozen, throttled or killed, with why.

        components=False leaves out the processes of `protected: true` components: those
        are spared freeze, throttle and kill only; `signal` and `http` may still ask them
        to clean up. PID 1, the responder, kernel threads and protected processes stay.
        """
        reasons = dict.fromkeys(self.own_line(), "the responder or one of its parents")
        reasons[1] = "PID 1"
        for pid, _ in procfs.process_entries(self.proc_root):
            if pid not in reasons and (reason := self._process_reason(pid)) is not None:
                reasons[pid] = reason
        if components:
            for pid, reason in self._protected_components().items():
                reasons.setdefault(pid, reason)
        return reasons

    def protection(self, pid: int, *, components: bool = True) -> str | None:
        """Return why this one pid must not be touched, read now (just before a signal), or None.

        The process's own facts (name, oom_score_adj, kernel thread) are read afresh each
        time; inside `one_action` the protected components' pids are those the action
        found when it began, since resolving every component again for each pid of a large
        component stalls the responder for seconds.
        """
        if pid == 1:
            return "PID 1"
        if pid in self.own_line():
            return "the responder or one of its parents"
        reason = self._process_reason(pid)
        if reason is None and components:
            reason = self._protected_components().get(pid)
        return reason

    @contextmanager
    def one_action(self) -> Iterator[None]:
        """Within this block (one action, in its task), look the protected components up only once."""
        token = _ACTION_LOOKUPS.set({})
        try:
            yield
        finally:
            _ACTION_LOOKUPS.reset(token)

    def own_line(self) -> set[int]:
        """The responder and its parents below init, as pids in `proc_root`: never a target."""
        return _once_per_action("own_line", self._read_own_line)

    def _read_own_line(self) -> set[int]:
        line: set[int] = set()
        pid: int | None = procfs.own_pid(self.proc_root)
        while pid is not None and pid > 1 and pid not in line:
            line.add(pid)
            pid = procfs.parent_pid(self.proc_root, pid)
        return line

    def _process_reason(self, pid: int) -> str | None:
        names = process_names(self.proc_root, pid)
        if names is None:
            return None  # gone
        if is_kernel_thread(self.proc_root, pid):
            return "a kernel thread"
        if (name := _name_matches(names, self.protected_names)) is not None:
            return f"a protected process ({name})"
        if _oom_exempt(self.proc_root, pid):
            return "oom_score_adj -1000 (the kernel's OOM killer spares it too)"
        return None

    def _protected_components(self) -> dict[int, str]:
        return _once_per_action("components", self._resolve_protected_components)

    def _resolve_protected_components(self) -> dict[int, str]:
        reasons: dict[int, str] = {}
        for component in self.policy.components:
            if component.protected:
                for pid in self.resolve(component).pids:
                    reasons.setdefault(pid, f"in protected component {component.name}")
        return reasons

    def largest_process(self, protected: dict[int, str]) -> tuple[int, int, str] | None:
        """Return (pid, rss, name) of the largest process that is not protected."""
        best: tuple[int, int, str] | None = None
        for pid, _ in procfs.process_entries(self.proc_root):
            if pid in protected:
                continue
            rss = procfs.rss_bytes(self.proc_root, pid)
            if rss and (best is None or rss > best[1]):
                names = process_names(self.proc_root, pid)
                if names is not None and not is_kernel_thread(self.proc_root, pid):
                    best = (pid, rss, names[1] or names[0])
        return best
