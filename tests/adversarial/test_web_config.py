"""Web-config files that used to break every response or wedge the exporter, refused at start.

Each refusal runs the real `memwarden exporter` with the file: it must exit 1 naming the
file and the key, before it listens. The long-password case runs the real server.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from memwarden.exporter.webconfig import load_web_config
from support.exporter import running
from support.servers import free_port

GOOD_HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
# A bcrypt hash of cost 31 (the salt and hash parts are well-formed): checking one password
# against it takes days, so the exporter must refuse it rather than try.
COST_31 = "$2y$31$" + GOOD_HASH[7:]
COST_3 = "$2y$03$" + GOOD_HASH[7:]

CASES = {
    "a header value with a non-Latin-1 character": (
        'http_server_config: {headers: {Content-Security-Policy: "default-src ’self’"}}',
        "http_server_config.headers.Content-Security-Policy",
    ),
    "a header value that injects another header": (
        'http_server_config: {headers: {X-Frame-Options: "deny\\r\\nSet-Cookie: session=evil"}}',
        "must be printable ASCII",
    ),
    "a header value that is not text": ("http_server_config: {headers: {X-Frame-Options: [deny]}}", "X-Frame-Options"),
    "a bcrypt hash of cost 31": (f"basic_auth_users: {{prometheus: '{COST_31}'}}", "bcrypt cost 31 is outside 4..14"),
    "a bcrypt hash of cost 3": (f"basic_auth_users: {{prometheus: '{COST_3}'}}", "bcrypt cost 3 is outside 4..14"),
    "a garbage hash of the right length": (
        "basic_auth_users: {prometheus: '$2y$10$" + "!" * 53 + "'}",
        "basic_auth_users.prometheus: not a bcrypt hash",
    ),
    "TLS min_version above max_version": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS13, max_version: TLS12}",
        "max_version: TLS12 is below min_version TLS13",
    ),
    "an alias bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8))
        + "basic_auth_users: {prometheus: *a7}\n",
        "expands to more than",
    ),
}


@pytest.fixture()
def tls_dir(tmp_path: Path, fixtures_dir: Path) -> Path:
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(fixtures_dir / "exporter" / "tls" / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_exporter_refuses_a_hostile_web_config_at_start_and_names_the_key(case: str, tls_dir: Path) -> None:
    text, message = CASES[case]
    path = tls_dir / "web.yml"
    path.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "memwarden.cli", "exporter", "--listen", f"127.0.0.1:{free_port()}", "--web.config.file", str(path)],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr and message in result.stderr, result.stderr


def test_a_password_over_72_bytes_gets_in_as_with_node_exporter(tmp_path: Path) -> None:
    """Go's bcrypt (node_exporter) compares the first 72 bytes; bcrypt 5 raised, so it was a 401."""
    password = "p" * 72 + "-and-more-than-bcrypt-reads"
    hashed = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users: {{prometheus: '{hashed}'}}\n")
    with running(load_web_config(path)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10)
        token = base64.b64encode(f"prometheus:{password}".encode()).decode()
        connection.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        token = base64.b64encode(f"prometheus:{'q' * 80}".encode()).decode()
        connection.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
        assert connection.getresponse().status == 401
