"""Start `memwarden` commands as children forked from one interpreter that imported memwarden once.

A kill-loop test wants its kills to land while a command works, not while Python imports
pydantic and grafanalib for a second or two: each child here starts with everything
loaded, so a random delay of a few hundred milliseconds covers its whole run.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time

_SERVER = r"""
import json, os, sys
from memwarden.cli import main
import memwarden.generator.bundle, memwarden.generator.cli  # loaded before any fork
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        os._exit(main(json.loads(line)))
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


class ForkRunner:
    """Each `start(argv)` forks a child running `memwarden argv…` and returns its pid; `wait()` its wait status."""

    def __init__(self, timeout: float = 60) -> None:
        self.timeout = timeout
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._selector = selectors.DefaultSelector()
        assert self._process.stdout is not None
        self._selector.register(self._process.stdout, selectors.EVENT_READ)

    def _line(self) -> str:
        deadline = time.monotonic() + self.timeout
        assert self._process.stdout is not None
        while not self._selector.select(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the fork server said nothing for {self.timeout:.0f} s")
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server exited ({self._process.poll()})")
        return line

    def start(self, argv: list[str]) -> int:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(argv) + "\n")
        self._process.stdin.flush()
        return int(self._line())

    def wait(self) -> int:
        return int(self._line())

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
