"""A small HTTP/1.1 server for /metrics: keep-alive, optional TLS and basic auth, on asyncio.

Why not prometheus_client's start_http_server: it speaks HTTP/1.0 and closes every
connection, which costs a TCP handshake (and with TLS a TLS handshake) per scrape —
~0.4 ms of the ~0.55 ms node_exporter needs for a whole scrape. Prometheus keeps its
connection to a target open, so serving keep-alive is where most of the time is won.

The scrape itself runs on the event loop: it is a millisecond of file reads, and running
scrapes one at a time keeps collectors free of locks. Only bcrypt, which takes ~50 ms per
check by design, runs in one dedicated worker thread (so a flood of wrong passwords costs
at most one core), and each answer is cached.

Slow or abusive clients: a request must arrive whole within HEAD_TIMEOUT_SECONDS of its
first byte (not of its last: one byte every few seconds would hold a connection forever),
and beyond `max_connections` open connections new ones are answered 503 and closed, so
connections cannot eat the descriptors the collectors keep open on /proc.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import signal
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

import bcrypt

from .exposition import CONTENT_TYPE
from .webconfig import WebConfig

log = logging.getLogger("memwarden.exporter")

MAX_HEAD_BYTES = 16 * 1024
IDLE_TIMEOUT_SECONDS = 300.0  # close keep-alive connections unused this long
HEAD_TIMEOUT_SECONDS = 30.0  # a request must arrive whole this long after its first byte
DEFAULT_MAX_CONNECTIONS = 40  # Prometheus needs one per server scraping us
MAX_PENDING_CHECKS = 32  # bcrypt checks queued at once; beyond, 503 (a flood of wrong passwords)
_HEAD_END = re.compile(rb"\r?\n\r?\n")  # RFC 9112 2.2: accept a bare LF as a line end
_LINE_END = re.compile(r"\r?\n")
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
# Checked against when the user is unknown, so an unknown user costs as long as a wrong password.
_DUMMY_HASH = b"$2b$10$" + b"." * 53


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes, caching each verdict."""

    def __init__(self, users: dict[str, bytes], cache_size: int = 1024) -> None:
        self.users = users
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_size = cache_size
        self._worker: ThreadPoolExecutor | None = None
        self.pending = 0  # checks submitted and not yet answered

    def submit(self, header: str) -> asyncio.Future[bool]:
        """Check the header in the one bcrypt thread (from the event loop)."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        self.pending += 1
        future = asyncio.get_running_loop().run_in_executor(self._worker, self.check, header)

        def done(_: asyncio.Future[bool]) -> None:
            self.pending -= 1

        future.add_done_callback(done)
        return future

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    def _key(self, header: str) -> bytes:
        return hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()

    def cached(self, header: str) -> bool | None:
        """Return the remembered verdict for this exact header, or None when unknown."""
        key = self._key(header)
        verdict = self._cache.get(key)
        if verdict is not None:
            self._cache.move_to_end(key)
        return verdict

    def check(self, header: str) -> bool:
        """Verify the header (slow: bcrypt) and remember the verdict."""
        verdict = self._verify(header)
        self._cache[self._key(header)] = verdict
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return verdict

    def _verify(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        try:
            # bcrypt reads only the first 72 bytes; Go's (node_exporter) compares those and
            # accepts a longer password, where bcrypt 5 raises. Do as node_exporter does.
            matches = bcrypt.checkpw(password.encode()[:72], hashed or _DUMMY_HASH)
        except ValueError:
            matches = False
        return hashed is not None and matches


class MetricsServer:
    """Serves `render()` at /metrics and a landing page at /; start with `await start(host, port)`.

    `select(names)`, when given, renders only the named metrics for `/metrics?name[]=...`
    (as prometheus_client does); without it the parameter is ignored.
    """

    def __init__(
        self,
        render: Callable[[], bytes],
        web: WebConfig,
        *,
        landing: bytes,
        select: Callable[[frozenset[str]], bytes] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.render = render
        self.select = select
        self.max_connections = max_connections
        self.web = web
        self.auth = BasicAuth(web.users)
        self.landing = landing
        self.connections: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._date = (0, "")
        self.url = ""

    async def start(self, host: str, port: int) -> None:
        """Listen; raises OSError (port in use, address not available)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, ssl=self.web.tls, reuse_address=True
        )
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"{self.web.scheme}://{shown}:{bound[1]}"
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        self.auth.shutdown()
        if self._server is not None:
            await self._server.wait_closed()

    def date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(HEAD_TIMEOUT_SECONDS / 6)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Close connections whose request is late, and idle ones."""
        for connection in list(self.connections):
            started = connection.request_started
            if connection.over_cap:
                if now - connection.last_active > HEAD_TIMEOUT_SECONDS:
                    connection.close()
            elif started is not None and not connection.busy:
                if now - started > HEAD_TIMEOUT_SECONDS:
                    connection.close()
            elif now - connection.last_active > IDLE_TIMEOUT_SECONDS:
                connection.close()


class _Connection(asyncio.Protocol):
    """One client connection: parses requests in order, answers each, keeps the connection."""

    def __init__(self, server: MetricsServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.busy = False  # a bcrypt check is running; later pipelined requests wait
        self.transport: asyncio.Transport | None = None
        self.last_active = time.monotonic()
        self.request_started: float | None = None  # when the first byte of the pending request came
        self.over_cap = False  # opened beyond --web.max-connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        open_now = len(self.server.connections)
        if open_now >= self.server.max_connections:
            if open_now >= 2 * self.server.max_connections:
                self.close()  # a flood: no descriptor to spare for a polite answer
                return
            log.warning("refusing a connection: %d open, the most allowed (--web.max-connections)", open_now)
            self.over_cap = True  # its request gets a 503, then it is closed
        self.server.connections.add(self)
        if self.server.web.allowed_sans and not self._client_allowed():
            log.warning("refused a client certificate without an allowed SAN")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _client_allowed(self) -> bool:
        assert self.transport is not None
        certificate = self.transport.get_extra_info("peercert") or {}
        names = {value for _, value in certificate.get("subjectAltName", ())}
        return bool(names & set(self.server.web.allowed_sans))

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.last_active = time.monotonic()
        if not self.buffer:
            self.request_started = self.last_active
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while not self.busy and self.transport is not None:
            while self.buffer.startswith((b"\r\n", b"\n")):  # RFC 9112 2.2: empty lines before a request
                del self.buffer[: 1 if self.buffer[0] == 0x0A else 2]
            end = _HEAD_END.search(self.buffer)
            if end is None:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._send(431, b"request head too large\n", close=True)
                elif not self.buffer:
                    self.request_started = None
                return
            head = bytes(self.buffer[: end.start()]).decode("latin-1")
            del self.buffer[: end.end()]
            # the next pipelined request, if any, is already here: its clock starts now
            self.request_started = time.monotonic() if self.buffer else None
            self._request(head)

    def _request(self, head: str) -> None:
        request_line, *header_lines = _LINE_END.split(head)
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._send(400, b"malformed request line\n", close=True)
            return
        method, target, version = parts
        if self.over_cap:
            self._send(503, b"too many open connections; try again later\n", close=True)
            return
        headers: dict[str, str] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                self._send(400, b"malformed header line\n", close=True)
                return
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") or headers.get("content-length", "0") not in ("", "0"):
            self._send(400, b"request bodies are not accepted\n", close=True)
            return
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if not target.startswith("/"):
            # absolute form ("http://host:port/metrics", RFC 9112 3.2.2: a server must accept it)
            split = urlsplit(target)
            if split.scheme.lower() not in ("http", "https") or not split.netloc:
                self._send(400, b"malformed request target\n", close=True)
                return
            target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        path, _, query = target.partition("?")
        names = frozenset(parse_qs(query).get("name[]", ())) if query else frozenset()
        request = _Request(method, path, headers, keep, names)
        auth = self.server.auth
        if auth.enabled:
            header = headers.get("authorization", "")
            verdict = auth.cached(header) if header else False
            if verdict is None:
                if auth.pending >= MAX_PENDING_CHECKS:
                    log.warning("refused a request: %d password checks already queued", auth.pending)
                    self._send(503, b"too many password checks in progress; try again later\n", keep=request.keep)
                    return
                self._check_in_thread(request, header)
                return
            if not verdict:
                self._unauthorized(request)
                return
        self._answer(request)

    def _check_in_thread(self, request: _Request, header: str) -> None:
        self.busy = True
        future = self.server.auth.submit(header)

        def done(result: asyncio.Future[bool]) -> None:
            self.busy = False
            if self.transport is None or result.cancelled():
                return
            if result.result():
                self._answer(request)
            else:
                self._unauthorized(request)
            self._process()

        future.add_done_callback(done)

    def _unauthorized(self, request: _Request) -> None:
        self._send(
            401, b"Unauthorized\n", keep=request.keep, head_only=request.method == "HEAD",
            extra=(("WWW-Authenticate", 'Basic realm="memwarden"'),),
        )  # fmt: skip

    def _answer(self, request: _Request) -> None:
        head_only = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            self._send(405, b"only GET and HEAD\n", keep=request.keep, extra=(("Allow", "GET, HEAD"),))
            return
        if request.path == "/metrics":
            try:
                select = self.server.select
                body = select(request.names) if request.names and select is not None else self.server.render()
            except Exception:  # noqa: BLE001 - report, keep serving
                log.exception("rendering /metrics failed")
                self._send(500, b"error: rendering metrics failed; see the exporter's log\n", keep=request.keep)
                return
            extra: tuple[tuple[str, str], ...] = ()
            if accepts_gzip(request.headers.get("accept-encoding", "")):
                compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: gzip container
                body = compressor.compress(body) + compressor.flush()
                extra = (("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
            self._send(200, body, content_type=CONTENT_TYPE, keep=request.keep, head_only=head_only, extra=extra)
        elif request.path == "/":
            self._send(200, self.server.landing, content_type="text/html; charset=utf-8", keep=request.keep, head_only=head_only)
        else:
            self._send(404, b"not found; metrics are at /metrics\n", keep=request.keep, head_only=head_only)

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        keep: bool = False,
        close: bool = False,
        head_only: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if self.transport is None:
            return
        lines = [
            f"HTTP/1.1 {status} {REASONS[status]}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"Date: {self.server.date()}",
        ]
        lines += [f"{name}: {value}" for name, value in (*extra, *self.server.web.headers.items())]
        closing = close or not keep
        if closing:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head if head_only else head + body)
        if closing:
            self.transport.close()
            self.transport = None


class _Request:
    __slots__ = ("method", "path", "headers", "keep", "names")

    def __init__(self, method: str, path: str, headers: dict[str, str], keep: bool, names: frozenset[str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.keep = keep
        self.names = names  # ?name[]=... : only these metrics


def accepts_gzip(header: str) -> bool:
    """True when an Accept-Encoding value allows gzip: listed (or "*") with a q-value above 0."""
    star: bool | None = None
    for item in header.split(","):
        coding, *parameters = item.split(";")
        coding = coding.strip().lower()
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality > 0
    return bool(star)


async def serve(server: MetricsServer, host: str, port: int, *, started: Callable[[str], None] | None = None) -> None:
    """Run `server` until SIGTERM or SIGINT, then close it cleanly."""
    await server.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if started is not None:
        started(server.url)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await server.close()
