"""The server attacks of issue 12, for benchmarks/adversarial.py: one checkout's figures each.

Each attack runs a real server process from the given `src` folder on loopback and
reports what a real client got while the attack ran.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.floods import Slowloris, raise_open_files  # noqa: E402 - the tests' attacker, shared

TOKEN = "bench-token"
POLICY = 'version: memwarden/v1\nresponses: {identity: {names: ["host"]}}\n'
NOTIFICATION = {
    "version": "4", "groupKey": "{}", "status": "resolved", "receiver": "r", "groupLabels": {},
    "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
    "alerts": [],
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, timeout: float) -> int:
    request = urllib.request.Request(
        f"{url}/alerts", data=json.dumps(NOTIFICATION).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def slowloris(src: str, sockets: int = 1100, posts: int = 20) -> str:
    """1,100 sockets sending a request head a line every 10 s; real notifications posted once a second."""
    raise_open_files(4096)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "policy.yaml").write_text(POLICY)
        (work / "token").write_text(TOKEN + "\n")
        port = _free_port()
        code = "import sys; from memwarden.cli import main; sys.exit(main(sys.argv[1:]))"
        argv = [sys.executable, "-c", code, "responder", "-p", str(work / "policy.yaml"),
                "--listen", f"127.0.0.1:{port}", "--token-file", str(work / "token"), "--state-dir", str(work / "s")]  # fmt: skip
        log_path = work / "log"
        with log_path.open("wb") as log:
            child = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_files, env={**os.environ, "PYTHONPATH": src}
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while _post(url, 2) != 200:
                if time.monotonic() > deadline or child.poll() is not None:
                    return "did not start"
                time.sleep(0.2)
            with Slowloris(port, sockets, every=10.0, max_seconds=40 + 5 * posts) as flood:
                time.sleep(8)  # the sockets connect and the descriptors fill
                start, ok, slowest = time.monotonic(), 0, 0.0
                for _ in range(posts):
                    began = time.monotonic()
                    ok += _post(url, 5) == 200
                    slowest = max(slowest, time.monotonic() - began)
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
                seconds = time.monotonic() - start
                log_bytes = log_path.stat().st_size
                closed = f"{flood.closed_by_server} of {flood.opened} attacking connections closed by the server"
        finally:
            child.terminate()
            child.wait(timeout=30)
    return f"{ok}/{posts} notifications 200 (slowest {slowest:.2f}s), log {log_bytes / seconds / 1024:.1f} KiB/s, {closed}"


# (name, what the issue measured, the attack)
ATTACKS = [
    (
        "responder: slowloris, 1,100 sockets, 1,024 files",
        "0 notifications got through in 170 s; log 1.39 GB in ~3 min (7.7 MiB/s)",
        slowloris,
    ),
]
