"""Large real components for adversarial tests: a thousand and more `sleep` processes.

A crowd is one parent (a small Python program) with N `/bin/sleep` children, spawned with
posix_spawn so starting 1,500 takes about a second. The parent first joins the cgroups it
is given, so every child starts inside them; it ignores SIGCHLD, so killed children are
reaped at once and never linger as zombies. Everything is killed and the cgroups removed
on exit, whatever the test did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
    "marker = sys.argv[2] + sys.argv[3]  # given in halves: only the children match it\n"
    "for directory in sys.argv[4:]:\n"
    "    open(os.path.join(directory, 'cgroup.procs'), 'w').write(str(os.getpid()))\n"
    "for _ in range(int(sys.argv[1])):\n"
    "    os.posix_spawn('/bin/sleep', [marker, '600'], {})  # argv[0]: the marker\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(1)\n"
)


def unified_root() -> Path | None:
    """The writable cgroup v2 tree: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one."""
    for candidate in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (candidate / "cgroup.controllers").exists() and os.access(candidate, os.W_OK):
            return candidate
    return None


def memory_v1_root() -> Path | None:
    candidate = CGROUP_ROOT / "memory"
    if (candidate / "memory.usage_in_bytes").exists() and os.access(candidate, os.W_OK):
        return candidate
    return None


@contextmanager
def cgroup_in(*trees: Path) -> Iterator[tuple[str, list[Path]]]:
    """A fresh cgroup of one name in each tree; yield (its path below the root, its directories)."""
    name = f"mwtest-{uuid.uuid4().hex[:8]}"
    made: list[Path] = []
    try:
        for tree in trees:
            (tree / name).mkdir()
            made.append(tree / name)
        yield f"/{name}", made
    finally:
        for directory in made:
            _remove_cgroup(directory)


def _remove_cgroup(directory: Path) -> None:
    freeze = directory / "cgroup.freeze"
    if freeze.exists():
        freeze.write_text("0")
    deadline = time.monotonic() + 10
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # still busy: its processes are being reaped
            if time.monotonic() > deadline:
                raise
            for pid in (directory / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


class Crowd:
    """A parent and its `count` sleeping children; `marker` is in every child's command line."""

    def __init__(self, count: int, cgroups: list[Path] | None = None) -> None:
        self.marker = f"mwcrowd-{uuid.uuid4().hex[:10]}"
        self.parent = subprocess.Popen(
            [sys.executable, "-c", PARENT, str(count), self.marker[:4], self.marker[4:], *map(str, cgroups or [])],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.parent.stdout.readline() if self.parent.stdout else ""
        if line.strip() != "ready":
            self.close()
            raise AssertionError(f"the crowd's parent did not start: {line!r}")
        self.count = count

    def children(self) -> list[int]:
        """The live children, by a full read of every thread's children file."""
        pids: list[int] = []
        task = Path(f"/proc/{self.parent.pid}/task")
        for thread in task.iterdir():
            pids += [int(token) for token in (thread / "children").read_text().split()]
        return sorted(pids)

    def alive(self) -> list[int]:
        """The children still running (not stopped, not zombies)."""
        return [pid for pid in self.children() if _state(pid) not in ("Z", "X", None)]

    def stopped(self) -> list[int]:
        return [pid for pid in self.children() if _state(pid) in ("T", "t")]

    def close(self) -> None:
        for pid in self.children() if self.parent.poll() is None else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.parent.poll() is None:
            self.parent.kill()
        self.parent.wait(timeout=10)
        if self.parent.stdout is not None:
            self.parent.stdout.close()

    def __enter__(self) -> Crowd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()
