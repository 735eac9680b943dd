"""Which processes match which components' command-line patterns, remembered across scrapes.

A process's command line can change without its pid changing: exec() (a wrapper script
that execs the real program) and setproctitle (nginx, postgres, gunicorn workers retitle
themselves after start-up). So a cached verdict is checked again: every second while the
process is young (under a minute old, when both usually happen), then every one to two
minutes, spread by pid so that a host's thousand processes do not come due together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..cmdline_pattern import Pattern
from . import procfs

_YOUNG_SECONDS = 60.0  # a process younger than this may still exec or retitle itself
_YOUNG_RECHECK_SECONDS = 1.0  # how often a young process's command line is read again
_OLD_RECHECK_SECONDS = 60.0  # ... and an older one's: after 60-120 s, spread by pid
_NEVER = float("inf")


def boot_clock() -> float:
    """Seconds since boot: the clock of /proc/<pid>/stat's start time."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class _Seen:
    """What the matcher remembers of one process between scrapes."""

    inode: int  # of /proc/<pid>: changes when the pid is reused
    names: tuple[str, ...]  # the cmdline components it matches
    started: float | None  # seconds since boot; None when unknown (taken as old)
    recheck_at: float  # when to read its command line again (boot clock)


class CmdlineMatcher:
    """Matches a /proc listing against (component name, pattern) pairs; keep one across scrapes.

    Verdicts are cached by pid and the inode of /proc/<pid>, which changes when a pid is
    reused, so a scan reads the command lines of new processes and of those due a re-check only.
    """

    def __init__(
        self,
        patterns: Sequence[tuple[str, Pattern]],
        *,
        proc_root: str,
        exclude: set[int],
        clock: Callable[[], float] = boot_clock,
    ) -> None:
        self.patterns = list(patterns)
        self.proc_root = proc_root
        self._exclude = exclude
        self._clock = clock
        self._matches: dict[int, _Seen] = {}

    def scan(self, entries: list[tuple[int, int]]) -> dict[str, list[int]]:
        """Return the sorted pids each component's pattern matches among (pid, inode) `entries`."""
        found: dict[str, list[int]] = {}
        seen: dict[int, _Seen] = {}
        cache = self._matches
        now = self._clock()
        for pid, inode in entries:
            cached = cache.get(pid)
            if cached is not None and cached.inode == inode and now < cached.recheck_at:
                known = cached
            else:
                line = procfs.cmdline(self.proc_root, pid)
                if line is None:
                    continue  # exited between the listing and the read
                known = self._judge(pid, inode, line, cached if cached is not None and cached.inode == inode else None, now)
            seen[pid] = known
            if known.names and pid not in self._exclude:
                for name in known.names:
                    found.setdefault(name, []).append(pid)
        self._matches = seen  # forget processes that have gone
        for pids in found.values():
            pids.sort()
        return found

    def _judge(self, pid: int, inode: int, line: str, before: _Seen | None, now: float) -> _Seen:
        """Match a command line just read, and decide when to read it again."""
        names = tuple(name for name, pattern in self.patterns if line and pattern.search(line))
        if before is not None:
            started = before.started
        else:
            birth = procfs.start_time(self.proc_root, pid)  # once per process
            if birth is not None and birth[1]:
                return _Seen(inode, names, birth[0], _NEVER)  # a kernel thread never execs
            started = birth[0] if birth is not None else None
        if started is not None and now - started < _YOUNG_SECONDS:
            recheck_at = now + _YOUNG_RECHECK_SECONDS
        else:
            recheck_at = now + _OLD_RECHECK_SECONDS * (1 + (pid % 64) / 64)
        return _Seen(inode, names, started, recheck_at)
