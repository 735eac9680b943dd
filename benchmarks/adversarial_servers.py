"""The server attacks of issue 12, for benchmarks/adversarial.py: one checkout's figures each.

Each attack runs a real server process from the given `src` folder on loopback and
reports what a real client got while the attack ran.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.floods import Slowloris, post_alerts, raise_open_files

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
    return post_alerts(url, json.dumps(NOTIFICATION).encode(), TOKEN, timeout)


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


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _scrape(port: int, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, float]:
    began = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/metrics", headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - began
    except (OSError, http.client.HTTPException):
        return 0, time.monotonic() - began
    finally:
        connection.close()


def _exporter(src: str | None, port: int, web_config: Path | None = None) -> subprocess.Popen[bytes]:
    """memwarden's exporter from `src`, or node_exporter (its meminfo collector) when src is None."""
    if src is None:
        argv = [shutil.which("prometheus-node-exporter") or "node_exporter", f"--web.listen-address=127.0.0.1:{port}",
                "--collector.disable-defaults", "--collector.meminfo"]  # fmt: skip
        if web_config:
            argv.append(f"--web.config.file={web_config}")
        env = dict(os.environ)
    else:
        code = "import sys; from memwarden.cli import main; sys.exit(main(sys.argv[1:]))"
        argv = [sys.executable, "-c", code, "exporter", "--listen", f"127.0.0.1:{port}"]
        if web_config:
            argv += ["--web.config.file", str(web_config)]
        env = {**os.environ, "PYTHONPATH": src}
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return child
        except OSError:
            time.sleep(0.2)
    child.kill()
    raise RuntimeError(f"{argv[0]} did not start")


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def pipelined(src: str) -> str:
    """30,000 pipelined GET /metrics written and never read; the exporter's RSS and another client's scrapes."""
    port = _free_port()
    child = _exporter(src, port)
    try:
        before = _rss_mb(child.pid)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sent, deadline, request = 0, time.monotonic() + 20, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 100
        while sent < 30_000 and time.monotonic() < deadline:
            try:
                sock.send(request)
                sent += 100
            except BlockingIOError:
                time.sleep(0.01)
        slowest = max(_scrape(port)[1] for _ in range(10))
        time.sleep(2)
        after = _rss_mb(child.pid)
        sock.close()
    finally:
        _stop(child)
    return f"{sent} sent; RSS {before:.0f} -> {after:.0f} MB; other scrapes slowest {slowest:.2f}s"


def idle(src: str) -> str:
    """40 idle TCP connections, then 20 new scrapers."""
    port = _free_port()
    child = _exporter(src, port)
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        time.sleep(1)
        statuses = [_scrape(port, timeout=5)[0] for _ in range(20)]
        for sock in held:
            sock.close()
    finally:
        _stop(child)
    return f"{statuses.count(200)}/20 new scrapers 200 ({statuses.count(503)} got 503)"


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()}


def wrong_passwords(src: str | None, attackers: int = 36, tries: int = 20) -> str:
    """36 clients sending wrong passwords (cost-10 bcrypt); a fresh client with the right one, 20 times."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "web.yml"
        hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=10)).decode()
        config.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
        port = _free_port()
        child = _exporter(src, port, config)
        stop = threading.Event()

        def attack(number: int) -> None:
            connection, attempt = http.client.HTTPConnection("127.0.0.1", port, timeout=30), 0
            while not stop.is_set():
                attempt += 1  # a new wrong password each time, on a kept-alive connection
                try:
                    connection.request("GET", "/metrics", headers=_basic(f"wrong-{number}-{attempt}"))
                    connection.getresponse().read()
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.close()

        threads = [threading.Thread(target=attack, args=(n,), daemon=True) for n in range(attackers)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(15)  # every attacker has failed once (36 checks at ~0.1-0.3 s): the flood's steady state
            results = [_scrape(port, _basic("right"), timeout=10) for _ in range(tries)]
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=40)
            _stop(child)
    ok = [seconds for status, seconds in results if status == 200]
    return f"{len(ok)}/{tries} right-password scrapes 200" + (f" (slowest {max(ok):.2f}s)" if ok else "")


def wrong_passwords_node_exporter(_: str) -> str:
    if shutil.which("prometheus-node-exporter") is None and shutil.which("node_exporter") is None:
        return "node_exporter not installed"
    return "node_exporter: " + wrong_passwords(None)


# (name, what the issue measured, the attack, whether --before's checkout runs it too)
ATTACKS = [
    (
        "responder: slowloris, 1,100 sockets, 1,024 files",
        "0 notifications got through in 170 s; log 1.39 GB in ~3 min (7.7 MiB/s)",
        slowloris,
        True,
    ),
    (
        "exporter: 30,000 pipelined GETs never read",
        "RSS 29 -> 292 MB; other scrapes stalled 8.5 s",
        pipelined,
        True,
    ),
    ("exporter: 40 idle connections", "every new scraper 503 for a minute", idle, True),
    (
        "exporter: 36 clients sending wrong passwords",
        "fresh right password 503 20/20 (node_exporter 1.5: 200 10/10)",
        wrong_passwords,
        True,
    ),
    (
        "node_exporter (same web config): 36 wrong-password clients",
        "200 10/10",
        wrong_passwords_node_exporter,
        False,
    ),
]
