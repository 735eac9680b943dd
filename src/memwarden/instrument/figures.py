"""What a cleanup run measured: the process's resident memory before and after, and the report.

psutil reads RSS (not /proc/self/statm by hand): the instrument runs inside the user's
service, on whatever OS its developers use, and one read per cleanup run costs nothing
that matters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil


def rss_bytes() -> int:
    """Return this process's resident set size (a fresh Process: a forked child has its own pid)."""
    return int(psutil.Process().memory_info().rss)


def malloc_trim() -> Callable[[], None] | None:
    """glibc's malloc_trim(0), which hands freed heap back to the kernel; None where there is none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None  # not glibc (musl, macOS): nothing to trim with
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


@dataclass
class CleanupReport:
    """What one cleanup run did; `freed_bytes` is RSS before minus after (0 if it grew)."""

    trigger: str
    rss_before_bytes: int
    rss_after_bytes: int
    freed_bytes: int
    gc_collected: int
    duration_seconds: float
    cleanups: int
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
