"""Check that a webhook request comes from our Alertmanager: bearer token or basic auth.

Secrets are read from files (as Alertmanager's `credentials_file` and `password_file`
are) and re-read when the file changes, so a token can be rotated without a restart.
Comparison is constant-time, so response timing does not leak how much of a guess matched.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import os
from dataclasses import dataclass, field
from typing import Any

LOGGER = logging.getLogger("memwarden.responder")


class AuthConfigError(Exception):
    """The auth settings cannot work (missing or empty secret, no auth off loopback)."""


def is_loopback(host: str) -> bool:
    """Return whether `host` is a loopback address or `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class SecretFile:
    """A secret read from a file, stripped of surrounding whitespace, re-read when it changes."""

    path: str
    _value: bytes = b""
    _stamp: tuple[Any, ...] | None = field(default=None, repr=False)

    def value(self) -> bytes:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                with open(self.path, "rb") as handle:
                    secret = handle.read().strip()
                if not secret:
                    if not self._value:
                        raise AuthConfigError(f"{self.path} is empty; write the secret into it")
                    # A rotation that truncates before it writes: refusing every request
                    # meanwhile (they were 503s) helps nobody; keep the last good secret.
                    if self._stamp != ("empty", stamp):
                        LOGGER.warning("%s is empty; keeping the last good secret until it holds one", self.path)
                    self._stamp = ("empty", stamp)
                    return self._value
                self._value, self._stamp = secret, stamp
        except OSError as error:
            if not self._value:
                raise AuthConfigError(f"cannot read {self.path}: {error.strerror or error}") from None
            # Keep the last good secret while the file is being replaced.
        return self._value


class Authenticator:
    """Decides whether an Authorization header is good; `mode` is bearer, basic or none."""

    def __init__(
        self,
        mode: str,
        *,
        token_file: str | None = None,
        username: str | None = None,
        password_file: str | None = None,
    ) -> None:
        self.mode = mode
        self._token = SecretFile(token_file) if mode == "bearer" and token_file else None
        self._password = SecretFile(password_file) if mode == "basic" and password_file else None
        self._username = (username or "").encode()
        if mode == "bearer" and self._token is None:
            raise AuthConfigError("bearer auth needs a token file (--token-file or responses.auth.token_file)")
        if mode == "basic" and (self._password is None or not self._username):
            raise AuthConfigError("basic auth needs responses.auth.username and password_file")
        if mode not in ("bearer", "basic", "none"):
            raise AuthConfigError(f"unknown auth mode {mode!r}")
        self.verify_readable()

    def verify_readable(self) -> None:
        """Read the secret now, so a bad file stops the start rather than every request."""
        for secret in (self._token, self._password):
            if secret is not None:
                secret.value()

    def check(self, header: str | None) -> str | None:
        """Return None when the request may pass, else the reason it may not."""
        if self.mode == "none":
            return None
        if not header:
            return "no Authorization header"
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if self.mode == "bearer":
            if scheme.lower() != "bearer":
                return f"expected a Bearer token, got {scheme[:20]!r}"
            assert self._token is not None
            # aiohttp decodes header bytes as UTF-8 with surrogateescape: encoding the same way
            # gives back the bytes sent (non-UTF-8 ones were a UnicodeEncodeError, a 503).
            given = credentials.encode("utf-8", "surrogateescape")
            return None if hmac.compare_digest(given, self._token.value()) else "wrong token"
        if scheme.lower() != "basic":
            return f"expected Basic credentials, got {scheme[:20]!r}"
        try:
            raw = credentials.encode("utf-8", "surrogateescape")
            user, _, password = base64.b64decode(raw, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return "Basic credentials are not base64"
        assert self._password is not None
        # Compare both parts every time, so timing does not tell which one was wrong.
        user_ok = hmac.compare_digest(user, self._username)
        password_ok = hmac.compare_digest(password, self._password.value())
        return None if user_ok and password_ok else "wrong user or password"
