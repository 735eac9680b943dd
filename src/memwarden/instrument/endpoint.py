"""The optional local cleanup endpoint: POST /memwarden/cleanup runs (or shares) a cleanup; GET /metrics.

A thread of http.server rather than an app server: it lives inside the user's service,
which must not gain a dependency or an event loop for one endpoint.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from .figures import CleanupReport


class Cleaner(Protocol):
    """What the endpoint needs of an Instrument (cleanup.py serves one; no import back to it)."""

    @property
    def registry(self) -> CollectorRegistry: ...

    def shared_cleanup(self, trigger: str) -> tuple[CleanupReport, bool]: ...


LOGGER = logging.getLogger("memwarden.instrument")
CLEANUP_PATH = "/memwarden/cleanup"
MAX_REQUEST_BYTES = 64 * 1024  # the responder sends one alert as JSON; nothing needs more


def serve(instrument: Cleaner, listen: str, token: str | None) -> tuple[ThreadingHTTPServer, str]:
    """Serve POST /memwarden/cleanup and GET /metrics on `listen` in a thread; return the server and the cleanup URL."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not loopback(host) and not token:
        raise ValueError(f"the cleanup endpoint on {host} would be open to the network; give token= or use 127.0.0.1")

    # client_python's handler serves GET /metrics (content negotiation, gzip, name[]
    # filters); only the cleanup endpoint is ours.
    class Handler(MetricsHandler):
        registry = instrument.registry

        def do_POST(self) -> None:  # http.server's naming
            if self.path != CLEANUP_PATH:
                return self._answer(404, {"error": f"POST {CLEANUP_PATH}"})
            if token and not hmac.compare_digest(self.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
                return self._answer(401, {"error": "wrong or missing bearer token"})
            length = self.headers.get("Content-Length", "0").strip()
            # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
            if re.fullmatch(r"[0-9]+", length) is None:
                self.close_connection = True  # the body's end cannot be known
                return self._answer(400, {"error": f"Content-Length {length[:20]!r} is not a byte count"})
            if int(length) > MAX_REQUEST_BYTES:
                self.close_connection = True
                return self._answer(413, {"error": f"a body over {MAX_REQUEST_BYTES} bytes"})
            self.rfile.read(int(length))  # the responder's alert: not needed
            report, shared = instrument.shared_cleanup("http")
            self._answer(200, {**report.as_json(), "shared": shared})

        def do_GET(self) -> None:
            if urlsplit(self.path).path != "/metrics":
                return self._answer(404, {"error": f"GET /metrics or POST {CLEANUP_PATH}"})
            super().do_GET()

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
            LOGGER.debug(format, *args)

    server = _EndpointServer((host, int(port)), Handler)
    bound_host, bound_port = server.socket.getsockname()[:2]
    threading.Thread(target=server.serve_forever, name="memwarden-endpoint", daemon=True).start()
    return server, f"http://{bound_host}:{bound_port}{CLEANUP_PATH}"


class _EndpointServer(ThreadingHTTPServer):
    daemon_threads = True
    # http.server's backlog of 5 drops or resets connections when a burst of requests
    # arrives at once (every worker's responder call, a retry storm); they share one run anyway.
    request_queue_size = 128


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
