"""Start child processes with their logs in files, wait until they serve, and stop exactly them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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
    ) -> Child:
        """Start a child in its own process group, its output in logs/<name>.log, and wait for `ready`."""
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
        """SIGTERM the child's process group, then SIGKILL it after `grace` seconds."""
        if child.alive():
            _signal_group(child.process.pid, signal.SIGTERM)
            try:
                child.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop every child, newest first (the responder before Alertmanager before Prometheus...)."""
        for child in reversed(list(self.children)):
            self.stop(child, grace)

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
