"""memwarden.instrument in forked workers (gunicorn preload_app, celery prefork, multiprocessing)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from support.responder import python_child, stop_child
from support.servers import wait_until

# Installs, then forks as a pre-fork server does: the parent prints `ready` and the pids.
FORKING_APP = """
import multiprocessing, os, sys, time
from memwarden import instrument

out, how = sys.argv[1], sys.argv[2]
def note():
    with open(out, "a") as handle:
        handle.write(f"{os.getpid()}\\n")

app = instrument.install(component="forked", cleanup=[note], port=0, trim=False)
print("ready", flush=True)
print(app.url.split(":")[2].split("/")[0], flush=True)

def worker():
    # Back in Python code, so fork's hooks have run: the worker may be signalled now.
    print("worker", os.getpid(), flush=True)
    while True:
        time.sleep(0.05)

if how == "os.fork":
    if os.fork() == 0:
        worker()
else:
    multiprocessing.get_context("fork").Process(target=worker, daemon=True).start()
while True:
    time.sleep(0.05)
"""


def _started(parent) -> tuple[int, int]:
    """Return (port of the parent's endpoint, pid of the forked worker)."""
    port = int(parent.stdout.readline())
    word, pid = parent.stdout.readline().split()
    assert word == "worker"
    return port, int(pid)


def _pids(path):
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
def test_a_signal_runs_the_cleanups_in_a_forked_worker_and_in_the_parent(tmp_path, how):
    out = tmp_path / "cleaned"
    parent = python_child(FORKING_APP, str(out), how)
    child = None
    try:
        _, child = _started(parent)
        os.kill(child, signal.SIGUSR1)
        wait_until(lambda: _pids(out) == [child], timeout=10, what="the forked worker to run its cleanups")
        os.kill(parent.pid, signal.SIGUSR1)
        wait_until(lambda: _pids(out) == [child, parent.pid], timeout=10, what="the parent to run its cleanups")
        os.kill(child, signal.SIGUSR1)
        wait_until(lambda: _pids(out) == [child, parent.pid, child], timeout=10, what="a second run in the worker")
    finally:
        if child is not None:
            _kill(child)
        stop_child(parent)


def test_a_forked_worker_does_not_hold_the_parents_endpoint_open(tmp_path):
    parent = python_child(FORKING_APP, str(tmp_path / "cleaned"), "os.fork")
    child = None
    try:
        port, child = _started(parent)
        stop_child(parent)  # the parent (gunicorn's master) exits; its worker lives on
        wait_until(lambda: _refused(port), timeout=5, what="the port to close with the parent")
    finally:
        if child is not None:
            _kill(child)
        stop_child(parent)


def test_a_forked_worker_may_open_an_endpoint_of_its_own(tmp_path):
    code = (
        "import os, sys, urllib.request\n"
        "from memwarden import instrument\n"
        "parent_url = instrument.install(component='w', port=0, trim=False).url\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    url = instrument.install(component='w', port=0).url\n"
        "    if url in (None, parent_url):\n"
        "        os._exit(2)\n"
        "    with urllib.request.urlopen(urllib.request.Request(url, data=b'{}', method='POST'), timeout=10) as r:\n"
        "        os._exit(0 if r.status == 200 else 1)\n"
        "_, status = os.waitpid(child, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=30).returncode == 0


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
