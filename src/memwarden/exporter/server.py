"""A small HTTP/1.1 server for /metrics: keep-alive, optional TLS and basic auth, on asyncio.

Why not prometheus_client's start_http_server: it speaks HTTP/1.0 and closes every
connection, which costs a TCP handshake (and with TLS a TLS handshake) per scrape —
~0.4 ms of the ~0.55 ms node_exporter needs for a whole scrape. Prometheus keeps its
connection to a target open, so serving keep-alive is where most of the time is won.

The scrape itself runs on the event loop: it is a millisecond of file reads, and running
scrapes one at a time keeps collectors free of locks. Only bcrypt, which takes ~50 ms per
check by design, runs in one dedicated worker thread (so a flood of wrong passwords costs
at most one core), and each answer is cached.

Slow or abusive clients:
- a request must arrive whole within HEAD_TIMEOUT_SECONDS of its first byte (not of its
  last: one byte every few seconds would hold a connection forever);
- answers wait in the transport's buffer only up to WRITE_HIGH_WATER_BYTES: above it the
  connection stops reading (and so parsing pipelined requests) until the client reads, so
  30,000 pipelined GETs never read cannot fill memory (they took RSS from 29 to 292 MB and
  stalled other scrapes 8.5 s); one that reads nothing for WRITE_TIMEOUT_SECONDS is closed;
- at `max_connections` open connections a new one closes the connection idle longest (40
  idle sockets used to give every new scraper 503 for the 5 minutes until they timed out);
  only when none is idle is it answered 503 and closed, so connections cannot eat the
  descriptors the collectors keep open on /proc;
- bcrypt (basic_auth.py): each connection has at most one check queued, so the queue is
  bounded by the connection cap, and a connection whose check failed queues behind those
  that have not failed yet: a flood of wrong passwords delays a right one by a check or
  two instead of refusing it (36 such clients used to give a fresh right password 503 20
  times of 20, when the queue was capped at 32 checks).
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
import zlib
from collections.abc import Callable
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

from .basic_auth import BasicAuth
from .exposition import CONTENT_TYPE
from .webconfig import WebConfig

log = logging.getLogger("memwarden.exporter")

MAX_HEAD_BYTES = 16 * 1024
IDLE_TIMEOUT_SECONDS = 300.0  # close keep-alive connections unused this long
HEAD_TIMEOUT_SECONDS = 30.0  # a request must arrive whole this long after its first byte
DEFAULT_MAX_CONNECTIONS = 40  # Prometheus needs one per server scraping us
WRITE_HIGH_WATER_BYTES = 256 * 1024  # answers buffered for a client before its connection stops reading
PIPELINE_BATCH = 1  # pipelined requests answered per connection per loop turn: others scrape in between
WRITE_TIMEOUT_SECONDS = 30.0  # a client that reads none of its answers this long is closed
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
        self._server = await loop.create_server(lambda: _Connection(self), host, port, ssl=self.web.tls, reuse_address=True)
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

    def make_room(self) -> bool:
        """Close the connection idle longest (no request pending, nothing unsent); False when none is."""
        idle = [connection for connection in self.connections if connection.idle]
        if not idle:
            return False
        oldest = min(idle, key=lambda connection: connection.last_active)
        self.connections.discard(oldest)  # its descriptor is freed as the transport closes
        oldest.close()
        return True

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
        """Close connections whose request is late, that read none of their answers, and idle ones."""
        for connection in list(self.connections):
            started = connection.request_started
            if connection.write_paused_since is not None:
                if now - connection.write_paused_since > WRITE_TIMEOUT_SECONDS:
                    connection.close()
            elif connection.over_cap:
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
        self.failed_check = False  # a password check failed here: its next checks queue behind others
        self.write_paused_since: float | None = None  # answers above the high-water mark since then
        self.next_batch: asyncio.Handle | None = None  # the rest of a pipeline, answered on a later turn

    @property
    def idle(self) -> bool:
        """Waiting for a request with nothing of one received, and nothing unsent."""
        return not self.busy and not self.buffer and self.write_paused_since is None and not self.over_cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES)
        open_now = len(self.server.connections)
        if open_now >= self.server.max_connections and self.server.make_room():
            open_now -= 1
        if open_now >= self.server.max_connections:
            if open_now >= 2 * self.server.max_connections:
                self.close()  # a flood: no descriptor to spare for a polite answer
                return
            log.warning("refusing a connection: %d open and none idle, the most allowed (--web.max-connections)", open_now)
            self.over_cap = True  # its request gets a 503, then it is closed
        self.server.connections.add(self)
        if self.server.web.allowed_sans and not self._client_allowed():
            log.warning("refused a client certificate without an allowed SAN")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        """Answers above the high-water mark: read (and so answer) nothing more until the client reads."""
        self.write_paused_since = time.monotonic()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused_since = None
        self.last_active = time.monotonic()
        if self.transport is not None:
            self.transport.resume_reading()
            if not self.busy:
                self._process()

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
        if not self.busy and self.write_paused_since is None and self.next_batch is None:
            self._process()

    def _process(self) -> None:
        if self.next_batch is not None:
            self.next_batch.cancel()
            self.next_batch = None
        answered = 0
        while not self.busy and self.write_paused_since is None and self.transport is not None:
            while self.buffer.startswith((b"\r\n", b"\n")):  # RFC 9112 2.2: empty lines before a request
                del self.buffer[: 1 if self.buffer[0] == 0x0A else 2]
            end = _HEAD_END.search(self.buffer)
            if end is None:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._send(431, b"request head too large\n", close=True)
                elif not self.buffer:
                    self.request_started = None
                return
            if answered == PIPELINE_BATCH:
                # Each answer is a whole scrape: a client pipelining thousands would hold the
                # loop for seconds. Answer the rest on later turns, other connections between.
                self.next_batch = asyncio.get_running_loop().call_soon(self._process)
                return
            answered += 1
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
                self._check_in_thread(request, header)
                return
            if not verdict:
                self._unauthorized(request)
                return
        self._answer(request)

    def _check_in_thread(self, request: _Request, header: str) -> None:
        self.busy = True  # later pipelined requests wait: one check per connection at a time
        future = self.server.auth.submit(header, first=not self.failed_check)

        def done(result: asyncio.Future[bool]) -> None:
            self.busy = False
            if self.transport is None or result.cancelled():
                return
            if result.result():
                self._answer(request)
            else:
                self.failed_check = True
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
            except Exception:
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
