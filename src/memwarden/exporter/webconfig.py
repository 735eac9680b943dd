"""The --web.config.file of node_exporter and Prometheus (exporter-toolkit), read the same way.

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

Unknown keys are errors, as in exporter-toolkit. Two client_auth_type values of Go's TLS
stack have no equivalent in Python's: RequestClientCert and RequireAnyClientCert accept a
client certificate without verifying it; they are refused with an explanation rather than
silently served with a different meaning.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
# Go's names of the TLS 1.2 suites exporter-toolkit accepts, in OpenSSL's spelling.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
# exporter-toolkit lets only these response headers be set.
ALLOWED_HEADERS = (
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
)
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TLS_KEYS = {
    "cert_file", "key_file", "client_auth_type", "client_ca_file", "cipher_suites", "curve_preferences",
    "min_version", "max_version", "prefer_server_cipher_suites", "client_allowed_sans",
}  # fmt: skip
_HTTP_KEYS = {"http2", "headers"}
# A bcrypt hash as htpasswd and Go write it: cost, then 22 characters of salt and 31 of hash.
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
# bcrypt's own floor is 4. Each step doubles the work of every check: cost 31 took the one
# auth thread for days (SIGTERM no longer stopped the exporter); 14 is about 1 s here.
MIN_BCRYPT_COST, MAX_BCRYPT_COST = 4, 14
# Printable ASCII only in a header value: CR/LF would start a header of the client's own
# (`\r\nSet-Cookie:` was injected into responses), and `’` made every response fail to encode.
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")


class WebConfigError(Exception):
    """The web config cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class WebConfig:
    """What the server needs: a TLS context (None: plain HTTP), users, extra headers."""

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: dict[str, str] = field(default_factory=dict)
    allowed_sans: tuple[str, ...] = ()  # client certificate SANs allowed (empty: any verified client)

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def load_web_config(path: str | Path | None) -> WebConfig:
    """Read and check a web config file; raise WebConfigError with the reason."""
    if path is None or str(path) == "":
        return WebConfig()
    return web_config_from(read_web_config(path), path)


def read_web_config(path: str | Path) -> Any:
    """Return the parsed YAML of a web config file (not checked yet)."""
    import yaml  # here, not above: the serving process gets the parsed file and never loads yaml

    from memwarden.policy.yamlsafe import safe_load

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise WebConfigError(f"{path}: cannot read the web config: {error.strerror or error}") from None
    try:
        return safe_load(text)  # the policy's limits: size, depth, aliases
    except yaml.YAMLError as error:
        raise WebConfigError(f"{path}: not valid YAML: {error}") from None


def web_config_from(raw: Any, path: str | Path) -> WebConfig:
    """Check a parsed web config and build what the server needs; `path` anchors relative files."""
    path = Path(path)
    if raw is None:
        return WebConfig()
    if not isinstance(raw, dict):
        raise WebConfigError(f"{path}: expected a mapping with tls_server_config, http_server_config, basic_auth_users")
    _no_unknown(path, "", raw, _TOP_KEYS)
    tls, sans = _tls(path, raw.get("tls_server_config") or {})
    return WebConfig(
        tls=tls,
        users=_users(path, raw.get("basic_auth_users") or {}),
        headers=_headers(path, raw.get("http_server_config") or {}),
        allowed_sans=sans,
    )


def _no_unknown(path: Path, where: str, mapping: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(map(str, mapping)) - known)
    if unknown:
        raise WebConfigError(f"{path}: {where}{unknown[0]}: unknown key; known keys are {', '.join(sorted(known))}")


def _tls(path: Path, config: dict[str, Any]) -> tuple[ssl.SSLContext | None, tuple[str, ...]]:
    """Return the server's TLS context (None: plain HTTP) and the client SANs it allows, from tls_server_config."""
    if not isinstance(config, dict):
        raise WebConfigError(f"{path}: tls_server_config: expected a mapping")
    _no_unknown(path, "tls_server_config.", config, _TLS_KEYS)
    cert, key = config.get("cert_file") or "", config.get("key_file") or ""
    if not cert and not key:
        return None, ()  # as exporter-toolkit: no certificate, plain HTTP
    if not cert:
        raise WebConfigError(f"{path}: tls_server_config.cert_file: missing (key_file is set)")
    if not key:
        raise WebConfigError(f"{path}: tls_server_config.key_file: missing (cert_file is set)")
    auth, ca = _client_auth(path, config)
    context = _context(path, config, cert, key, auth, ca)
    suites = config.get("cipher_suites") or []
    if suites:
        unknown = [suite for suite in suites if suite not in CIPHER_SUITES]
        if unknown:
            raise WebConfigError(f"{path}: tls_server_config.cipher_suites: unknown suite {unknown[0]}")
        context.set_ciphers(":".join(CIPHER_SUITES[suite] for suite in suites))
    if config.get("curve_preferences"):
        raise WebConfigError(
            f"{path}: tls_server_config.curve_preferences: not supported by memwarden (Python's TLS picks curves); remove it"
        )
    if config.get("prefer_server_cipher_suites", True):
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    sans = config.get("client_allowed_sans") or []
    if sans and CLIENT_AUTH[auth] != ssl.CERT_REQUIRED:
        raise WebConfigError(f"{path}: tls_server_config.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert")
    return context, tuple(str(san) for san in sans)


def _client_auth(path: Path, config: dict[str, Any]) -> tuple[str, str]:
    """Return client_auth_type and client_ca_file, refusing the combinations that verify nothing."""
    auth = config.get("client_auth_type") or "NoClientCert"
    if auth in UNSUPPORTED_CLIENT_AUTH:
        raise WebConfigError(
            f"{path}: tls_server_config.client_auth_type: {auth} (accept a client certificate without "
            "verifying it) is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
        )
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{path}: tls_server_config.client_auth_type: {auth!r} is not one of "
            f"{', '.join([*CLIENT_AUTH, *UNSUPPORTED_CLIENT_AUTH])}"
        )
    ca = config.get("client_ca_file") or ""
    if ca and auth == "NoClientCert":
        raise WebConfigError(
            f"{path}: tls_server_config.client_ca_file: a client CA is set without a client_auth_type that verifies it"
        )
    if CLIENT_AUTH[auth] != ssl.CERT_NONE and not ca:
        raise WebConfigError(f"{path}: tls_server_config.client_ca_file: {auth} needs the CA that signs client certificates")
    return auth, ca


def _context(path: Path, config: dict[str, Any], cert: str, key: str, auth: str, ca: str) -> ssl.SSLContext:
    """Return the server context: protocol versions, the certificate and the client CA loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(path, "min_version", config.get("min_version") or "TLS12")
    if config.get("max_version"):
        context.maximum_version = _version(path, "max_version", config["max_version"])
        if context.maximum_version < context.minimum_version:
            raise WebConfigError(
                f"{path}: tls_server_config.max_version: {config['max_version']} is below min_version "
                f"{config.get('min_version') or 'TLS12'}; no client could connect"
            )
    base = path.parent
    try:
        context.load_cert_chain(base / cert, base / key)
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(f"{path}: tls_server_config: cannot load cert_file {cert} / key_file {key}: {error}") from None
    context.verify_mode = CLIENT_AUTH[auth]
    if ca:
        try:
            context.load_verify_locations(cafile=base / ca)
        except (OSError, ssl.SSLError) as error:
            raise WebConfigError(f"{path}: tls_server_config.client_ca_file: cannot load {ca}: {error}") from None
    return context


def _version(path: Path, key: str, value: Any) -> ssl.TLSVersion:
    if not isinstance(value, str) or value not in TLS_VERSIONS:
        raise WebConfigError(f"{path}: tls_server_config.{key}: {value!r} is not one of {', '.join(TLS_VERSIONS)}")
    return TLS_VERSIONS[value]


def _users(path: Path, users: dict[str, Any]) -> dict[str, bytes]:
    if not isinstance(users, dict):
        raise WebConfigError(f"{path}: basic_auth_users: expected a mapping of user name to bcrypt hash")
    checked: dict[str, bytes] = {}
    for user, hashed in users.items():
        text = hashed if isinstance(hashed, str) else ""
        match = _BCRYPT.fullmatch(text)
        if match is None:
            raise WebConfigError(
                f"{path}: basic_auth_users.{user}: not a bcrypt hash; make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
            )
        cost = int(match.group(1))
        if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:
            raise WebConfigError(
                f"{path}: basic_auth_users.{user}: bcrypt cost {cost} is outside {MIN_BCRYPT_COST}..{MAX_BCRYPT_COST} "
                "(each step doubles the work of every login); make a hash of cost 10 with htpasswd -nBC 10"
            )
        checked[str(user)] = text.encode()
    return checked


def _headers(path: Path, config: dict[str, Any]) -> dict[str, str]:
    if not isinstance(config, dict):
        raise WebConfigError(f"{path}: http_server_config: expected a mapping")
    _no_unknown(path, "http_server_config.", config, _HTTP_KEYS)
    headers = config.get("headers") or {}
    if not isinstance(headers, dict):
        raise WebConfigError(f"{path}: http_server_config.headers: expected a mapping of header name to value")
    for name, value in headers.items():
        if name not in ALLOWED_HEADERS:
            raise WebConfigError(
                f"{path}: http_server_config.headers.{name}: not allowed; allowed are {', '.join(ALLOWED_HEADERS)}"
            )
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise WebConfigError(
                f"{path}: http_server_config.headers.{name}: {str(value)[:60]!r} must be printable ASCII text "
                "(no line breaks, control or non-ASCII characters)"
            )
    return {str(name): value for name, value in headers.items()}
