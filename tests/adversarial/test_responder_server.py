"""The responder's HTTP server before authentication: head and body deadlines, a connection
cap that slow clients cannot hold, and a log that stays small under a slowloris.

The issue's attack: under the default 1,024 open-file limit, 1,100 sockets each sending
`POST /alerts HTTP/1.1`, `Host: x` and a header line every 10 s kept every real
notification timing out for the whole run, and the log grew 1.39 GB in about 3 minutes.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from support.floods import Slowloris, post_alerts, raise_open_files
from support.responder import LiveResponder, alert, make_policy, notification
from support.servers import free_port, wait_until

TOKEN = "s3cret-token"


def _post(url: str, timeout: float = 5.0) -> int:
    return post_alerts(url, json.dumps(notification(alert(status="resolved"))).encode(), TOKEN, timeout)


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (reading whatever it answered), or None."""
    start = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


@pytest.fixture
def live(tmp_path):
    responder = LiveResponder(make_policy(), tmp_path / "state", token=TOKEN)
    yield responder
    responder.close()


def test_an_unfinished_request_head_is_closed_after_the_head_timeout(live):
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /alerts HTTP/1.1\r\nHost: x\r\n")
        took = _closed_within(sock, 20)
    assert took is not None, "a request head that never ends kept its connection for 20 s"
    assert 8 <= took <= 14, took  # the default head timeout is 10 s
    assert _post(live.url) == 200


def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(live):
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        took = _closed_within(sock, 20)
    assert took is not None and took <= 14, took


def test_a_body_that_stops_coming_is_a_408_after_the_body_timeout(tmp_path):
    from memwarden.responder.server import ServerLimits

    responder = LiveResponder(make_policy(), tmp_path / "state", token=TOKEN, limits=ServerLimits(body_timeout=2.0))
    try:
        port = int(responder.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n".encode()
                + b'{"version": "4"'
            )
            sock.settimeout(10)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"2 s" in answer, answer
    finally:
        responder.close()


def test_past_the_connection_cap_the_longest_waiting_connection_makes_room(tmp_path):
    from memwarden.responder.server import ServerLimits

    responder = LiveResponder(make_policy(), tmp_path / "state", token=TOKEN, limits=ServerLimits(max_connections=8))
    try:
        port = int(responder.url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        for sock in idle:
            sock.sendall(b"POST /alerts HTTP/1.1\r\n")
        time.sleep(0.3)
        assert [_post(responder.url) for _ in range(5)] == [200] * 5
        assert _closed_within(idle[0], 3) is not None, "the oldest waiting connection was not evicted"
        for sock in idle:
            sock.close()
    finally:
        responder.close()


def _child_limits() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))  # the default the issue ran under


@pytest.mark.slow
def test_real_notifications_get_through_a_1100_socket_slowloris_under_1024_open_files(tmp_path):
    """~60 s: the issue's slowloris, with a header line every 10 s, against a real responder process."""
    if raise_open_files(4096) < 1300:
        pytest.fail("this test needs 1,300 open files for its 1,100 attacking sockets (ulimit -Hn)")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump({"version": "memwarden/v1", "components": [], "responses": {"identity": {"names": ["host"]}}})
    )
    (tmp_path / "token").write_text(TOKEN + "\n")
    port = free_port()
    log_path = tmp_path / "responder.log"
    memwarden = str(Path(sys.executable).with_name("memwarden"))
    argv = [memwarden, "responder", "-p", str(policy), "--listen", f"127.0.0.1:{port}",
            "--token-file", str(tmp_path / "token"), "--state-dir", str(tmp_path / "state")]  # fmt: skip
    with log_path.open("wb") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_limits)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _post(url, 2) == 200, timeout=30, what="the responder to answer")
        with Slowloris(port, 1100, every=10.0, max_seconds=120) as flood:
            wait_until(lambda: flood.opened >= 1100, timeout=20, what="1,100 attacking sockets")
            time.sleep(3)  # let the connects land and the server's descriptors fill
            statuses = []
            for _ in range(20):
                started = time.monotonic()
                statuses.append(_post(url, 5))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            log_bytes = log_path.stat().st_size
            opened, evicted = flood.opened, flood.closed_by_server
        assert child.poll() is None, log_path.read_text()[-2000:]
        assert statuses == [200] * 20, (statuses, log_path.read_text()[-2000:])
        assert log_bytes < 64 * 1024, log_path.read_text()[-2000:]
        assert evicted > 0 and opened > 1100, (opened, evicted)
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    os.sync()
