"""The HTTP/1.1 server on loopback: keep-alive, errors, gzip, basic auth and TLS."""

from __future__ import annotations

import base64
import gzip
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from memwarden.exporter import server as server_module
from memwarden.exporter.server import MetricsServer
from memwarden.exporter.webconfig import WebConfig, load_web_config
from memwarden.exporter.wire import accepts_gzip
from support.exporter import BODY, running

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))


def port_of(server: MetricsServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def raw(server: MetricsServer, data: bytes) -> bytes:
    """Send raw bytes, return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_many_scrapes_over_one_kept_connection() -> None:
    with running(WebConfig()) as server:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
        connection.request("GET", "/metrics")
        first_socket = connection.sock
        for _ in range(3):
            response = connection.getresponse()
            assert response.status == 200 and response.read() == BODY
            assert response.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
            assert response.getheader("Connection") is None
            connection.request("GET", "/metrics?debug=1")
            assert connection.sock is first_socket
        connection.close()


def test_pipelined_requests_are_answered_in_order_and_http10_closes() -> None:
    with running(WebConfig()) as server:
        answer = raw(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"HTTP/1.1 404 Not Found\r\n" in answer
        assert answer.index(b"200 OK") < answer.index(b"404 Not Found")
        old = raw(server, b"GET / HTTP/1.0\r\n\r\n")
        assert old.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in old and b"memwarden" in old


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", b"405"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"400"),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000, b"431"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason(request_bytes: bytes, status: bytes) -> None:
    with running(WebConfig()) as server:
        answer = raw(server, request_bytes)
        assert answer.startswith(b"HTTP/1.1 " + status)
        assert answer.split(b"\r\n\r\n", 1)[1].strip()  # a reason in the body


def test_head_and_gzip() -> None:
    with running(WebConfig()) as server:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
        connection.request("HEAD", "/metrics")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b""
        assert response.getheader("Content-Length") == str(len(BODY))
        connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        assert response.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(response.read()) == BODY


def _failing_once() -> Callable[[], bytes]:
    """A render that raises the first time it is called and renders BODY after."""
    calls = []

    def render() -> bytes:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return BODY

    return render


def test_a_failing_render_is_a_500_and_the_server_keeps_serving() -> None:
    with running(WebConfig(), _failing_once()) as server:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 500 and b"error:" in response.read()
        connection.request("GET", "/metrics")
        assert connection.getresponse().read() == BODY


def test_a_failing_render_answers_a_head_with_no_body_so_the_next_request_on_the_connection_is_read_right() -> None:
    with running(WebConfig(), _failing_once()) as server:
        # Both requests in one write: a body after the HEAD's 500 would be read as the next answer.
        answer = raw(
            server, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        head, rest = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 500") and b"Content-Length:" in head
        assert rest.startswith(b"HTTP/1.1 200"), rest[:80]
        assert rest.split(b"\r\n\r\n", 1)[1] == BODY


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_with_bcrypt_hashes_and_a_cached_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(WebConfig(users={"prometheus": HASH}, headers={"X-Frame-Options": "deny"})) as server:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
        for headers in ({}, basic("prometheus", "wrong"), basic("nobody", "secret"), {"Authorization": "Bearer x"}):
            connection.request("GET", "/metrics", headers=headers)
            response = connection.getresponse()
            assert response.status == 401, headers
            assert response.getheader("WWW-Authenticate") == 'Basic realm="memwarden"'
            response.read()
        connection.request("GET", "/metrics", headers=basic("prometheus", "secret"))
        response = connection.getresponse()
        assert response.status == 200 and response.read() == BODY
        assert response.getheader("X-Frame-Options") == "deny"
        checks = []
        monkeypatch.setattr(server.auth, "_verify", lambda header: checks.append(header) or False)
        connection.request("GET", "/metrics", headers=basic("prometheus", "secret"))
        assert connection.getresponse().read() == BODY
        assert checks == []  # answered from the cache, no second bcrypt


@pytest.fixture(scope="module")
def tls_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "exporter" / "tls"


def tls_web(tmp_path: Path, tls_dir: Path, extra: str = "") -> WebConfig:
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {tls_dir / 'server.crt'}\n  key_file: {tls_dir / 'server.key'}\n{extra}")
    return load_web_config(path)


def client_context(tls_dir: Path, certificate: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    if certificate:
        context.load_cert_chain(tls_dir / f"{certificate}.crt", tls_dir / f"{certificate}.key")
    return context


def https_get(server: MetricsServer, context: ssl.SSLContext) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port_of(server), timeout=5, context=context)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_tls_serves_https_and_refuses_plain_http(tmp_path: Path, tls_dir: Path) -> None:
    with running(tls_web(tmp_path, tls_dir)) as server:
        assert server.url.startswith("https://")
        assert https_get(server, client_context(tls_dir)) == 200
        with pytest.raises((http.client.HTTPException, OSError)):
            connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
            connection.request("GET", "/metrics")
            connection.getresponse().read()


def test_tls_client_certificates_are_verified_and_their_names_checked(tmp_path: Path, tls_dir: Path) -> None:
    extra = (
        "  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {tls_dir / 'ca.crt'}\n"
        "  client_allowed_sans: [client.memwarden.test]\n"
    )
    with running(tls_web(tmp_path, tls_dir, extra)) as server:
        assert https_get(server, client_context(tls_dir, "client")) == 200
        for refused in (None, "stranger"):
            with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
                https_get(server, client_context(tls_dir, refused))
    # a verified client whose name is not allowed
    other = extra.replace("client.memwarden.test", "someone.else")
    with running(tls_web(tmp_path, tls_dir, other)) as server:
        with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
            https_get(server, client_context(tls_dir, "client"))


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # open, nothing to read
    except ConnectionResetError:
        return True


@pytest.mark.slow  # waits out the head timeout a byte at a time
def test_a_request_must_arrive_whole_within_the_timeout_of_its_first_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "HEAD_TIMEOUT_SECONDS", 0.6)  # the sweeper looks every 0.1 s
    with running(WebConfig()) as server:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
            started, closed = time.monotonic(), False
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:  # one byte every 0.2 s
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.2)
                if _closed_by_peer(sock):
                    closed = True
                    break
                if time.monotonic() - started > 5:
                    break
            assert closed and time.monotonic() - started < 3


def test_at_the_cap_the_idlest_connection_makes_room_and_with_none_idle_a_503() -> None:
    with running(WebConfig(), max_connections=2) as server:
        kept = [http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5) for _ in range(2)]
        for connection in kept:
            connection.request("GET", "/metrics")
            assert connection.getresponse().read() == BODY
        # both are idle between scrapes: the one idle longest is closed for the newcomer
        assert raw(server, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
        kept[0].request("GET", "/metrics")
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            kept[0].getresponse()
        for connection in kept:
            connection.close()
        busy = [socket.create_connection(("127.0.0.1", port_of(server))) for _ in range(2)]
        for sock in busy:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # a request on its way: not idle
        time.sleep(0.2)
        refused = raw(server, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503 ") and b"too many open connections" in refused
        busy[0].close()
        deadline = time.monotonic() + 5
        while len(server.connections) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # until the server has seen the close
        assert raw(server, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
        busy[1].close()


def test_name_filter_selects_metrics_like_prometheus_client() -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge

    from memwarden.exporter.exposition import TextRenderer

    registry = CollectorRegistry()
    Gauge("a_bytes", "A.", registry=registry).set(1)
    Counter("b", "B.", registry=registry).inc()
    Gauge("c", "C.", registry=registry).set(3)
    renderer = TextRenderer(registry)
    with running(WebConfig(), renderer.render, select=renderer.render) as server:
        answer = raw(server, b"GET /metrics?name[]=a_bytes&name%5B%5D=b_total HTTP/1.0\r\n\r\n")
        body = answer.split(b"\r\n\r\n", 1)[1].decode()
        assert [line.split()[0] for line in body.splitlines() if not line.startswith("#")] == ["a_bytes", "b_total"]
        everything = raw(server, b"GET /metrics HTTP/1.0\r\n\r\n").split(b"\r\n\r\n", 1)[1]
        assert everything == renderer.render() and b"\nc 3.0" in everything


def test_bare_lf_line_ends_and_absolute_form_targets_are_accepted() -> None:
    with running(WebConfig()) as server:
        answer = raw(server, b"GET /metrics HTTP/1.0\n\n")
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(BODY)
        absolute = f"GET http://127.0.0.1:{port_of(server)}/metrics HTTP/1.1\r\nConnection: close\r\n\r\n".encode()
        answer = raw(server, absolute)
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(BODY)
        assert raw(server, b"GET ftp://x/metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [("gzip", True), ("gzip;q=0, identity", False), ("identity, gzip;q=0.5", True), ("GZIP ; Q=0.000", False),
     ("*", True), ("*;q=0", False), ("br, *", True), ("identity", False), ("", False), ("gzip;q=abc", False)],
)  # fmt: skip
def test_accept_encoding_honours_q_values(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


@pytest.mark.slow  # waits out 0.2 s checks one after another
def test_password_checks_run_one_at_a_time_and_each_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(WebConfig(users={"prometheus": HASH})) as server:
        lock = threading.Lock()
        running_now, most = [0], [0]

        def slow_verify(header: str) -> bool:
            with lock:
                running_now[0] += 1
                most[0] = max(most[0], running_now[0])
            time.sleep(0.2)
            with lock:
                running_now[0] -= 1
            return False

        monkeypatch.setattr(server.auth, "_verify", slow_verify)
        answers: list[bytes] = []

        def wrong(index: int) -> None:
            header = base64.b64encode(f"prometheus:wrong{index}".encode())
            answers.append(raw(server, b"GET /metrics HTTP/1.0\r\nAuthorization: Basic " + header + b"\r\n\r\n")[:12])

        threads = [threading.Thread(target=wrong, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert most[0] == 1  # one bcrypt thread: at most one core spent on wrong passwords
        # one check per connection: the queue is bounded by the connection cap, and nothing is refused
        assert answers == [b"HTTP/1.1 401"] * 8
