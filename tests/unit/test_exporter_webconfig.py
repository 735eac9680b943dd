"""--web.config.file: node_exporter's format, read the same way, with clear errors."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import bcrypt
import pytest

from memwarden.exporter.webconfig import WebConfigError, load_web_config

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture()
def tls_dir(tmp_path: Path, fixtures_dir: Path) -> Path:
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(fixtures_dir / "exporter" / "tls" / name, tmp_path / name)
    return tmp_path


def write(directory: Path, text: str) -> Path:
    path = directory / "web.yml"
    path.write_text(text)
    return path


def test_no_file_or_an_empty_file_is_plain_http(tmp_path: Path) -> None:
    assert load_web_config(None).tls is None
    config = load_web_config(write(tmp_path, ""))
    assert config.tls is None and config.users == {} and config.scheme == "http"


def test_a_full_config_in_node_exporter_format(tls_dir: Path) -> None:
    config = load_web_config(
        write(
            tls_dir,
            f"""
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
  client_allowed_sans: [client.memwarden.test]
http_server_config:
  http2: true
  headers:
    X-Frame-Options: deny
basic_auth_users:
  prometheus: {HASH}
""",
        )
    )
    assert config.tls is not None and config.scheme == "https"
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.users == {"prometheus": HASH.encode()}
    assert config.headers == {"X-Frame-Options": "deny"}
    assert config.allowed_sans == ("client.memwarden.test",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config: {cert_file: server.crt}", "tls_server_config.key_file: missing"),
        ("tls_server_config: {key_file: server.key}", "tls_server_config.cert_file: missing"),
        ("tls_server_config: {cert_file: nope.crt, key_file: server.key}", "cannot load cert_file nope.crt"),
        ("tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS9}", "min_version: 'TLS9'"),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, client_auth_type: RequireAnyClientCert}",
            "RequireAnyClientCert (accept a client certificate without verifying it) is not supported",
        ),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, client_auth_type: RequireAndVerifyClientCert}",
            "needs the CA that signs client certificates",
        ),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, client_ca_file: ca.crt}",
            "without a client_auth_type",
        ),
        ("tls_server_config: {cert_file: server.crt, key_file: server.key, cipher_suites: [TLS_FOO]}", "unknown suite TLS_FOO"),
        ("tls_server_config: {certfile: server.crt}", "tls_server_config.certfile: unknown key"),
        ("basic_auth: {}", "basic_auth: unknown key"),
        ("basic_auth_users: {prometheus: secret}", "basic_auth_users.prometheus: not a bcrypt hash"),
        ("http_server_config: {headers: {Authorization: x}}", "headers.Authorization: not allowed"),
        ("[1, 2]", "expected a mapping"),
        ("tls_server_config: [", "not valid YAML"),
    ],
)
def test_invalid_configs_name_the_key_and_the_fix(tls_dir: Path, text: str, message: str) -> None:
    path = write(tls_dir, text)
    with pytest.raises(WebConfigError) as raised:
        load_web_config(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="cannot read the web config"):
        load_web_config(tmp_path / "missing.yml")
