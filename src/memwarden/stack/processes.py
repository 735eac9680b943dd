"""Start child processes with their logs in files, wait until they serve, and stop exactly them."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class StackError(Exception):
    """Something the user can fix: a missing program, a busy port, a child that would not start."""


def free_port() -> int:
    """Return a port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_port_free(port: int, what: str) -> None:
    """Raise StackError naming the port and the fix when something already listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"port {port} for {what} is in use on 127.0.0.1; stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it), pass another --ports START, or leave --ports out "
                "to pick free ports"
            ) from None


def http_ok(url: str, timeout: float = 1.0, headers: dict[str, str] | None = None) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class Child:
    """One process we started: its name, argv, log file and Popen handle."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Owns the children of one stack; stops every one of them, and nothing else."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        ready: Callable[[], bool] | None = None,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        death_signal: signal.Signals = signal.SIGTERM,
    ) -> Child:
        """Start a child in its own process group, its output in logs/<name>.log, and wait for `ready`.

        The child gets `death_signal` when this process dies without stopping it (SIGKILL,
        a crash): the backstop that keeps a killed `up` from leaving its children behind.
        Call from the main thread: the kernel sends it when the *thread* that forked exits.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            try:
                process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # our signals to the group reach its helpers, not us
                    env={**os.environ, **(env or {})},
                    cwd=cwd,
                    preexec_fn=die_with_parent(death_signal),
                )
            except OSError as error:
                raise StackError(f"cannot start {name} ({argv[0]}): {error.strerror or error}") from None
        child = Child(name, argv, log_path, process)
        self.children.append(child)
        if ready is not None:
            self.wait_ready(child, ready, timeout)
        return child

    def wait_ready(self, child: Child, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise StackError(
                    f"{child.name} exited with status {child.process.returncode} while starting; "
                    f"its log ({child.log_path}) ends with:\n{child.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.1)
        raise StackError(f"{child.name} did not become ready within {timeout:.0f}s; see {child.log_path}:\n{child.log_tail()}")

    def stop(self, child: Child, grace: float = 10.0) -> None:
        """Stop one child: SIGTERM (and SIGCONT) to its process group, SIGKILL after `grace` seconds."""
        self.stop_many([child], grace)

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop every child, newest first (Prometheus, Alertmanager, the responder, ... the workloads)."""
        self.stop_many(list(reversed(self.children)), grace)

    def stop_many(self, children: list[Child], grace: float) -> None:
        """Ask all of `children` to stop at once, then wait for them together, so stopping takes one grace at most.

        A stopped (SIGSTOP) or cgroup-frozen process holds SIGTERM until it runs again, so
        each one is thawed and sent SIGCONT after SIGTERM, the way systemd stops a unit.
        """
        for child in children:
            if child.alive():
                _signal_group(child.process.pid, signal.SIGTERM)
                thaw_cgroup_of(child.process.pid)
                _signal_group(child.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait()
            if child in self.children:
                self.children.remove(child)

    def exited(self) -> list[Child]:
        return [child for child in self.children if not child.alive()]


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(signum: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send `signum` to the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    # Resolved here, in the parent: between fork and exec the child only makes two syscalls.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    number = int(signum)

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, number, 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal would ever come.
        if os.getppid() != parent:
            os._exit(1)

    return arrange


def thaw_cgroup_of(pid: int, cgroup_root: Path = Path("/sys/fs/cgroup")) -> None:
    """Thaw the process's cgroup v2 if it is frozen and is not ours (a frozen child would never stop)."""
    try:
        theirs = _cgroup_path(Path(f"/proc/{pid}/cgroup"))
        ours = _cgroup_path(Path("/proc/self/cgroup"))
        if theirs is None or theirs == ours:
            return
        control = cgroup_root / theirs.lstrip("/") / "cgroup.freeze"
        if control.read_text().strip() == "1":
            control.write_text("0")
    except OSError:
        pass


def _cgroup_path(path: Path) -> str | None:
    for line in path.read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None
